"""Shared fixtures: an isolated cache dir per test, no API keys from the developer's shell."""

from __future__ import annotations

import importlib.util
import inspect
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


# -- test lanes -------------------------------------------------------------------------------
# A test's lane is its markers: `make check` runs every test without one of HEAVY (the inner
# loop: minutes), `make test` runs them all (CI). The markers come from the test's file
# (PATH_LANES), a fixture it uses (FIXTURE_LANES), or a mark on the test itself.

LANES = {
    "embedded": "loads an embedded model (llama.cpp), in this process or a child",
    "server": "starts a llama.cpp server process (python -m llama_cpp.server)",
    "docs": "builds the docs site or runs a tutorial's code",
    "browser": "renders a page in headless Chromium",
    "packaging": "builds the wheel and sdist, or installs them into a fresh environment",
    "cluster": "starts a local Ray cluster",
    "slow": "minutes of work: kill-and-resume soaks, fault storms, many subprocesses",
    "subprocess": "starts opro (or Python) as a child process: seconds, still in make check",
}
HEAVY = ("embedded", "server", "docs", "browser", "packaging", "cluster", "slow")
"""The lanes `make check` leaves out (`-m "not (embedded or ...)"`, see the Makefile)."""
PATH_LANES = {
    "test_local.py": ("embedded",),
    "test_local_batch.py": ("embedded",),
    "test_optimize_embedded.py": ("embedded",),
    "test_llama_server.py": ("server", "embedded"),
    "test_ray_sweep.py": ("cluster",),
    "test_packaging.py": ("packaging",),
    "test_docs.py": ("docs",),
}
FIXTURE_LANES = {"llama_server": ("server", "embedded"), "cluster": ("cluster",)}
SUBPROCESS_CALLS = ("run_cli(", "subprocess.", "Popen(")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in LANES.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test's lanes, as it is collected: before any ``pytest_collection_modifyitems``, where
    pytest-xdist reads the groups."""
    lanes = set(PATH_LANES.get(item.path.name, ()))
    for fixture in getattr(item, "fixturenames", ()):
        lanes.update(FIXTURE_LANES.get(fixture, ()))
    if "subprocess" not in lanes and _starts_processes(item):
        lanes.add("subprocess")
    for lane in sorted(lanes):
        item.add_marker(lane)
    if item.get_closest_marker("embedded") is not None:
        # One worker runs every embedded-model test (pytest-xdist's --dist loadgroup): it
        # loads the model's pages once, and two models never share the two cores.
        item.add_marker(pytest.mark.xdist_group("embedded"))
        if getattr(item.config.option, "loadgroup", False):  # in a worker of --dist loadgroup
            _join_group(item, "embedded")


def _join_group(item: pytest.Item, group: str) -> None:
    """pytest-xdist (3.8) groups a test by a ``@group`` suffix of its node id, which it sets
    as ``item._nodeid``; pytest 9.2 keeps the id in ``item._id``, so the suffix was lost and
    the group's tests ran on every worker at once. Set it where pytest 9.2 reads it (xdist
    adds nothing more to an id that already ends in ``@group``)."""
    if item.nodeid.endswith(f"@{group}"):
        return
    from _pytest import nodes

    coerce = getattr(nodes, "coerce_node_id", None)
    if coerce is not None and hasattr(item, "_id"):
        item._id = coerce(f"{item.nodeid}@{group}")
    else:  # pytest before 9.2
        item._nodeid = f"{item.nodeid}@{group}"


def _starts_processes(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    if function is None:
        return False
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return any(call in source for call in SUBPROCESS_CALLS)
