"""Sweep executors: runs in parallel processes equal runs one after another, the driver's
aggregated progress, when a sweep stops starting runs, the run dir's lock between attempts."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from opro.cli import build_parser, main
from opro.cli.options import with_flags
from opro.cli.run_commands import executor_from
from opro.errors import ConfigError
from opro.executors import LocalExecutor, RunTask, SweepWatch, TaskResult, run_sweep
from opro.executors.task import TaskEvent, execute
from opro.llm.usage import Caps
from opro.problems.linreg import LinregSpec
from opro.problems.spec import build_spec
from opro.progress import RunEnd, RunStart, Snapshot, SweepUpdate
from opro.progress_display import JsonDisplay, PlainDisplay
from opro.runlog import RunDir
from tests.doubles import steps_of

WALKER = "fake:tests.doubles:linreg_walker"


class Updates:
    """A SweepProgress that keeps every update."""

    def __init__(self) -> None:
        self.updates: list[SweepUpdate] = []

    def sweep_changed(self, update: SweepUpdate) -> None:
        self.updates.append(update)

    def events(self, kind: str) -> list[SweepUpdate]:
        return [u for u in self.updates if u.event == kind]


def tasks_of(out: Path, n: int, caps: Caps | None = None, steps: int = 3) -> list[RunTask]:
    return [
        RunTask(
            i,
            f"seed {i}",
            out / f"seed-{i}",
            build_spec(LinregSpec, {"optimizer": WALKER, "reps": 1, "steps": steps, "seed": i}),
            caps or Caps(),
            None,
            False,
        )
        for i in range(n)
    ]


def snapshot(step: int, calls: int, cost: float | None = 0.0) -> Snapshot:
    return Snapshot(step, 3, 1.0, calls, 1, 10 * calls, cost, 1.0, None)


def test_the_watch_aggregates_runs_and_paces_its_eta() -> None:
    now = [0.0]
    seen = Updates()
    tasks = tasks_of(Path("/nowhere"), 3)  # each 4 steps of work (0..3)
    watch = SweepWatch(tasks, seen, finished_before=1, throttle_s=1.0, clock=lambda: now[0])
    resumed = RunStart("/nowhere/seed-0", 3, last_step=1)  # 2 steps on disk before
    watch.receive(TaskEvent(0, "started", "/nowhere/seed-0", start=resumed))
    watch.receive(TaskEvent(1, "started", "/nowhere/seed-1", start=RunStart("r1", 3, None)))
    assert [u.label for u in seen.events("started")] == ["seed 0", "seed 1"]
    assert seen.updates[-1].state.eta_s is None  # no step recorded in this session yet
    now[0] = 10.0
    watch.receive(TaskEvent(0, "step", "/nowhere/seed-0", snapshot=snapshot(2, 5)))
    watch.receive(TaskEvent(1, "step", "/nowhere/seed-1", snapshot=snapshot(0, 2, None)))
    assert len(seen.events("progress")) == 1  # the second within a second is held back
    state = watch.state()
    assert (state.runs, state.done, state.running, state.calls, state.tokens) == (4, 1, 2, 7, 70)
    assert state.cost_usd is None  # one run's price is unknown
    # 2 steps in 10 s this session; left: 1 (seed 0) + 3 (seed 1) + 4 (seed 2, not begun)
    assert state.eta_s == pytest.approx(8 * 10 / 2)
    watch.ended(TaskResult(0, "finished", "max_steps"))
    watch.ended(TaskResult(1, "stopped", "budget: the cap", 3))
    assert not SweepWatch(tasks, seen, keep_going=True).halted
    assert watch.halted  # a run stopped: no other starts
    end = seen.events("ended")[-1]
    assert (end.label, end.status, end.reason) == ("seed 1", "stopped", "budget: the cap")
    assert end.final == snapshot(0, 2, None)
    assert (end.state.done, end.state.stopped, end.state.running) == (2, 1, 0)


def test_sweep_lines_plain_and_json() -> None:
    seen = Updates()
    watch = SweepWatch(tasks_of(Path("/x"), 1), seen)
    watch.receive(TaskEvent(0, "started", "/x/seed-0", start=RunStart("/x/seed-0", 3, None)))
    end = RunEnd("/x/seed-0", "finished", "max_steps", snapshot(3, 4))
    watch.receive(TaskEvent(0, "finished", "/x/seed-0", snapshot=end.final, end=end))
    watch.ended(TaskResult(0, "finished", "max_steps"))
    plain, lines = io.StringIO(), io.StringIO()
    for update in seen.updates:
        PlainDisplay(plain).sweep_changed(update)
        JsonDisplay(lines).sweep_changed(update)
    text = plain.getvalue()
    assert "[sweep] started seed 0" in text
    assert "[sweep] seed 0: finished (max_steps): step 3/3" in text
    assert "[sweep] 1/1 done  0 running  0 stopped  0 failed  calls 4 (1 cached)" in text
    events = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [e["change"] for e in events] == ["started", "ended"]
    assert events[-1] | {"elapsed_s": 0} == events[-1] | {
        "event": "sweep", "run": "/x/seed-0", "label": "seed 0", "status": "finished",
        "reason": "max_steps", "runs": 1, "done": 1, "running": 0, "calls": 4, "elapsed_s": 0,
    }  # fmt: skip
    assert events[-1]["final"]["step"] == 3


def test_runs_in_parallel_processes_equal_runs_one_after_another(tmp_path: Path) -> None:
    serial, parallel = Updates(), Updates()
    one = run_sweep(tasks_of(tmp_path / "serial", 4), LocalExecutor(1), serial)
    many = run_sweep(tasks_of(tmp_path / "parallel", 4), LocalExecutor(3), parallel)
    assert one.finished
    assert many.finished
    assert many.exit_code == 0
    for i in range(4):
        a = steps_of(tmp_path / "serial" / f"seed-{i}")
        b = steps_of(tmp_path / "parallel" / f"seed-{i}")
        assert [s["candidates"] for s in a] == [s["candidates"] for s in b]
    last = parallel.updates[-1].state
    assert (last.done, last.running, last.calls) == (4, 0, serial.updates[-1].state.calls)
    assert max(u.state.running for u in parallel.updates) > 1  # really in parallel
    assert len(parallel.events("started")) == len(parallel.events("ended")) == 4


def test_a_stopped_run_stops_the_sweep_starting_more_unless_it_keeps_going(
    tmp_path: Path,
) -> None:
    capped = Caps(max_calls=3)  # 3 steps need 4 calls: every run stops at its cap
    outcome = run_sweep(tasks_of(tmp_path / "a", 4, capped), LocalExecutor(2))
    statuses = [None if r is None else r.status for r in outcome.results]
    assert statuses == ["stopped", "stopped", None, None]  # the two in flight end; no more
    assert outcome.exit_code == 3
    assert not (tmp_path / "a" / "seed-2").exists()
    going = run_sweep(tasks_of(tmp_path / "b", 3, capped), LocalExecutor(1), keep_going=True)
    assert [r and r.status for r in going.results] == ["stopped"] * 3
    again = run_sweep(tasks_of(tmp_path / "b", 3), LocalExecutor(1), done=[True, False, False])
    assert again.results[0] is not None
    assert again.results[0].already_finished
    # Its stored cap holds when a run resumes (a task's caps are a new run's): the first
    # stops again, and the sweep (not keeping going) starts no other.
    assert [r and r.status for r in again.results[1:]] == ["stopped", None]


def test_an_attempt_waits_for_the_run_dirs_lock_then_resumes(tmp_path: Path) -> None:
    (task,) = tasks_of(tmp_path, 1)
    events: list[TaskEvent] = []
    assert execute(task, events.append).status == "finished"
    (task.directory / "summary.json").unlink()  # as if a killed attempt left it unfinished
    holder = RunDir.open(task.directory, lock=True)  # a first attempt still writes it
    refused = execute(task, events.append, lock_wait_s=0.3)
    assert (refused.status, refused.exit_code) == ("failed", 2)
    assert "is being written by process" in refused.reason
    threading.Timer(0.5, holder.release).start()
    waited = execute(task, events.append, lock_wait_s=30)
    assert waited.status == "finished"
    started = [e.start for e in events if e.kind == "started"]
    assert started[-1] is not None
    assert started[-1].last_step == 3  # resumed, not begun again


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["sweep", "s.toml", *argv])


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["--address", "auto"], "--address is for --executor ray"),
        (["--task-cpus", "0.5"], "--task-cpus is for --executor ray"),
        (["--executor", "ray", "--parallel", "4"], "--parallel is for --executor local"),
        (["--parallel", "0"], "--parallel must be >= 1"),
        (["--executor", "ray", "--task-retries", "-1"], "--task-retries must be >= 0"),
    ],
)
def test_executor_flags_of_the_other_executor_are_refused(argv: list[str], fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        executor_from(parse(*argv))
    assert fix in with_flags(str(caught.value))  # as the CLI shows it


def test_ray_executor_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from opro.executors.ray_cluster import RayExecutor

    args = ["--executor", "ray", "--task-cpus", "0.25", "--task-resource", "scorer=1"]
    executor = executor_from(parse(*args, "--task-resource", "gpu_a=2", "--address", "auto"))
    assert executor == RayExecutor(
        address="auto", cpus=0.25, resources={"scorer": 1.0, "gpu_a": 2.0}, retries=3
    )
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "s.toml", "--task-resource", "scorer"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "'scorer' is not NAME=AMOUNT, e.g. scorer=1" in err[0]


def test_the_forkserver_preloads_the_runs_kinds_and_server_backends_only(tmp_path: Path) -> None:
    """Workers fork from a server that imported what every run needs first: the runner, the
    runs' kinds and plain server backends; not LiteLLM (a pool) nor an embedded runtime."""
    from opro.executors.local import _modules

    def task(**settings: Any) -> RunTask:
        spec = build_spec(LinregSpec, {"reps": 1, "steps": 1} | settings)
        return RunTask(0, "run", tmp_path / "run", spec, Caps(), None, False)

    assert _modules([task(optimizer=WALKER)]) == {
        "opro.executors.task", "opro.problems.linreg", "opro.llm.fake"
    }  # fmt: skip
    served = task(optimizer="openai:m", **{"optimizer-base-url": "http://a/v1"})
    pooled = task(optimizer="openai:m", **{"optimizer-base-url": ["http://a/v1", "http://b/v1"]})
    embedded = task(optimizer="local:smollm2")
    assert _modules([served]) == {"opro.executors.task", "opro.problems.linreg", "opro.llm.openai"}
    assert _modules([pooled, embedded]) == {"opro.executors.task", "opro.problems.linreg"}
