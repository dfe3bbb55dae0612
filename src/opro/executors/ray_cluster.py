"""``--executor ray``: each run of a sweep is a Ray task, as many in flight as the cluster's
resources allow (an optional extra: ``pip install 'opro[ray]'``).

A task asks for ``cpus`` (and ``gpus``, and custom ``resources`` such as a ``scorer`` token a
cluster's nodes declare, to bound the runs sharing one model server). Ray schedules them; when
a worker dies (killed, out of memory, a node lost) Ray runs the task again, and that attempt
resumes the run dir from its last recorded step — the run dir's lock keeps two attempts from
writing it at once, the second waiting up to ``lock_wait_s`` for the first to let go. A run
stopped by a signal (``interrupted``: a preempted node) is retried the same way. Progress
comes back on a Ray queue; results by ``ray.wait``.

Every node must see the run dirs at the same path (a shared filesystem), and have opro, the
data and the keys its runs need (see docs/tutorials/scaling-out.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opro.errors import ConfigError, MissingDependency
from opro.executors.task import RunTask, TaskEvent, TaskResult, execute
from opro.executors.watch import SweepWatch

log = logging.getLogger(__name__)


class RunInterrupted(Exception):
    """A run stopped by a signal in a Ray worker: Ray starts the task again (it resumes)."""


@dataclass(frozen=True)
class ActorSink:
    """Events to the Ray queue's actor without waiting for it: a task blocked in ``ray.get``
    lends its CPUs to another task, which would let more runs in flight than asked."""

    actor: Any

    def __call__(self, event: TaskEvent) -> None:
        try:
            self.actor.put_nowait.remote(event)
        except Exception as exc:  # the driver is gone or going: progress never fails a run
            log.debug("progress event lost: %s", exc)


def run_task(task: RunTask, sink: ActorSink, lock_wait_s: float, heartbeat_s: float) -> TaskResult:
    """The Ray task: ``execute``, a signal's stop raised so that Ray retries it."""
    result = execute(task, sink, lock_wait_s=lock_wait_s, heartbeat_s=heartbeat_s)
    if result.status == "stopped" and result.reason.startswith("interrupted"):
        raise RunInterrupted(result.reason)
    return result


@dataclass(frozen=True)
class RayExecutor:
    address: str | None = None
    """The cluster (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); None: ``$RAY_ADDRESS``,
    else a Ray started on this machine for the sweep."""
    cpus: float = 1.0
    gpus: float = 0.0
    resources: Mapping[str, float] = field(default_factory=dict)
    retries: int = 3
    """Times a task whose worker died is started again."""
    lock_wait_s: float = 300.0
    heartbeat_s: float = 2.0

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0 or any(v <= 0 for v in self.resources.values()):
            raise ConfigError("`cpus` and `gpus` must be >= 0, `resources` > 0")
        if self.retries < 0:
            raise ConfigError(f"`retries` must be >= 0 (got {self.retries})")

    def run(self, tasks: Sequence[RunTask], watch: SweepWatch) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise MissingDependency("`executor='ray'` needs Ray: pip install 'opro[ray]'") from None
        ours = not ray.is_initialized()
        if ours:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {self.address or '$RAY_ADDRESS'} ({exc}): "
                    "start it (`ray start --head`), or fix `address`"
                ) from None
        events = Queue(actor_options={"num_cpus": 0})
        try:
            self._drive(ray, tasks, watch, events)
        finally:
            with contextlib.suppress(Exception):  # a queue already lost
                events.shutdown()
            if ours:
                ray.shutdown()

    def _drive(self, ray: Any, tasks: Sequence[RunTask], watch: SweepWatch, events: Any) -> None:
        remote = ray.remote(run_task).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            resources=dict(self.resources) or None,
            max_retries=self.retries,
            retry_exceptions=[RunInterrupted],
        )
        sink = ActorSink(events.actor)
        pending = {
            remote.remote(task, sink, self.lock_wait_s, self.heartbeat_s): task for task in tasks
        }
        cancelled, listening = False, True
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
                listening = listening and _drain(events, watch)
                for ref in ready:
                    task = pending.pop(ref)
                    result = _result(ray, ref, task, watch, self.retries)
                    if result is not None:
                        watch.ended(result)
                if watch.halted and not cancelled:  # runs not yet begun do not begin
                    cancelled = True
                    for ref, task in pending.items():
                        if not watch.started(task.index):
                            ray.cancel(ref)
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise


def _drain(events: Any, watch: SweepWatch) -> bool:
    """Hand the queued events to ``watch``; False once the queue is lost (its actor killed,
    e.g. by Ray's memory monitor): progress is not worth a sweep, which goes on without."""
    from ray import exceptions

    try:
        size = events.qsize()
        for event in events.get_nowait_batch(size) if size else []:
            watch.receive(event)
    except exceptions.RayError as exc:
        log.warning("opro: the sweep's progress queue is lost (%s); the runs go on", exc)
        return False
    return True


def _result(
    ray: Any, ref: Any, task: RunTask, watch: SweepWatch, retries: int
) -> TaskResult | None:
    """The task's result; a task cancelled before it began has none."""
    from ray import exceptions

    try:
        result: TaskResult = ray.get(ref)
    except exceptions.TaskCancelledError:
        if not watch.started(task.index):
            return None
        return TaskResult(task.index, "stopped", "cancelled: the sweep stopped", 3)
    except exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        if isinstance(cause, RunInterrupted):
            return TaskResult(task.index, "stopped", str(cause), 3)
        return TaskResult.failure(task.index, cause)
    except exceptions.RayError as exc:  # the worker or its node kept dying
        reason = " ".join(str(exc).split())[:300]
        return TaskResult(
            task.index,
            "failed",
            f"{type(exc).__name__} after {retries} retries: {reason}",
            3,
        )
    return result
