"""Who runs a sweep's runs: this process, a pool of local processes, or a Ray cluster.

``run_sweep(tasks, executor, progress)`` runs the tasks not yet finished and returns every
task's result in plan order. An executor only runs tasks and reports to the ``SweepWatch``;
what a run does is ``task.execute``'s (start or resume its run dir), so the run dirs — and
the sweep.json and reports made from them — are the same whatever the executor. Once a run
ends without finishing, no other starts (those in flight finish), unless ``keep_going``.

Executors: ``LocalExecutor(parallel=N)`` (``local``) and ``RayExecutor`` (``ray_cluster``,
the ``ray`` extra). The scheduling is theirs (a process pool, Ray): opro only submits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opro.executors.local import LocalExecutor
from opro.executors.task import RunTask, TaskResult
from opro.executors.watch import SweepWatch
from opro.progress import NoProgress, SweepProgress


class Executor(Protocol):
    def run(self, tasks: Sequence[RunTask], watch: SweepWatch) -> None:
        """Run ``tasks``, reporting their events and ends to ``watch``; start none once
        ``watch.halted``."""


@dataclass(frozen=True)
class SweepOutcome:
    results: tuple[TaskResult | None, ...]
    """Each task's result in plan order; None for a task not run (the sweep stopped)."""

    @property
    def finished(self) -> bool:
        return all(r is not None and r.status == "finished" for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every run finished; else the code of the first run (in plan order) that
        failed, or else that stopped."""
        ended = [r for r in self.results if r is not None and r.status != "finished"]
        failed = [r for r in ended if r.status == "failed"]
        return (failed or ended)[0].exit_code if ended else 0


def run_sweep(
    tasks: Sequence[RunTask],
    executor: Executor,
    progress: SweepProgress | None = None,
    *,
    keep_going: bool = False,
    done: Sequence[bool] | None = None,
) -> SweepOutcome:
    """Run the tasks that are not ``done`` (finished before) with ``executor``."""
    done = done or [False] * len(tasks)
    todo = [task for task, finished in zip(tasks, done, strict=True) if not finished]
    before = len(tasks) - len(todo)
    watch = SweepWatch(
        todo, progress or NoProgress(), finished_before=before, keep_going=keep_going
    )
    executor.run(todo, watch)
    results = watch.results()
    return SweepOutcome(
        tuple(
            TaskResult(task.index, "finished", "finished before", already_finished=True)
            if finished
            else results.get(task.index)
            for task, finished in zip(tasks, done, strict=True)
        )
    )


__all__ = [
    "Executor",
    "LocalExecutor",
    "RunTask",
    "SweepOutcome",
    "SweepWatch",
    "TaskResult",
    "run_sweep",
]
