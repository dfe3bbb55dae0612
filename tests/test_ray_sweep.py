"""A sweep on a Ray cluster the test starts (2 CPUs, on this machine): a worker killed mid-run
is retried by Ray, its run resumes from its last step, and the sweep's runs, sweep.json and
reports equal those of the same sweep run one run after another in this process."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opro.cli import main
from opro.runlog import RunDir
from opro.sweep import finished
from tests.conftest import ROOT

ray = pytest.importorskip("ray")
WALKER = "fake:tests.doubles:linreg_walker"
STEPS = 12


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=96 * 1024 * 1024,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},  # the workers import tests.doubles
    )
    yield
    ray.shutdown()


def write_sweep(path: Path) -> Path:
    path.write_text(
        f'command = "linreg"\nseeds = [0, 1]\n[base]\noptimizer = "{WALKER}"\nreps = 1\n'
        f"steps = {STEPS}\nno-cache = true\n[axes]\nsamples-per-step = [6, 8]\n"
    )
    return path


def kill_a_worker_mid_run(out: Path, driver: threading.Thread) -> tuple[Path, int, bytes] | None:
    """Kill (SIGKILL) the Ray worker writing a run that has recorded 3 steps or more and not
    finished: the run dir's lock names its PID. The run, the PID and the steps on disk."""
    while driver.is_alive():
        for steps in out.glob("*/*/seed-*/steps.jsonl"):
            run = steps.parent
            lines = steps.read_bytes()
            if lines.count(b"\n") < 3 or finished(run):
                continue
            pid = int((run / ".lock").read_text() or 0)
            if pid in (0, os.getpid()):
                continue
            recorded = lines[: lines.rfind(b"\n") + 1]  # the complete lines
            os.kill(pid, signal.SIGKILL)
            return run, pid, recorded
        time.sleep(0.05)
    return None


def candidates(run: Path) -> list[Any]:
    return [
        json.loads(line)["candidates"] for line in (run / "steps.jsonl").read_text().splitlines()
    ]


def without_dirs(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "sweep.json").read_text())
    for setting in data["settings"]:
        for run in setting["runs"]:
            run["dir"] = str(Path(run["dir"]).relative_to(out))
    return data


def test_a_killed_worker_loses_nothing_and_the_sweep_equals_one_run_after_another(
    cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = write_sweep(tmp_path / "sweep.toml")
    out, reference = tmp_path / "ray", tmp_path / "serial"
    codes: list[int] = []
    args = ["-q", "sweep", str(sweep), "--out", str(out), "--executor", "ray", "--task-cpus", "0.5"]
    driver = threading.Thread(target=lambda: codes.append(main(args)))
    driver.start()
    killed = kill_a_worker_mid_run(out, driver)
    driver.join(600)
    assert killed is not None, "no run was caught in flight"
    assert codes == [0], capsys.readouterr().err
    run, pid, recorded = killed
    on_disk = (run / "steps.jsonl").read_bytes()
    assert on_disk.startswith(recorded)  # resumed from its last step: nothing rewritten
    assert len(RunDir(run).read_steps()) == STEPS + 1  # each step once
    assert int((run / ".lock").read_text()) != pid  # another attempt (a new worker) finished it

    assert main(["-q", "sweep", str(sweep), "--out", str(reference)]) == 0
    runs = sorted(
        p.parent.relative_to(reference) for p in reference.glob("*/*/seed-*/summary.json")
    )
    assert len(runs) == 4
    for name in runs:
        assert candidates(out / name) == candidates(reference / name)
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["status"] == "finished"
    assert without_dirs(out) == without_dirs(reference)
    assert (out / "samples-per-step" / "report.html").is_file()


def test_a_sweep_of_a_users_objective_on_ray_equals_the_same_sweep_run_here(
    cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The objective kind (#29) on the cluster: the workers import the user's function by
    its path, and the runs (invalid solutions included) equal those run in this process."""
    sweep = tmp_path / "solve.toml"
    sweep.write_text(
        'command = "solve"\nseeds = [0]\n[base]\nobjective = "tests.test_objective:closeness"\n'
        'task = "Find the whole number the function likes best."\ninitial = ["10"]\n'
        'optimizer = "fake:tests.test_objective:propose"\nsteps = 3\nno-cache = true\n'
        "[axes]\nfeedback = [true, false]\n"
    )
    out, reference = tmp_path / "ray", tmp_path / "here"
    args = ["-q", "sweep", str(sweep), "--out", str(out), "--executor", "ray", "--task-cpus", "0.5"]
    assert main(args) == 0, capsys.readouterr().err
    assert main(["-q", "sweep", str(sweep), "--out", str(reference)]) == 0
    runs = sorted(p.parent.relative_to(reference) for p in reference.glob("**/summary.json"))
    runs = [r for r in runs if (reference / r / "steps.jsonl").is_file()]
    assert len(runs) == 2
    invalid = 0
    for name in runs:
        assert candidates(out / name) == candidates(reference / name)
        steps = [json.loads(s) for s in (out / name / "steps.jsonl").read_text().splitlines()]
        invalid += sum(len(s.get("invalid", [])) for s in steps)
    assert invalid > 0  # the words closeness raises on were recorded, on the cluster too
    assert without_dirs(out) == without_dirs(reference)
