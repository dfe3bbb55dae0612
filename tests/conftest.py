"""Shared fixtures: an isolated cache dir per test, no API keys from the developer's shell."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SENTINEL_KEY = "sk-SENTINEL-0123456789abcdefSECRET"
PYTHONPATH = os.pathsep.join((str(ROOT / "src"), str(ROOT)))


def ctrl_c_default() -> None:
    """A child's ``preexec_fn``: Ctrl-C handled, as from a terminal, even when pytest itself
    was started in the background of a script (where SIGINT is ignored, and children
    inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


"""For subprocesses: this checkout's package first (a git worktree beside an editable install
must test its own code), then the tests' doubles (``fake:tests.doubles:...``)."""


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPRO_CACHE_DIR", str(tmp_path / "cache"))
    # The user's signing key (opro.signature), outside tmp_path: tests list what is there.
    monkeypatch.setenv("OPRO_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``opro ARGS`` in a subprocess, as a user would."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    }
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (PYTHONPATH, full_env.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "opro.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str] | Ran, *needles: str) -> None:
    """Bad input: non-zero exit, one line on stderr naming the fix, no traceback."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("opro: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@dataclass(frozen=True)
class Ran:
    """``opro ARGS`` run in this process: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def opro(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``opro(*args)`` runs the command in this process (no interpreter start: fast), with
    the fakes importable, and returns its exit code and output."""
    from opro.cli import main

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, a bad flag
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def load_script(name: str) -> ModuleType:
    """``scripts/NAME.py`` as a module (scripts are not a package), for tests of a script."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
