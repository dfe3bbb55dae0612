"""A run's verdict in words: what its proposals came to (``ProposalCounts``) and, when the
run did not improve on its start, why and the likely fix. One wording for the CLI's summary,
the report, the Python result and the notice during a run.

Settings are named through ``name``: in `backticks` by default, as in every message of the
library (the CLI shows them as flags, ``opro.cli.options.with_flags``); the report names
them by their flags.
"""

from __future__ import annotations

from collections.abc import Callable

from opro.problems.records import ProposalCounts, StepRecord, Verdict
from opro.problems.spec import EngineSpec

Namer = Callable[[str], str]
HEADLINES: dict[Verdict, str] = {
    "no_valid_proposals": "no valid proposals",
    "all_duplicates": "no new proposals",
    "all_invalid": "every new proposal invalid",
    "no_improvement": "no improvement on the start",
}
"""The verdicts of a run that did not improve on its start, in a few words."""


def ticked(setting: str) -> str:
    return f"`{setting}`"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _all(n: int, word: str) -> str:
    """``the 1 new solution``, ``all 3 new solutions``."""
    return f"the {n} {word}" if n == 1 else f"all {n} {word}s"


def counts_line(counts: ProposalCounts) -> str:
    """``proposals: 12 drawn, 4 parsed (8 parse failures), 1 duplicate, 3 scored, 1 better
    than the start``."""
    return (
        f"proposals: {counts.drawn} drawn, {counts.parsed} parsed "
        f"({_plural(counts.parse_failures, 'parse failure')}), "
        f"{_plural(counts.duplicates, 'duplicate')}, {counts.scored} scored, "
        f"{counts.improvements} better than the start"
    ) + (f", {counts.invalid} invalid" if counts.invalid else "")


def advice(verdict: Verdict, engine: EngineSpec, name: Namer = ticked) -> str:
    """The likely fix for a run whose proposals came to ``verdict``."""
    model = f"a chat (instruction-tuned) or larger optimizer model ({name('optimizer')})"
    if verdict == "no_valid_proposals":
        if engine.constrained or not engine.GRAMMAR:
            return model
        held = f"proposals held to the expected form ({name('constrained')}: embedded models "
        return f"{model}, or {held}and llama.cpp servers)"
    if verdict == "all_invalid":
        return (
            "the reasons each was invalid (the report lists them): fix the objective, or say "
            f"the solution's form more plainly ({name('solution_format')})"
        )
    if verdict == "all_duplicates":
        return (
            f"a higher {name('temperature')}, more {name('samples_per_step')}, or a larger "
            f"optimizer model ({name('optimizer')})"
        )
    return f"more {name('steps')}, or {model}"


def explain(counts: ProposalCounts, engine: EngineSpec, name: Namer = ticked) -> str | None:
    """One line for a run that did not improve on its start: what its proposals came to,
    with counts, and the likely fix; None when it improved or proposed nothing yet."""
    verdict = counts.verdict
    fix = f"likely fix: {advice(verdict, engine, name)}"
    if verdict == "no_valid_proposals":
        return (
            f"{HEADLINES[verdict]}: none of the {counts.drawn} optimizer outputs held a "
            f"solution, so the best is a starting one; {fix}"
        )
    if verdict == "all_duplicates":
        return (
            f"{HEADLINES[verdict]}: all {counts.parsed} parsed proposals repeated solutions "
            f"already scored ({counts.parse_failures} of {counts.drawn} outputs did not "
            f"parse), so the best is a starting one; {fix}"
        )
    if verdict == "all_invalid":
        return (
            f"{HEADLINES[verdict]}: {_all(counts.invalid, 'new solution')} proposed could "
            f"not be scored, so the best is a starting one; {fix}"
        )
    if verdict == "no_improvement":
        return (
            f"{HEADLINES[verdict]}: {_plural(counts.scored, 'new solution')} scored, none "
            f"better than the best starting one ({counts.drawn} drawn, {counts.parsed} parsed, "
            f"{_plural(counts.duplicates, 'duplicate')}); {fix}"
        )
    return None


def step_notice(record: StepRecord, engine: EngineSpec, name: Namer = ticked) -> str | None:
    """A line for a step whose proposals all came to nothing (every output failed to parse,
    or every parsed one was seen before), with the likely fix; else None."""
    counts = ProposalCounts().plus(record, None, "max")
    verdict = counts.verdict
    if verdict not in ("no_valid_proposals", "all_duplicates", "all_invalid"):
        return None
    what = {
        "no_valid_proposals": f"none of the {counts.drawn} optimizer outputs held a solution "
        "(parse failures)",
        "all_duplicates": f"all {counts.parsed} parsed proposals repeated solutions already scored",
        "all_invalid": f"{_all(counts.invalid, 'new solution')} could not be scored",
    }[verdict]
    return f"step {record.step}: {what}; if this goes on, try {advice(verdict, engine, name)}"
