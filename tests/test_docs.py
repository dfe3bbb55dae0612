"""The docs stay true: the site builds strictly, every tutorial's code runs as written (on the
embedded model, a real llama.cpp server and a local Ray cluster; hosted models swapped for
scripted ones where a page says so), the CLI reference is the CLI's --help, the README is
short, and the index and a tutorial render with their figures in headless Chromium.

A fenced ``python`` or ``bash`` block in docs/tutorials/ runs unless the line before it is
``<!-- not run: REASON -->``; a page's python blocks share one namespace, the module
``__main__``, as a notebook's cells do. ``<!-- test: OLD -> NEW -->`` lines before a block
replace text for the test only (``{free_port}`` in NEW: a free TCP port), each OLD required
to be there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.browser import check_rendering, fits_check
from tests.conftest import PYTHONPATH, ROOT, SHARED_DATA, load_script

DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (.+\S) -->$")
_SUBSTITUTE = re.compile(r"^<!-- test: (.+?) -> (.+) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    language: str
    code: str
    line: int
    not_run: str | None
    """Why the block is not run here (a hosted model, hours of compute), or None."""
    substitutions: tuple[tuple[str, str], ...]

    def for_test(self) -> str:
        code = self.code
        for old, new in self.substitutions:
            assert old in code, f"line {self.line}: {old!r} is not in the block"
            code = code.replace(old, new.replace("{free_port}", str(free_port())))
        return code


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        before, j = [], i - 1
        while j >= 0 and lines[j].startswith("<!-- "):
            before.append(lines[j])
            j -= 1
        end = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
        reasons = [m.group(1) for m in map(_NOT_RUN.match, before) if m]
        subs = tuple(
            (m.group(1), m.group(2)) for m in map(_SUBSTITUTE.match, reversed(before)) if m
        )
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(opening.group(1), code, i + 1, reasons[0] if reasons else None, subs))
        i = end + 1
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- what each tutorial leaves behind, besides running without an error ------------------


def _finished(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished", summary


def _first(cwd: Path, ns: dict[str, object]) -> None:
    _finished(cwd / "runs" / "first")
    assert (cwd / "runs" / "first" / "report.html").is_file()
    evaluation = json.loads((cwd / "evaluation.json").read_text())
    # The start and the run's best, or one object when the run kept its start as the best.
    assert "accuracy" in evaluation or len(evaluation["instructions"]) >= 2, evaluation
    assert len(getattr(ns["scored"], "results")) == 2  # noqa: B009


def _paper(cwd: Path, ns: dict[str, object]) -> None:
    _finished(cwd / "runs" / "tsp")
    linreg = json.loads((cwd / "runs" / "linreg" / "summary.json").read_text())
    assert linreg["steps_completed"] >= 1, linreg


def _own(cwd: Path, ns: dict[str, object]) -> None:
    assert (cwd / "runs" / "reviews" / "report.html").is_file()
    assert getattr(ns["result"], "status") == "finished"  # noqa: B009
    assert len(ns["history"]) > 2  # type: ignore[arg-type]
    cli_runs = [p for p in (cwd / "runs").iterdir() if p.name.startswith("optimize-")]
    assert len(cli_runs) == 1
    _finished(cli_runs[0])


def _servers(cwd: Path, ns: dict[str, object]) -> None:
    _finished(cwd / "runs" / "served")
    config = json.loads((cwd / "runs" / "served" / "config.json").read_text())
    assert config["spec"]["scorer"]["spec"] == "openai:gemma", config["spec"]["scorer"]


def _scaling(cwd: Path, ns: dict[str, object]) -> None:
    local, ray = (json.loads((cwd / "runs" / d / "sweep.json").read_text()) for d in
                  ("small", "small-ray"))  # fmt: skip
    assert local["settings"]
    # The same runs and numbers whatever the executor; only the folder differs.
    assert json.dumps(ray["settings"]).replace("runs/small-ray/", "runs/small/") == json.dumps(
        local["settings"]
    )


def _objective(cwd: Path, ns: dict[str, object]) -> None:
    runs = cwd / "runs"
    for name in ("guess", "nearest", "baseline", "stopped"):
        _finished(runs / name)
    guess = json.loads((runs / "guess" / "summary.json").read_text())
    assert guess["objective"] == "my_objective:closeness", guess
    assert guess["best"]["step"] >= 0, guess
    assert {"invalid_solutions", "first_invalid"} <= set(guess), guess
    assert (runs / "guess" / "report.html").is_file()
    assert (cwd / "compare.html").is_file()
    result = ns["result"]  # the notebook's run: its function recorded by its name
    assert getattr(result, "status") == "finished"  # noqa: B009
    assert getattr(result, "summary").details["objective"] == "__main__:hint"  # noqa: B009
    assert getattr(ns["again"], "already_finished")  # noqa: B009
    config = json.loads((runs / "baseline" / "config.json").read_text())
    assert config["spec"]["show_history"] is False, config["spec"]
    nearest = json.loads((runs / "nearest" / "config.json").read_text())["spec"]
    assert (nearest["direction"], nearest["target"]) == ("min", 120), nearest
    stopped = json.loads((runs / "stopped" / "summary.json").read_text())
    assert stopped["steps_completed"] == 4, stopped  # stopped by the SIGINT, then resumed


CHECKS: dict[str, Callable[[Path, dict[str, object]], None]] = {
    "first-optimization.md": _first,
    "reproducing-the-paper.md": _paper,
    "own-task.md": _own,
    "own-objective.md": _objective,
    "servers.md": _servers,
    "scaling-out.md": _scaling,
}


def test_every_tutorial_has_its_checks_and_runs_code() -> None:
    assert sorted(p.name for p in TUTORIALS) == sorted(CHECKS)
    for page in TUTORIALS:
        code = [b for b in blocks(page) if b.language in ("python", "bash")]
        assert any(b.not_run is None for b in code), f"{page.name} runs no code"
        for b in blocks(page):  # a block of another language is output, not code
            assert b.language in ("python", "bash", "text", "toml", "json"), (page.name, b.line)


@pytest.mark.embedded  # the tutorials run the embedded models
@pytest.mark.timeout(1800)  # the first runs the demo's run: minutes, more on a busy machine
@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_the_tutorial_runs_as_written(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a notebook's directory: my_metrics.py
    env = {
        "OPRO_DATA_DIR": str(SHARED_DATA),
        "OPRO_CACHE_DIR": str(tmp_path / "cache"),  # a fresh cache: everything really runs
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": PYTHONPATH,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The python blocks run as a notebook's cells: in the module __main__, so that a function
    # a block defines is __main__:NAME, found again by its name, as in Jupyter.
    notebook = ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    namespace: dict[str, object] = notebook.__dict__
    for block in blocks(page):
        if block.not_run is not None or block.language not in ("python", "bash"):
            continue
        code = block.for_test()
        if block.language == "python":
            exec(compile(code, f"{page.name}:{block.line}", "exec"), namespace)
            continue
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, f"{page.name}:{block.line}\n{done.stdout}\n{done.stderr}"
    CHECKS[page.name](tmp_path, namespace)


# -- the site, the CLI reference, the README ---------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in DOCS.rglob("*.md"):
        if page.relative_to(DOCS).as_posix() == "bbh/table.md":  # included in results/bbh.md
            continue
        built = site / page.relative_to(DOCS).with_suffix(".html")
        assert built.is_file(), built
    api = (site / "reference" / "python-api.html").read_text(encoding="utf-8")
    for name in ("InstructionsSpec", "RunOptions", "score_answer", "write_report"):
        assert 'id="opro.' in api, "mkdocstrings rendered nothing"
        assert re.search(rf'id="opro\.[\w.]*\.{name}"', api), name  # from its docstring
    table = (DOCS / "bbh" / "table.md").read_text(encoding="utf-8").splitlines()[2]
    bbh = (site / "results" / "bbh.html").read_text(encoding="utf-8")
    assert table.split("|")[1].strip() in bbh  # the table is included, not linked


@pytest.mark.parametrize(
    ("page", "figures"),
    [("index.html", 1), ("tutorials/first-optimization.html", 1), ("results/bbh.html", 1),
     ("reference/cli.html", 0)],
)  # fmt: skip
def test_pages_render_with_their_figures_in_headless_chromium(
    site: Path, page: str, figures: int, record_property: Callable[[str, object], None]
) -> None:
    """Each figure loads, and the page fits a laptop's and a narrow window: no table column
    (the BBH table's found instructions) or code line hidden to the right, no figure shrunk
    below the size its text was drawn for."""
    check_rendering(site / page, figures, record_property)
    problems = fits_check(site / page)
    if problems is None:
        pytest.skip("chromium unavailable: the layout needs a browser")
    assert problems == [], problems


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy)
    shutil.copy(ROOT / "CHANGELOG.md", copy)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    page = copy / "docs" / "how-to" / "resuming.md"
    page.write_text(page.read_text() + "\n[gone](no-such-page.md)\n")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=copy, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )  # fmt: skip
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr


def generator() -> ModuleType:
    return load_script("cli_reference")


def test_the_cli_reference_names_one_make_target_that_regenerates_it() -> None:
    """The page, the generator and the Makefile agree: ``make cli-reference``."""
    gen = generator()
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    head = page.split(gen.START, 1)[0]
    assert re.findall(r"make [\w-]+", head) == ["make cli-reference"], head
    assert re.findall(r"make [\w-]+", gen.__doc__ or "") == ["make cli-reference"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\ncli-reference:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/cli_reference.py --write" in target


def test_the_cli_reference_is_the_clis_help() -> None:
    gen = generator()
    block = gen.reference()
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert block in page, "docs/reference/cli.md is stale: run `make cli-reference`"
    for name in gen.commands():  # every command is documented, with its flags
        assert f"## `opro {name}`" in block
        assert f"usage: opro {name}" in block
