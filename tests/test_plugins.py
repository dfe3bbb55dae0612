"""Plugins: a distribution of someone else's adds a problem kind and an LLM backend through
entry points (``opro.kinds``, ``opro.backends``), and ``opro`` runs them as its own: a
command for the kind, the backend listed and used, the run dir resumed and reported. A
plugin that does not load is one line naming its distribution and the fix, and leaves every
other command working.

The plugin is written into a temporary folder as pip would install it (modules beside a
``*.dist-info`` folder with METADATA and entry_points.txt) and put on ``PYTHONPATH``: opro's
source names neither the kind nor the backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opro import plugins
from opro.errors import ConfigError
from opro.llm.config import LLMConfig
from opro.llm.registry import create_backend
from opro.llm.usage import Price, known_price
from opro.problems.registry import kind_of
from tests.conftest import PYTHONPATH, ROOT, assert_one_line_error, run_cli

ECHO2 = '''
"""An LLM backend of a plugin: echo2:LOW-HIGH answers a guess drawn from its request."""

import random

from opro.llm.base import LLM
from opro.llm.registry import BackendInfo
from opro.types import Completion, Request, Usage

BACKEND = BackendInfo(
    "echo2", "opro_echo2:Echo2", "guesses at random (a plugin's backend)", "echo2:30-50",
    concurrency=4, free=True,
)


class Echo2(LLM):
    def __init__(self, name, options):
        self.spec, self.api = f"echo2:{name}", "completion"
        self.low, self.high = (int(n) for n in name.split("-"))

    async def complete(self, request: Request) -> Completion:
        seeded = random.Random(request.derived_seed())
        text = f" <guess>{seeded.randint(self.low, self.high)}"
        return Completion(text, "stop", Usage(1, 1), self.spec)
'''


def write_plugin(folder: Path, entry_points: str, *, kind: bool = True) -> Path:
    """The plugin ``opro-guess`` 1.0 installed into ``folder``: the toy kind's module (as
    ``opro_guess``), a backend module and the entry points given."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind:
        (folder / "opro_guess.py").write_text((ROOT / "tests" / "toy_kind.py").read_text())
    (folder / "opro_echo2.py").write_text(ECHO2)
    info = folder / "opro_guess-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: opro-guess\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return folder


GOOD = """\
    [opro.kinds]
    guess = opro_guess:KIND

    [opro.backends]
    echo2 = opro_echo2:BACKEND
    """


def test_a_plugins_kind_and_backend_run_resume_and_report(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(write_plugin(tmp_path / "site", GOOD))}
    listed = run_cli("--help", env=env)
    assert "guess a hidden number" in listed.stdout, listed.stderr
    models = json.loads(run_cli("models", "--json", env=env).stdout)
    summary = "guesses at random (a plugin's backend)"
    assert {"prefix": "echo2:", "example": "echo2:30-50", "summary": summary} in models["backends"]

    run = tmp_path / "run"
    args = ("guess", "--optimizer", "echo2:30-50", "--target", "37", "--steps", "4")
    cut = run_cli(*args, "--out", str(run), "--max-calls", "6", "--json", env=env)
    assert json.loads(cut.stdout)["status"] == "stopped", cut.stderr  # at the cap: resumable
    resumed = run_cli("resume", str(run), "--max-calls", "100", "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "finished"
    assert summary["best"]["score"] <= 0  # -|guess - 37|
    assert json.loads((run / "config.json").read_text())["spec"]["optimizer"]["spec"] == (
        "echo2:30-50"
    )
    report = run_cli("report", str(run), env=env)
    assert report.returncode == 0, report.stderr
    assert "Best guesses" in (run / "report.html").read_text()  # the kind's own table
    assert "Traceback" not in cut.stderr + resumed.stderr + report.stderr


def test_a_plugin_that_does_not_load_is_one_line_and_leaves_the_rest_working(
    tmp_path: Path,
) -> None:
    broken = """\
        [opro.kinds]
        guess = opro_guess:KIND

        [opro.backends]
        echo2 = opro_echo2:Echo2
        """  # the kind's module is missing; the backend names its class, not its info
    env = {"PYTHONPATH": str(write_plugin(tmp_path / "site", broken, kind=False))}
    fix = "pip install --force-reinstall opro-guess"

    # Another command works; the plugin's kind is said to be left out, once, in one line.
    help_ = run_cli("linreg", "--help", env=env)
    assert help_.returncode == 0, help_.stderr
    [line] = help_.stderr.splitlines()
    assert "problem kind 'guess' of the plugin opro-guess 1.0 cannot be loaded" in line
    assert "No module named 'opro_guess'" in line
    assert fix in line

    used = run_cli("complete", "--model", "echo2:1-2", "hi", env=env)
    assert used.returncode == 2
    error = used.stderr.splitlines()[-1]
    assert error.startswith("opro: error: the backend 'echo2' of the plugin opro-guess 1.0")
    assert "is not a BackendInfo" in error
    assert fix in error
    assert "Traceback" not in help_.stderr + used.stderr


def test_the_lookup_by_name_in_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: found once the distribution is on the path (and read again); a kind two
    distributions register is refused, naming both."""
    with pytest.raises(ConfigError, match="unknown problem kind 'guess'"):
        kind_of("guess")
    site = write_plugin(tmp_path / "site", GOOD)
    monkeypatch.syspath_prepend(str(site))
    plugins.refresh()
    try:
        assert kind_of("guess").title == "number guessing"
        assert create_backend("echo2:1-1").spec == "echo2:1-1"
        # Its facts are its own: calls in flight by default, free (no price needed).
        assert LLMConfig(spec="echo2:1-1").stack_options("optimizer").concurrency == 4
        assert known_price("echo2:1-1") == Price(0, 0)
        other = tmp_path / "other" / "opro_other-2.0.dist-info"
        other.mkdir(parents=True)
        (other / "METADATA").write_text("Metadata-Version: 2.1\nName: opro-other\nVersion: 2\n")
        (other / "entry_points.txt").write_text("[opro.kinds]\nguess = elsewhere:KIND\n")
        monkeypatch.syspath_prepend(str(other.parent))
        plugins.refresh()
        with pytest.raises(ConfigError, match="registered by opro-other and opro-guess"):
            kind_of("guess")
    finally:
        monkeypatch.undo()
        plugins.refresh()


def test_an_install_older_than_its_source_names_the_reinstall(tmp_path: Path) -> None:
    """opro's metadata without its entry points (installed before they existed): one line
    naming `make install`, not a missing command or a traceback."""
    stale = tmp_path / "opro-0.0.1.dist-info"
    stale.mkdir()
    (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: opro\nVersion: 0.0.1\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(tmp_path), PYTHONPATH))}
    for args in (["linreg", "--help"], ["resume", str(tmp_path)]):
        done = subprocess.run(
            [sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, env=env
        )
        assert_one_line_error(done, "registers none of its opro.kinds", "make install")
