"""``--executor local``: a sweep's runs on this machine.

``parallel=1`` runs them one after another in this process, as ``opro sweep`` always has (a
debugger and ``-v`` tracebacks reach them). ``parallel=N`` keeps N in flight, each in a worker
process of a ``concurrent.futures`` process pool (forked from a server that imported opro
once), their progress coming back on a managed queue. Processes rather than threads: a run's
own work (building prompts, parsing, scoring tours, metrics) holds the GIL; an embedded model
is loaded per process anyway; a crash or an out-of-memory kill ends one worker, not the
driver; signal handlers work in each run's main thread; and it is the Ray executor's path in
small — tasks, events and results pickled — so a sweep that runs with ``--parallel`` runs on
a cluster. A worker that dies leaves its run dir resumable: the sweep says so and stops; run
it again.

Every process the pool starts (the workers, the queue's manager) dies with the driver, even
a driver killed outright (SIGKILL, the OOM killer): each holds the read end of a pipe the
driver alone can write, and a thread that kills its process when that pipe reaches EOF. So
nothing outlives the driver holding its stdout (``opro sweep ... | tee`` sees the end), and
the forkserver, which lives as long as any of them, goes too. Their run dirs stay resumable
from their last step.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.managers import SyncManager
from typing import Any

from opro.errors import ConfigError
from opro.executors.task import QueueSink, RunTask, TaskResult, execute
from opro.executors.watch import SweepWatch
from opro.llm.registry import backend_info
from opro.problems.registry import kind_of

DIED = "its worker process died (killed, or out of memory); its run dir keeps its last step"


@dataclass(frozen=True)
class LocalExecutor:
    parallel: int = 1
    """Runs in flight at once; 1: one after another, in this process."""
    heartbeat_s: float = 2.0

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise ConfigError(f"`parallel` must be >= 1 (got {self.parallel})")

    def run(self, tasks: Sequence[RunTask], watch: SweepWatch) -> None:
        """Run ``tasks`` (in plan order), telling ``watch``; none starts once it is halted."""
        if self.parallel == 1 or len(tasks) <= 1:
            for task in tasks:
                if watch.halted:
                    return
                watch.ended(execute(task, watch.receive, heartbeat_s=self.heartbeat_s))
            return
        self._in_pool(tasks, watch)

    def _in_pool(self, tasks: Sequence[RunTask], watch: SweepWatch) -> None:
        context = _context(tasks)
        lifeline, held = multiprocessing.Pipe(duplex=False)  # `held` never leaves this process
        try:
            manager = SyncManager(ctx=context)
            manager.start(_manager_started, (lifeline,))
            try:
                events: Any = manager.Queue()
                workers = min(self.parallel, len(tasks))
                with ProcessPoolExecutor(
                    workers, mp_context=context, initializer=_bind, initargs=(lifeline,)
                ) as pool:
                    try:
                        self._drive(pool, deque(tasks), QueueSink(events), events, watch)
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
            finally:
                manager.shutdown()
        finally:
            held.close()  # what is left of the pool (nothing, normally) ends here
            lifeline.close()

    def _drive(
        self,
        pool: ProcessPoolExecutor,
        todo: deque[RunTask],
        sink: QueueSink,
        events: Any,
        watch: SweepWatch,
    ) -> None:
        running: dict[Future[TaskResult], RunTask] = {}
        while todo or running:
            while todo and len(running) < self.parallel and not watch.halted:
                task = todo.popleft()
                running[pool.submit(execute, task, sink, heartbeat_s=self.heartbeat_s)] = task
            if not running:
                return
            finished, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
            _drain(events, watch)
            for future in finished:
                watch.ended(_result(future, running.pop(future)))
            if any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                for task in running.values():  # the pool is gone, and its runs with it
                    watch.ended(TaskResult(task.index, "failed", DIED, 3))
                return


def _drain(events: Any, watch: SweepWatch) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        watch.receive(event)


def _result(future: Future[TaskResult], task: RunTask) -> TaskResult:
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, BrokenProcessPool):
        return TaskResult(task.index, "failed", DIED, 3)
    return TaskResult.failure(task.index, error)


def _context(tasks: Sequence[RunTask]) -> multiprocessing.context.BaseContext:
    """Workers forked from a server process that imported what the runs need once
    (``forkserver``): N workers start in about the time of one import, where spawning pays
    it N times; and, unlike forking this process, none inherits its threads. Spawned where
    there is no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(sorted(_modules(tasks)))
    return context


def _modules(tasks: Sequence[RunTask]) -> set[str]:
    """The modules every run imports first: the runner, its kind, its server backends (not
    the embedded model's runtime, nor LiteLLM: heavy, and only some runs use them)."""
    names = {"opro.executors.task"}
    for task in tasks:
        names.add(type(kind_of(task.spec.kind)).__module__)
        for config in task.spec.roles().values():
            info = backend_info(config.backend)
            if info.preload and not config.endpoints:
                names.add(info.target.partition(":")[0])
    return names


def _manager_started(lifeline: Connection) -> None:
    """The manager's initializer: the queue outlives a Ctrl-C (until the runs stop), not the
    driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _bind(lifeline)


def _bind(lifeline: Connection) -> None:
    """In a process the pool started: die as soon as the driver does (see the module's
    docstring). A thread, so that it holds whatever the process is doing."""
    threading.Thread(target=_watch, args=(lifeline,), name="opro-lifeline", daemon=True).start()


def _watch(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()  # the driver never writes: this returns at its end, as EOF
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
