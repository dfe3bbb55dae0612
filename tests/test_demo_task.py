"""Which task `make demo` runs: BBH's hyperbaton where its file is (or can be fetched), else
the adjective-order questions opro generates, so that the demo runs on any machine offline.
(The demo itself runs in the docs' first tutorial, tests/test_docs.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT, SHARED_DATA


def _demo_task(cwd: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    scripts = cwd / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "demo_task.sh", scripts)
    clean = {k: v for k, v in os.environ.items() if k != "OPRO_DATA_DIR"}
    home = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data-home")}
    return subprocess.run(
        ["bash", "scripts/demo_task.sh"],
        cwd=cwd,
        env=clean | home | {"BIN": str(ROOT / ".venv" / "bin")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bare_machine_offline_gets_the_generated_task(tmp_path: Path) -> None:
    # No data dir, no ../shared/data beside the checkout, and the download fails (a closed
    # port stands for no network): the generated task, and the demo goes on.
    result = _demo_task(tmp_path / "clone", tmp_path, OPRO_DATA_URL="http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "synthetic:adjective_order\n"
    assert "could not download" in result.stderr


def test_with_the_benchmark_files_the_demo_runs_hyperbaton(tmp_path: Path) -> None:
    result = _demo_task(tmp_path / "clone", tmp_path, OPRO_DATA_DIR=str(SHARED_DATA))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "bbh:hyperbaton\n"
    assert result.stderr == ""  # nothing fetched
