"""What the CLI says about how a run went: the summary lines on its proposals (counts, and
why a run did not improve on its start, with the likely fix), and the run's notices during
it — each naming flags (``--constrained``) where the library names settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opro.cli.options import with_flags
from opro.problems.records import RunSummary
from opro.problems.verdict import HEADLINES, counts_line, explain
from opro.progress import Progress, RunEnd, RunStart, Snapshot

if TYPE_CHECKING:
    from opro.progress_display import Display
    from opro.run_values import RunResult


def verdict_lines(result: RunResult) -> list[str]:
    """A run's proposal counts and, unless it improved on its start, why and the fix; for
    a job, its runs that did not improve."""
    if result.reps:
        bad = [(r, HEADLINES[r.verdict]) for r in result.reps if r.verdict in HEADLINES]
        if not bad:
            return []
        runs = ", ".join(f"{r.run_dir.name} ({words})" for r, words in bad)
        advice = bad[0][0].advice or ""
        fix = with_flags(advice[advice.find("likely fix: ") :], False)
        return [
            f"{len(bad)} of {len(result.reps)} runs did not improve on their start: {runs}; {fix}"
        ]
    summary = result.summary
    if not isinstance(summary, RunSummary) or summary.proposals is None:
        return []
    why = explain(summary.proposals, result.spec.engine)
    return [counts_line(summary.proposals), *([] if why is None else [with_flags(why, False)])]


def headline(result: RunResult) -> str:
    """``: no valid proposals`` after a run's status when it did not improve on its start."""
    words = None if result.verdict is None else HEADLINES.get(result.verdict)
    return "" if words is None else f": {words}"


class FlaggedNotices:
    """The CLI's display as a run's progress, its notices naming flags."""

    def __init__(self, display: Display) -> None:
        self.display = display

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        self.display.run_started(start, live)

    def step_finished(self, snapshot: Snapshot) -> None:
        self.display.step_finished(snapshot)

    def run_finished(self, end: RunEnd) -> None:
        self.display.run_finished(end)

    def examples_scored(self, done: int, total: int) -> None:
        self.display.examples_scored(done, total)

    def notice(self, text: str) -> None:
        self.display.notice(with_flags(text, False))


def flagged(display: Display) -> Progress:
    return FlaggedNotices(display)
