"""One run of a sweep as a unit of work that any executor runs, anywhere its run dir is seen.

``execute(task, sink)`` starts the run, or resumes it from its run dir when it was begun
(by an earlier sweep, or by an attempt whose worker died): a resumed run equals an
uninterrupted one, and the run dir's lock keeps a second attempt from writing at the same
time (it waits up to ``lock_wait_s`` for the first to let go, then gives up). Progress goes
to ``sink`` as ``TaskEvent`` values, small frozen data that cross a process or a machine: the
run's steps as they are recorded, and its counters every ``heartbeat_s`` seconds between
them. A task, its events and its result pickle, so that a process pool or Ray can carry them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from opro import api
from opro.errors import OproError, RunLocked
from opro.llm.usage import Caps
from opro.problems.spec import RunSpec
from opro.progress import RunEnd, RunStart, Snapshot
from opro.runner import RunOptions, RunResult
from opro.sweep import resume_options
from opro.types import TaskStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTask:
    """A planned run: where it goes and what it runs."""

    index: int
    """Its place in the sweep's plan."""
    label: str
    """Its setting and seed, for people."""
    directory: Path
    spec: RunSpec
    caps: Caps
    cache: str | None
    use_cache: bool

    @property
    def work(self) -> int:
        """Steps to record, step 0 included, over its repetitions (for the ETA)."""
        return self.spec.reps * (self.spec.engine.steps + 1)


@dataclass(frozen=True)
class TaskResult:
    index: int
    status: TaskStatus
    reason: str
    """The run's stop reason (``max_steps``, ``budget``, ``llm_error``...), or the error."""
    exit_code: int = 0
    """What ``opro sweep`` exits with when this run is the one that stopped it."""
    already_finished: bool = False
    final: tuple[str, Snapshot] | None = None
    """The last run it reported on and that run's counters at its end (so the driver has
    them whatever order events and results arrive in)."""

    @classmethod
    def of_run(cls, index: int, result: RunResult) -> TaskResult:
        if result.status == "finished":
            return cls(index, "finished", result.stop_reason, 0, result.already_finished)
        code = 4 if result.stop_reason == "llm_error" else 3
        return cls(index, "stopped", f"{result.stop_reason}: {result.message}", code)

    @classmethod
    def failure(cls, index: int, error: BaseException) -> TaskResult:
        """A run that could not run; an error opro does not raise on purpose says its type."""
        if isinstance(error, OproError):
            return cls(index, "failed", _one_line(str(error)), error.exit_code)
        return cls(index, "failed", _one_line(f"{type(error).__name__}: {error}"), 70)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class TaskEvent:
    """What a running task tells the sweep's driver."""

    index: int
    kind: Literal["started", "step", "live", "finished"]
    run_dir: str
    """The run it is about (a repetition's, for a job)."""
    start: RunStart | None = None
    snapshot: Snapshot | None = None
    """``step`` and ``live``: the run's counters; ``finished``: those at its end."""
    end: RunEnd | None = None


Sink = Callable[[TaskEvent], None]


class Putter(Protocol):
    def put(self, item: Any) -> Any: ...


@dataclass(frozen=True)
class QueueSink:
    """A sink that puts events on a queue another process drains (picklable: a process
    pool's managed queue, a Ray queue)."""

    queue: Putter

    def __call__(self, event: TaskEvent) -> None:
        try:
            self.queue.put(event)
        except Exception as exc:  # the driver is gone or going: progress never fails a run
            log.debug("progress event lost: %s", exc)


class Reporter:
    """The run's ``Progress``, turned into events for ``sink``: one per recorded step, and
    the live counters every ``heartbeat_s`` seconds while calls are made between steps."""

    def __init__(self, index: int, sink: Sink, heartbeat_s: float) -> None:
        self.index = index
        self.sink = sink
        self.heartbeat_s = heartbeat_s
        self._run_dir = ""
        self.last: tuple[str, Snapshot] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        self.close()
        self._run_dir = start.run_dir
        self.sink(TaskEvent(self.index, "started", start.run_dir, start=start))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(live, start.run_dir, self._stop), daemon=True
        )
        self._thread.start()

    def _beat(self, live: Callable[[], Snapshot], run_dir: str, stop: threading.Event) -> None:
        calls = -1
        while not stop.wait(self.heartbeat_s):
            snapshot = live()
            if snapshot.calls + snapshot.cached_calls != calls:
                calls = snapshot.calls + snapshot.cached_calls
                self.sink(TaskEvent(self.index, "live", run_dir, snapshot=snapshot))

    def step_finished(self, snapshot: Snapshot) -> None:
        self.last = (self._run_dir, snapshot)
        self.sink(TaskEvent(self.index, "step", self._run_dir, snapshot=snapshot))

    def run_finished(self, end: RunEnd) -> None:
        self.close()
        self.last = (end.run_dir, end.final)
        self.sink(TaskEvent(self.index, "finished", end.run_dir, snapshot=end.final, end=end))

    def examples_scored(self, done: int, total: int) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def execute(
    task: RunTask, sink: Sink, *, lock_wait_s: float = 0.0, heartbeat_s: float = 2.0
) -> TaskResult:
    """Run ``task`` to its end (or its stop) from wherever its run dir stands."""
    deadline = time.monotonic() + lock_wait_s
    reporter = Reporter(task.index, sink, heartbeat_s)
    while True:
        try:
            result = TaskResult.of_run(task.index, _start_or_resume(task, reporter))
            return replace(result, final=reporter.last)
        except RunLocked as exc:
            if time.monotonic() >= deadline:
                return TaskResult.failure(task.index, exc)
            time.sleep(min(2.0, max(deadline - time.monotonic(), 0.0)))
        except OproError as exc:
            return TaskResult.failure(task.index, exc)
        finally:
            reporter.close()


def _start_or_resume(task: RunTask, reporter: Reporter) -> RunResult:
    if (task.directory / "config.json").is_file():  # begun before: continue it
        return api.resume(task.directory, resume_options(task.directory, task.spec, reporter))
    options = RunOptions(task.directory, task.caps, task.cache, task.use_cache, reporter)
    return api.start(task.spec, options)
