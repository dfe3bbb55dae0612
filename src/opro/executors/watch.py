"""The sweep's driver-side view of its runs, whatever executes them: the ``TaskEvent`` values
tasks send and the results executors hand back become one ``SweepState`` (runs done,
running, stopped, failed; calls, tokens and cost; an ETA) for a ``SweepProgress``.

The ETA is this session's pace — steps recorded per second, over every run in flight — times
the steps left, so that it holds for one run at a time as for a cluster of them. Thread-safe:
an executor may report from any thread; the observer is called under one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from opro.executors.task import RunTask, TaskEvent, TaskResult
from opro.progress import Snapshot, SweepProgress, SweepState, SweepUpdate


@dataclass
class _Task:
    task: RunTask
    started: bool = False
    result: TaskResult | None = None
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    """The latest counters of each of its runs (one, or a job's repetitions)."""
    steps: dict[str, int] = field(default_factory=dict)
    """The steps recorded in each of its runs."""
    steps_before: int = 0
    """Steps recorded before this session (a resumed run)."""
    last_run: str = ""

    @property
    def recorded(self) -> int:
        return sum(self.steps.values())


class SweepWatch:
    def __init__(
        self,
        tasks: Sequence[RunTask],
        progress: SweepProgress,
        *,
        finished_before: int = 0,
        keep_going: bool = False,
        throttle_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress = progress
        self.keep_going = keep_going
        self.total = len(tasks) + finished_before
        self.finished_before = finished_before
        self._tasks = {task.index: _Task(task) for task in tasks}
        self._lock = threading.Lock()
        self._clock = clock
        self._began = clock()
        self._throttle_s = throttle_s
        self._shown = -throttle_s

    @property
    def halted(self) -> bool:
        """Whether no other run should start: one ended without finishing (unless the sweep
        keeps going)."""
        with self._lock:
            return not self.keep_going and any(
                t.result is not None and t.result.status != "finished" for t in self._tasks.values()
            )

    def started(self, index: int) -> bool:
        with self._lock:
            return self._tasks[index].started

    def receive(self, event: TaskEvent) -> None:
        with self._lock:
            entry = self._tasks[event.index]
            first = not entry.started
            entry.started = True
            entry.last_run = event.run_dir
            if event.start is not None:
                done = 0 if event.start.last_step is None else event.start.last_step + 1
                if event.run_dir not in entry.steps:
                    entry.steps_before += done
                entry.steps[event.run_dir] = done
            if event.snapshot is not None:
                entry.snapshots[event.run_dir] = event.snapshot
                if event.kind == "step" and event.snapshot.step is not None:
                    entry.steps[event.run_dir] = event.snapshot.step + 1
            if entry.result is not None:
                return  # late news of a run that ended (events may trail its result)
            if first:
                self._tell("started", entry)
            elif event.kind in ("step", "live"):
                now = self._clock()
                if now - self._shown >= self._throttle_s:
                    self._shown = now
                    self._tell("progress", entry)

    def ended(self, result: TaskResult) -> None:
        """An executor's word that a task ended (finished, stopped, or failed)."""
        with self._lock:
            entry = self._tasks[result.index]
            entry.result = result
            if result.final is not None:
                entry.last_run, entry.snapshots[result.final[0]] = result.final
            self._tell("ended", entry)

    def results(self) -> dict[int, TaskResult]:
        with self._lock:
            return {i: t.result for i, t in self._tasks.items() if t.result is not None}

    def state(self) -> SweepState:
        with self._lock:
            return self._state()

    def _state(self) -> SweepState:
        entries = list(self._tasks.values())
        ended = [t.result for t in entries if t.result is not None]
        snapshots = [s for t in entries for s in t.snapshots.values()]
        costs = [s.cost_usd for s in snapshots]
        elapsed = self._clock() - self._began
        return SweepState(
            runs=self.total,
            done=self.finished_before + sum(r.status == "finished" for r in ended),
            running=sum(t.started and t.result is None for t in entries),
            stopped=sum(r.status == "stopped" for r in ended),
            failed=sum(r.status == "failed" for r in ended),
            calls=sum(s.calls for s in snapshots),
            cached_calls=sum(s.cached_calls for s in snapshots),
            tokens=sum(s.tokens for s in snapshots),
            cost_usd=None if None in costs else sum(c for c in costs if c is not None),
            elapsed_s=round(elapsed, 3),
            eta_s=self._eta(entries, elapsed),
        )

    @staticmethod
    def _eta(entries: list[_Task], elapsed: float) -> float | None:
        recorded = sum(t.recorded - t.steps_before for t in entries)
        if recorded <= 0 or elapsed <= 0:
            return None
        left = sum(
            max(t.task.work - t.recorded, 0)
            for t in entries
            if t.result is None  # a run that ended has nothing left this session
        )
        return round(left * elapsed / recorded, 3)

    def _tell(self, event: Literal["started", "progress", "ended"], entry: _Task) -> None:
        result = entry.result
        update = SweepUpdate(
            event=event,
            state=self._state(),
            label=entry.task.label,
            run_dir=str(entry.task.directory),
            status=None if result is None else result.status,
            reason=None if result is None else result.reason,
            final=entry.snapshots.get(entry.last_run),
        )
        self.progress.sweep_changed(update)
