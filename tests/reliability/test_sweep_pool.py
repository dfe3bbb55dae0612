"""A sweep's pool and plan hold in time and size (issue #26, medium items 6 and 7, and the
repeated advice of the low items).

Reproduced before: after a SIGKILL of `opro sweep --parallel 2`'s driver its forkserver,
workers and queue manager lived on for 12+ minutes, holding its stdout (a `| tee` never saw
EOF); a grid of six axes of ten values (10^6 runs, a 400-byte file) built specs for 90 s to
1.9 GB with no output; a worker that died gave its "run the same `opro sweep` again" twice.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opro.sweep import DEFAULT_MAX_RUNS, MAX_RUNS_ENV
from opro.types import Request
from tests.conftest import PYTHONPATH, Ran, assert_one_line_error
from tests.doubles import linreg_walker

WALKER = "fake:tests.doubles:linreg_walker"


def write_sweep(path: Path, axes: str, seeds: str = "[0]", steps: int = 3) -> Path:
    path.write_text(
        f'command = "linreg"\nseeds = {seeds}\nmode = "grid"\n\n[base]\n'
        f'optimizer = "{WALKER}"\nreps = 1\nsteps = {steps}\nno-cache = true\n\n'
        f"[axes]\n{axes}\n"
    )
    return path


def session_pids(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``, from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_killed_parallel_sweep_takes_its_pool_with_it(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "s.toml", 'order = ["ascending", "descending"]', steps=400)
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "opro.cli", "-q", "sweep", str(sweep), "--out", str(out),
         "--parallel", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=PYTHONPATH),
        start_new_session=True,
    )  # fmt: skip
    eof = {name: threading.Event() for name in ("stdout", "stderr")}

    def read_to_eof(name: str) -> None:
        stream = getattr(driver, name)
        while stream.read(65536):
            pass
        eof[name].set()

    readers = [threading.Thread(target=read_to_eof, args=(n,), daemon=True) for n in eof]
    for reader in readers:
        reader.start()
    try:
        wait_for(lambda: len(list(out.glob("grid/*/seed-0/steps.jsonl"))) == 2, driver)
        steps = sorted(out.glob("grid/*/seed-0/steps.jsonl"))
        wait_for(lambda: all(s.read_text().count("\n") >= 2 for s in steps), driver)
        assert len(session_pids(driver.pid)) >= 5  # driver, forkserver, 2 workers, manager
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 10
        while session_pids(driver.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session_pids(driver.pid) == []  # (zombies aside: they hold nothing, and
        # whether they are reaped at once is up to this machine's init)
        assert eof["stdout"].wait(5)  # a `| tee` sees the end
        assert eof["stderr"].wait(5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    for run in steps:  # left as a kill leaves a run: resumable (test_kill_optimize holds that)
        assert 2 <= run.read_text().count("\n") < 401
        assert (run.parent / "config.json").is_file()


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, f"the sweep ended early ({proc.returncode})"
        assert time.monotonic() < deadline
        time.sleep(0.05)


SIX_BY_TEN = "\n".join(
    f"{axis} = [{', '.join(str(v) for v in range(1, 11))}]"
    for axis in ("steps", "samples-per-step", "top-k", "exemplars", "temperature", "reps")
)


def test_a_grid_of_a_million_runs_is_refused_before_any_is_built(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    sweep = write_sweep(tmp_path / "s.toml", SIX_BY_TEN)
    assert len(sweep.read_bytes()) < 500
    began = time.monotonic()
    ran = opro("sweep", str(sweep), "--out", str(tmp_path / "out"))
    assert time.monotonic() - began < 0.5
    assert_one_line_error(
        ran, "the plan has 1,000,000 runs", "10 x 10 x 10 x 10 x 10 x 10", "limit of 10,000",
        MAX_RUNS_ENV,
    )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_plan_just_under_the_limit_plans_and_the_limit_is_configurable(
    tmp_path: Path, opro: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opro.sweep import load_sweep

    # one at a time: 5,000 values + 0 ... x 2 seeds = 10,000 runs, the limit itself
    values = ", ".join(str(v) for v in range(1, DEFAULT_MAX_RUNS // 2 + 1))
    sweep = tmp_path / "under.toml"
    sweep.write_text(write_sweep(sweep, "", "[0, 1]").read_text().replace('mode = "grid"\n', "")
                     + f"steps = [{values}]\n")  # fmt: skip
    plan = load_sweep(sweep)
    assert len(plan.runs(tmp_path / "out", str(sweep))) == DEFAULT_MAX_RUNS

    over = write_sweep(tmp_path / "over.toml", "steps = [1, 2, 3]\ntop-k = [1, 2, 3]", "[0, 1]")
    monkeypatch.setenv(MAX_RUNS_ENV, "17")
    assert_one_line_error(
        opro("sweep", str(over), "--out", str(tmp_path / "o")),
        "the plan has 18 runs (grid: 3 x 3 settings x 2 seeds)", "limit of 17",
    )  # fmt: skip
    monkeypatch.setenv(MAX_RUNS_ENV, "18")
    assert len(load_sweep(over).runs(tmp_path / "o")) == 18
    monkeypatch.setenv(MAX_RUNS_ENV, "many")
    assert_one_line_error(
        opro("sweep", str(over), "--out", str(tmp_path / "o")),
        f"{MAX_RUNS_ENV}='many' is not a number of runs",
    )


def dies_in_a_pool(request: Request) -> str:
    """A ``fake:`` optimizer whose process is killed, as by the OOM killer, in a pool worker
    (and answers as the walker anywhere else)."""
    if multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return linreg_walker(request)


def test_a_dead_workers_notice_gives_its_advice_once(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    sweep = write_sweep(tmp_path / "s.toml", "steps = [1, 2]").read_text()
    sweep = sweep.replace(WALKER, "fake:tests.reliability.test_sweep_pool:dies_in_a_pool")
    (tmp_path / "s.toml").write_text(sweep)
    ran = opro("-q", "sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"),
               "--parallel", "2")  # fmt: skip
    assert ran.returncode == 3
    notices = [line for line in ran.stderr.splitlines() if "worker process died" in line]
    assert notices, ran.stderr
    for line in notices:
        assert line.count("opro sweep") == 1, line
    assert notices[0].endswith("run the same `opro sweep` command again to continue")
