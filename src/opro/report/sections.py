"""What each section of a report shows, as plain values for the template: facts (name,
value), tables of strings, images. The parts every kind shares are here (models, loop
settings, usage and cost, the command that reproduces the run, the overview of several
runs); a kind's report facet adds its own facts, tables and figures (``KindReport``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opro.llm.usage import RoleUsage
from opro.problems.jobs import JobRecord
from opro.problems.records import ProposalCounts
from opro.problems.registry import Table, kind_of
from opro.problems.spec import RunSpec, default_at, flag_of, settings_of, value_at
from opro.problems.verdict import HEADLINES, counts_line, explain

DASH = "—"
UNFINISHED = "not finished (still running, or killed): `opro resume {path}` continues it"


@dataclass(frozen=True)
class Image:
    file: str
    caption: str
    src: str
    """A ``data:image/svg+xml;base64,…`` URI."""


@dataclass(frozen=True)
class Section:
    anchor: str
    label: str
    path: str
    kind: str
    status: str
    stop_reason: str
    message: str
    verdict: str
    """Why the run did not improve on its start, with the likely fix; empty when it did."""
    headline: str
    """That in a few words (``no valid proposals``), for a badge beside its status."""
    facts: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    images: tuple[Image, ...]


def section(job: JobRecord, index: int, images: tuple[Image, ...]) -> Section:
    kind = kind_of(job.kind)
    unfinished = job.status in ("running", "unfinished")
    counts = proposals(job)
    return Section(
        anchor=f"run-{index}",
        label=job.label,
        path=str(job.path),
        kind=kind.title,
        status=job.status,
        stop_reason=job.stop_reason or DASH,
        message=job.message or (UNFINISHED.format(path=job.path) if unfinished else ""),
        verdict=explain(counts, job.spec.engine, flag_of) or "",
        headline=HEADLINES.get(counts.verdict, ""),
        facts=tuple(common_facts(job) + kind.report.facts(job)),
        tables=(*kind.report.tables(job), usage_table(job.usage())),
        images=images,
    )


def common_facts(job: JobRecord) -> list[tuple[str, str]]:
    spec = job.spec
    engine = spec.engine
    facts = [(role, config.spec) for role, config in spec.roles().items()]
    done = ", ".join(str(r.last_step) for r in job.runs)
    temperature = str(engine.temperature)
    if engine.temperature_end is not None:
        temperature += f" → {engine.temperature_end}"
    return [
        *facts,
        ("steps done / configured", f"{done} / {engine.steps}"),
        ("samples per step", str(engine.samples_per_step)),
        ("temperature", temperature),
        ("top-k shown", str(engine.top_k)),
        ("proposals", counts_line(proposals(job)).removeprefix("proposals: ")),
        ("seed", ", ".join(str(r.spec.engine.seed) for r in job.runs)),
        ("elapsed", duration(job.elapsed_s)),
        ("reproduce", reproduce(spec)),
    ]


def reproduce(spec: RunSpec) -> str:
    """The command that runs ``spec`` again, or, where its data was given in Python (rows in
    memory, which no command line holds), that it is rerun from the user's script."""
    given = kind_of(spec.kind).report.given_in_python(spec)
    if given:
        return (
            f"this run's data ({', '.join(given)}) was given in Python: rerun it from your "
            "script (config.json holds the whole spec)"
        )
    return command_line(spec)


def proposals(job: JobRecord) -> ProposalCounts:
    """What the optimizer's proposals came to, over the job's runs (from their steps, so a
    run dir of any format has them)."""
    return sum((ProposalCounts.of(r.steps, r.direction) for r in job.runs), ProposalCounts())


def command_line(spec: RunSpec) -> str:
    """The ``opro`` command that runs ``spec`` again: its settings that differ from their
    defaults, as flags (a setting with no flag, e.g. a TSP instance's points, is named)."""
    kind = kind_of(spec.kind)
    words = ["opro", kind.command]
    apart = []
    for name, path in settings_of(type(spec)).items():
        value, default = value_at(spec, path), default_at(type(spec), path)
        if value == default or (value is None and default is ...):
            continue
        words += _flag_words(name, value)
        if not _flag_words(name, value):
            apart.append(name)
    line = shlex.join(words)
    return line + (f" (and {', '.join(apart)} as in config.json)" if apart else "")


def _flag_words(name: str, value: Any) -> list[str]:
    flag = flag_of(name)
    if isinstance(value, bool):
        return [flag] if value else [f"--no-{flag[2:]}"]
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return [w for v in value for w in (flag, v)]
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return [flag, f"{value[0]},{value[1]}"]
    if isinstance(value, int | float | str):
        return [flag, str(value)]
    return []


def usage_table(usage: Mapping[str, RoleUsage]) -> Table:
    headers = ("role", "calls", "cached", "retries", "failures", "prompt tokens",
               "completion tokens", "cost (USD)")  # fmt: skip
    rows = tuple(
        (
            role,
            str(u.calls),
            str(u.cached_calls),
            str(u.retries),
            str(u.failures),
            str(u.prompt_tokens),
            str(u.completion_tokens),
            "unknown price" if u.cost_usd is None else f"{u.cost_usd:.4f}",
        )
        for role, u in usage.items()
    )
    return Table("Usage and cost per role", headers, rows, "numbers")


def overview(jobs: Sequence[JobRecord]) -> Table:
    headers = ("run", "kind", "status", "steps", "best score")
    rows = []
    for job in jobs:
        kind = kind_of(job.kind)
        scores = [curve[-1][1] for r in job.runs if (curve := r.best_so_far())]
        pick = max if kind.direction_of(job.spec) == "max" else min
        chosen = pick(scores) if scores else None
        rows.append(
            (
                job.label,
                kind.title,
                job.status,
                ", ".join(str(r.last_step) for r in job.runs),
                DASH if chosen is None else f"{chosen:.4g}",
            )
        )
    return Table("Runs", headers, tuple(rows))


def duration(seconds: float) -> str:
    """``0.042`` → ``0.04 s``; ``75.2`` → ``75.2 s``; ``3725`` → ``1 h 02 min 05 s``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"
