"""Imports run downward only. Every module of src/opro sits in one layer and imports from its
own layer or those below, never above: at module level or inside a function (a lazy import
is still a dependency), but not under ``if TYPE_CHECKING:`` (annotations only). The layers,
bottom up:

0. base: what every layer shares: ``types``, ``errors``, ``answer_shape``, ``history``,
   ``progress`` (its events) and ``progress_text``, ``files``, ``prompts``, ``plugins``,
   ``record`` (how a run dir's records are typed, written and read)
1. llm: the backends and the stack around them (``opro.llm``)
2. data: datasets (``opro.data``)
3. eval: scoring answers (``opro.eval``)
4. problems: the kinds: the Problem contract, specs, records, the registry, each kind
5. rundir: a run dir's files: ``runlog``, ``runconfig``, ``fingerprint``, ``signature``
6. report: what is read from run dirs: ``report``, ``plotting``, the kinds' figures
   (``problems.figures``), ``instruction_export``
7. engine: running: ``optimizer``, ``attempts``, ``meta_prompt``, ``models``, ``runner``,
   ``run_values``
8. surfaces: ``api``, ``evaluation``, ``sweep``, ``sweep_results``, ``executors``,
   ``tracking``, ``progress_display``
9. cli: ``opro.cli``, the package root ``opro`` (its lazy re-exports), ``testing``

So no backend imports the package root, no kind imports plotting or a report, and a report
needs a run dir, never the engine that wrote it. Kinds and backends are found by name
(entry points: ``opro.plugins``), not imported by the layers that use them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src"
NAMES = ("base", "llm", "data", "eval", "problems", "rundir", "report", "engine", "surfaces", "cli")
LAYERS = {
    **dict.fromkeys(
        ("types", "errors", "answer_shape", "history", "progress", "progress_text", "files",
         "prompts", "plugins", "record"), 0,
    ),
    "llm": 1,
    "data": 2,
    "eval": 3,
    "problems": 4,
    **dict.fromkeys(("runlog", "runconfig", "fingerprint", "signature"), 5),
    **dict.fromkeys(("report", "plotting", "problems.figures", "instruction_export"), 6),
    **dict.fromkeys(
        ("optimizer", "attempts", "meta_prompt", "roles", "runner", "run_values"), 7
    ),
    **dict.fromkeys(
        ("api", "evaluation", "sweep", "sweep_results", "executors", "tracking",
         "progress_display"), 8,
    ),
    **dict.fromkeys(("cli", "testing"), 9),
}  # fmt: skip
"""A module's layer: its own entry or its closest package's (``opro.`` left out)."""

LAZY_ONLY = {
    # A kind's report facet (its ``KindReport.figures``, apart from the kind's core) imports
    # its figures when a report draws them: matplotlib loads then, never with the kind.
    ("problems", "problems.figures"),
}
"""(importer, imported) packages allowed upward, and only inside a function."""


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "opro").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def layer(module: str) -> int:
    """The layer of ``opro.x.y``; the package root ``opro`` is the top."""
    name = module.removeprefix("opro").removeprefix(".")
    while name:
        if name in LAYERS:
            return LAYERS[name]
        name = name.rpartition(".")[0]
    assert module == "opro", f"{module} is in no layer: give it one in LAYERS"
    return len(NAMES) - 1


class Imports(ast.NodeVisitor):
    """The opro modules a module imports: (line, module, inside a function)."""

    def __init__(self, known: dict[str, Path]) -> None:
        self.known = known
        self.found: list[tuple[int, str, bool]] = []
        self.depth = 0

    def add(self, node: ast.AST, name: str) -> None:
        if name == "opro" or name.startswith("opro."):
            self.found.append((getattr(node, "lineno", 0), name, self.depth > 0))

    def visit_If(self, node: ast.If) -> None:
        if ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        assert node.level == 0, f"line {node.lineno}: a relative import: write it absolute"
        for alias in node.names:  # `from opro import runner` imports opro.runner
            full = f"{node.module}.{alias.name}"
            self.add(node, full if full in self.known else str(node.module))

    def visit_Call(self, node: ast.Call) -> None:  # importlib.import_module("opro.x")
        if ast.unparse(node.func).endswith("import_module") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.add(node, first.value)
        self.generic_visit(node)


def test_imports_run_downward_only() -> None:
    known = modules()
    upward = []
    for module, path in known.items():
        visitor = Imports(known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        for line, target, lazy in visitor.found:
            if layer(target) <= layer(module) or (lazy and _allowed(module, target)):
                continue
            upward.append(
                f"{path.relative_to(ROOT)}:{line}: {module} ({NAMES[layer(module)]}) imports "
                f"{target} ({NAMES[layer(target)]}), a layer above"
            )
    assert upward == [], "\n".join(upward)


def _allowed(module: str, target: str) -> bool:
    return any(_within(module, a) and _within(target, b) for a, b in LAZY_ONLY)


def _within(module: str, package: str) -> bool:
    return module == f"opro.{package}" or module.startswith(f"opro.{package}.")


def test_every_layer_entry_names_modules() -> None:
    """No entry of LAYERS outlives its modules (a renamed module is placed again)."""
    known = {m.removeprefix("opro.") for m in modules()}
    stale = [n for n in LAYERS if not any(m == n or m.startswith(f"{n}.") for m in known)]
    assert stale == []
