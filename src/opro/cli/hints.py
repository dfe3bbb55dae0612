"""What the CLI prints about a stopped run, so that the command it suggests works as
printed: ``opro resume DIR`` with each cap that stopped the run raised to a concrete value
(room for two more steps at the run's pace, at least twice the cap) and ``--trust-code`` only where
the run dir names code and this user's opro did not make it (``opro.signature``); the
reason said once (``stopped (budget): the cap of 8 calls is reached``, not ``budget:
budget: ...``); and how far a run got, in words that hold at step 0.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from opro.cli.options import with_flags
from opro.errors import OproError

if TYPE_CHECKING:  # the run dir is read once a run has stopped, not when the CLI starts
    from opro.llm.usage import Caps
    from opro.problems.records import RunSummary
    from opro.runlog import RunDir
    from opro.types import StopReason

CAP_FLAGS = {
    "max_calls": ("calls is reached", "--max-calls"),
    "max_tokens_total": ("tokens is reached", "--max-tokens-total"),
    "budget_usd": ("the budget of $", "--budget-usd"),
    "time_limit_s": ("the time limit of", "--time-limit"),
}
"""Each cap: the words of the budget's message when it stops a run, and its flag."""


def steps_done(summary: RunSummary) -> str:
    """``after 3 steps``; ``after step 0 (the starting solutions)`` when only the starting
    solutions were scored; ``before step 0 was recorded`` when nothing was."""
    if summary.steps_completed >= 1:
        return f"after {summary.steps_completed} step{'' if summary.steps_completed == 1 else 's'}"
    if summary.solutions_evaluated:
        return "after step 0 (the starting solutions; nothing proposed yet)"
    return "before step 0 was recorded"


def reason(stop_reason: StopReason, message: str) -> str:
    """The message of a stop without the words its notice says already (``budget: ``) or
    that the suggested command replaces (``; raise the cap to continue``)."""
    text = message.removeprefix(f"{stop_reason}: ").replace("; raise the cap to continue", "")
    return with_flags(text, False)


def raised_caps(caps: Caps, summary: RunSummary, message: str) -> list[str]:
    """The flags that raise the caps ``message`` says stopped the run (every cap set, when
    it names none), each to room for two more steps at the run's pace so far, and at least
    twice the cap: the command does not stop again at once."""
    total = summary.total
    spent = {
        "max_calls": total.calls,
        "max_tokens_total": total.total_tokens,
        "budget_usd": total.cost_usd or 0.0,
        "time_limit_s": summary.elapsed_s,
    }
    given = {name: getattr(caps, name) for name in CAP_FLAGS if getattr(caps, name) is not None}
    named = [name for name in given if CAP_FLAGS[name][0] in message] or list(given)
    flags = []
    for name in named:
        per_step = spent[name] / max(summary.steps_completed, 1)
        value = max(2 * given[name], spent[name] + 2 * per_step)
        flags.append(f"{CAP_FLAGS[name][1]} {_up(value, whole=name != 'budget_usd')}")
    return flags


def _up(value: float, *, whole: bool) -> str:
    """``value`` rounded up: to a whole number, or to two significant digits."""
    if whole or value <= 0:
        return str(math.ceil(value))
    step = 10.0 ** (math.floor(math.log10(value)) - 1)
    return f"{round(math.ceil(value / step) * step, 12):g}"


def resume_command(run_dir: Path, stop_reason: StopReason, message: str) -> str:
    """``opro resume DIR`` with what it needs to go on (see the module docstring)."""
    from opro.runlog import RunDir

    words = ["opro", "resume", shlex.quote(str(run_dir))]
    try:
        run = RunDir.open(run_dir)
        config = run.config()
        if config.spec.imports() and not config.signed:
            words.append("--trust-code")
        if stop_reason == "budget":
            summary = _stopped_summary(run, config.runs)
            if summary is not None:
                words += raised_caps(config.caps, summary, message)
    except OproError:  # an unreadable run dir: the plain command, which says what is wrong
        pass
    return " ".join(words)


def _stopped_summary(run: RunDir, runs: tuple[str, ...]) -> RunSummary | None:
    """The summary of the run that stopped: the run's own, or a job's first unfinished."""
    if not runs:
        return run.summary()
    job = run.job_summary()
    for row in () if job is None else job.per_rep:
        if row.status != "finished" and row.run in runs:
            return type(run)(run.child(row.run)).summary()
    return None


def stopped_notice(run_dir: Path, stop_reason: StopReason, message: str) -> str:
    """``opro: run stopped (budget): the cap of 8 calls is reached — continue with `opro
    resume DIR --max-calls 16```."""
    return (
        f"opro: run stopped ({stop_reason}): {reason(stop_reason, message)} — continue with "
        f"`{resume_command(run_dir, stop_reason, message)}`"
    )
