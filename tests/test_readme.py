"""The README stays true: its CLI reference is the CLI's own --help, its Quick start is the
two make targets."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, SHARED_DATA


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "scripts" / "cli_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_in_the_readme_is_the_clis_help() -> None:
    gen = generator()
    block = gen.reference()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert block in readme, "the README's CLI reference is stale: run `make readme`"
    for name in gen.commands():  # every command is documented, with its flags
        assert f"#### `opro {name}`" in block
        assert f"usage: opro {name}" in block


def test_quick_start_begins_with_make_demo_then_make_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, flags=re.MULTILINE)
    assert commands[:2] == ["make demo", "make test"]


@pytest.mark.slow
def test_the_python_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example, as written, on the embedded model."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPRO_DATA_DIR", str(SHARED_DATA))
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    result = namespace["result"]
    assert getattr(result, "status") == "finished"  # noqa: B009
    assert (tmp_path / "runs" / "api-example" / "report.html").is_file()


def test_the_own_task_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Your own task" example as written, its hosted models swapped for
    scripted ones (this machine reaches none), its data file and metric module made here."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own task", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    source = code.group(1)
    for hosted, scripted in (
        ('"openai:gpt-4o-mini"', '{"spec": "fake:tests.doubles:sentiment_scorer", "api": "chat"}'),
        ('"openai:gpt-4o"', '"fake:tests.doubles:instruction_proposer"'),
    ):
        assert hosted in source
        source = source.replace(hosted, scripted)
    rows = [("A great film, I love it", "positive"), ("Dull and far too long", "negative")] * 30
    (tmp_path / "reviews.csv").write_text(
        "text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows)
    )
    (tmp_path / "my_metrics.py").write_text(
        "def names_the_label(prediction, example):\n"
        "    return example.answer in prediction.lower()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {}
    exec(compile(source, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert getattr(result, "status") == "finished"  # noqa: B009
    assert (tmp_path / "runs" / "reviews" / "report.html").is_file()
