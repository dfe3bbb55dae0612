"""The progress contract: what a long job tells whoever watches it, as frozen values.

The engine calls a ``Progress`` observer (``run_started`` → ``step_finished`` per recorded
step → ``run_finished``; ``examples_scored`` while ``evaluate`` scores); a sweep's driver
calls a ``SweepProgress`` (``sweep_changed``: its runs done, running and stopped, their
calls and cost, its ETA), whatever executor runs the runs; the CLI chooses how to show them
(``opro.progress_display``). A value here holds counts, scores and seconds only,
never a prompt, an output or a key. It imports only opro.types: any layer may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from opro.types import Status, StopReason, TaskStatus


@dataclass(frozen=True)
class Snapshot:
    """Where a run stands: its last recorded step and what it has spent so far."""

    step: int | None
    """The last step recorded (0 = the starting solutions); None before step 0 is."""
    steps: int
    """The run's last step number (``EngineSpec.steps``)."""
    best: float | None
    """The best score so far."""
    calls: int
    """LLM calls that reached a backend, over all roles and sessions of the run."""
    cached_calls: int
    tokens: int
    cost_usd: float | None
    """None when a model's price is unknown."""
    elapsed_s: float
    """Wall-clock seconds of the run, over all its sessions."""
    eta_s: float | None
    """Steps left × the mean seconds of the steps done in this session; None until one is."""


@dataclass(frozen=True)
class RunStart:
    run_dir: str
    steps: int
    last_step: int | None
    """The last step already on disk (a resumed run), or None for a fresh run."""


@dataclass(frozen=True)
class RunEnd:
    run_dir: str
    status: Status
    """``finished`` or ``stopped``, as in summary.json."""
    stop_reason: StopReason
    final: Snapshot
    """Counters as in summary.json; ``eta_s`` is 0 when finished, None when stopped."""


class Progress(Protocol):
    """An observer of long jobs. Calls come from the event loop, never concurrently."""

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        """A run begins (or resumes). ``live()`` gives the current counters at any moment
        and from any thread, for a display that refreshes during a long step."""

    def step_finished(self, snapshot: Snapshot) -> None:
        """A step was recorded in steps.jsonl."""

    def run_finished(self, end: RunEnd) -> None:
        """The run ended and summary.json is written."""

    def examples_scored(self, done: int, total: int) -> None:
        """``done`` of ``total`` (instruction, example) pairs are scored (``evaluate``)."""


@runtime_checkable
class Notices(Protocol):
    """An observer that also shows a run's notices (the CLI's displays): one line a person
    should read now, e.g. that a step's proposals all failed to parse, and the likely fix.
    Settings are named in `backticks`. A run whose observer has no ``notice`` logs it as a
    warning instead."""

    def notice(self, text: str) -> None: ...


@dataclass(frozen=True)
class SweepState:
    """Where a sweep stands, over every executor's runs."""

    runs: int
    done: int
    """Runs finished, in this session or before it."""
    running: int
    stopped: int
    """Runs that ended without finishing (a cap, an LLM failure): continued by resuming."""
    failed: int
    """Runs that could not run (an error), or whose worker kept dying."""
    calls: int
    """LLM calls of the runs this session has run, over all their sessions."""
    cached_calls: int
    tokens: int
    cost_usd: float | None
    elapsed_s: float
    """Seconds since this session of the sweep began."""
    eta_s: float | None
    """This session's pace (steps recorded per second) over the steps left; None until a
    step is recorded."""


@dataclass(frozen=True)
class SweepUpdate:
    """A run of a sweep started, recorded a step (or spent calls), or ended."""

    event: Literal["started", "progress", "ended"]
    state: SweepState
    label: str
    """The run: its setting and seed, e.g. ``order='random', seed 1``."""
    run_dir: str
    status: TaskStatus | None = None
    """``ended``: finished, stopped or failed."""
    reason: str | None = None
    """``ended``: the stop reason, or the error in one line."""
    final: Snapshot | None = None
    """``ended``: the run's counters at its end, when it recorded any."""


class SweepProgress(Protocol):
    """An observer of a sweep, called from the driver's thread only."""

    def sweep_changed(self, update: SweepUpdate) -> None:
        """A run started or ended (always told), or made progress (at most every second)."""


class NoProgress:
    """The observer that ignores everything (the default)."""

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        pass

    def step_finished(self, snapshot: Snapshot) -> None:
        pass

    def run_finished(self, end: RunEnd) -> None:
        pass

    def examples_scored(self, done: int, total: int) -> None:
        pass

    def sweep_changed(self, update: SweepUpdate) -> None:
        pass


def eta(steps_left: int, session_step_seconds: list[float]) -> float | None:
    """Steps left × the mean of this session's step durations; None before any."""
    if not session_step_seconds:
        return None
    return max(steps_left, 0) * sum(session_step_seconds) / len(session_step_seconds)
