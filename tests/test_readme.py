"""The README stays true: its CLI reference is the CLI's own --help, its Quick start is the
two make targets."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


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
