"""The progress contract: what a long job tells whoever watches it, as frozen values.

The engine calls a ``Progress`` observer (``run_started`` → ``step_finished`` per recorded
step → ``run_finished``; ``examples_scored`` while ``evaluate`` scores); the CLI chooses how
to show it (``opro.progress_display``). A value here holds counts, scores and seconds only,
never a prompt, an output or a key. No dependencies: any layer may import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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
    status: str
    """``finished`` or ``stopped``, as in summary.json."""
    stop_reason: str
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


def eta(steps_left: int, session_step_seconds: list[float]) -> float | None:
    """Steps left × the mean of this session's step durations; None before any."""
    if not session_step_seconds:
        return None
    return max(steps_left, 0) * sum(session_step_seconds) / len(session_step_seconds)
