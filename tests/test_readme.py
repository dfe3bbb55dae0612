"""The README stays a true front page: short, its Quick start the two make targets, its
Python example runs as written, its links resolve. (The docs' own tests: test_docs.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_DATA
from tests.test_docs import TUTORIALS, blocks

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_short() -> None:
    assert len(README.splitlines()) < 200


def test_quick_start_begins_with_make_demo_then_make_test() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, flags=re.MULTILINE)
    assert commands[:2] == ["make demo", "make test"]


def _moving_tasks() -> set[str]:
    """The BBH tasks where the embedded model moves: the found instruction beat the empty
    start on the held-out questions (p < 0.05) in the BBH experiment (docs/bbh/results.json);
    on the others (sports_understanding: 0 % for every instruction) a first run shows nothing."""
    results = json.loads((ROOT / "docs" / "bbh" / "results.json").read_text(encoding="utf-8"))
    return {f"bbh:{r['task']}" for r in results if r["p_found_vs_start"] < 0.05}


FIRST_PAGES = [ROOT / "README.md", ROOT / "docs" / "index.md"]
TIME = re.compile(r"about \d+(?:–\d+)? minutes", re.IGNORECASE)


@pytest.mark.parametrize("page", FIRST_PAGES, ids=lambda p: p.name)
def test_the_first_optimize_command_is_a_short_run_that_moves_and_says_its_time(
    page: Path,
) -> None:
    """A first result in minutes: the page's first ``opro optimize`` names a task where the
    embedded model moves and a small --steps (not the default 200: hours), with its time."""
    lines = page.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("opro optimize"))
    command = lines[i]
    while command.split("#", 1)[0].rstrip().endswith("\\"):
        i += 1
        command += "\n" + lines[i]
    dataset = re.search(r"--dataset (\S+)", command)
    assert dataset is not None, command
    assert dataset.group(1) in _moving_tasks(), command
    steps = re.search(r"--steps (\d+)", command)
    assert steps is not None, command
    assert int(steps.group(1)) <= 4, command
    assert TIME.search(command), f"no time stated beside {command!r}"


@pytest.mark.parametrize(
    "page", [*FIRST_PAGES, ROOT / "docs" / "tutorials" / "first-optimization.md"],
    ids=lambda p: p.name,
)  # fmt: skip
def test_the_first_python_example_is_a_short_run_that_moves_and_says_its_time(
    page: Path,
) -> None:
    text = page.read_text(encoding="utf-8")
    code = next(c for c in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "opro." in c)
    dataset = re.search(r'dataset="([^"]+)"', code)
    assert dataset is not None, code
    assert dataset.group(1) in _moving_tasks(), code
    steps = re.search(r"steps=(\d+)", code)
    assert steps is not None, code
    assert int(steps.group(1)) <= 4, code
    around = text[max(0, text.index(code) - 600) : text.index(code) + len(code) + 600]
    assert TIME.search(around), f"{page.name}: no time stated beside its first Python example"


def test_every_relative_link_of_the_readme_resolves() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert len(local) > 10
    for link in local:
        assert (ROOT / link).exists(), link


@pytest.mark.embedded
def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example, as written, on the embedded model."""
    section = README.split("## In ten lines", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPRO_DATA_DIR", str(SHARED_DATA))
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    result = namespace["result"]
    assert getattr(result, "status") == "finished"  # noqa: B009
    assert (tmp_path / "runs" / "api-example" / "report.html").is_file()


@pytest.mark.parametrize(
    ("section", "tutorial"),
    [("Your own task", "own-task"), ("Servers", "servers"), ("Scaling out", "scaling-out")],
)
def test_each_sections_code_is_a_tutorials_code_that_its_test_runs(
    section: str, tutorial: str
) -> None:
    """The README shows these, test_docs.py runs them: a README block must be (part of) a
    block of the tutorial it links to that is not marked ``not run``."""
    text = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    assert f"docs/tutorials/{tutorial}.md" in text
    [page] = [p for p in TUTORIALS if p.stem == tutorial]
    run = [b.code for b in blocks(page) if b.not_run is None]
    shown = re.findall(r"```\w*\n(.*?)```", text, flags=re.DOTALL)
    assert shown, section
    for code in shown:
        assert any(code in block for block in run), (section, code)
