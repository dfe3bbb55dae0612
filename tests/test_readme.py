"""The README stays a true front page: short, its Quick start the two make targets, its
Python example runs as written, its links resolve. (The docs' own tests: test_docs.py.)"""

from __future__ import annotations

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
