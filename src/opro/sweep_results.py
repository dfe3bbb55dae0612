"""A sweep's results: its runs' summaries read back, the mean over seeds of each setting's
headline numbers (``sweep.json``), the table printed at its end, and the groups a report
each covers. The planning, the run dirs and their claim are ``opro.sweep``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opro.problems.jobs import JobSummary
from opro.problems.records import RunSummary
from opro.problems.registry import Kind
from opro.runlog import write_json_atomic
from opro.sweep import PlannedRun, Setting, SweepPlan, plan_json


@dataclass(frozen=True)
class SeedResult:
    """One run of a setting: its seed, its directory and its headline numbers."""

    seed: int
    directory: str
    status: str
    """``finished``, ``stopped``, ``running``, or ``not run``."""
    numbers: Mapping[str, float | None]


@dataclass(frozen=True)
class SettingResult:
    """One setting of a sweep (a row of its table): its runs over the seeds and the mean
    of each headline number over those that have it."""

    group: str
    setting: str
    runs: tuple[SeedResult, ...]
    means: Mapping[str, float]

    def to_json(self) -> dict[str, object]:  # sweep.json: each mean as ``mean_NAME``
        runs = [{"seed": r.seed, "dir": r.directory, "status": r.status, **r.numbers}
                for r in self.runs]  # fmt: skip
        means = {f"mean_{key}": value for key, value in self.means.items()}
        return {"group": self.group, "setting": self.setting, "runs": runs, **means}


def summarize(
    plan: SweepPlan, runs: Sequence[PlannedRun], summaries: Sequence[Mapping[str, Any] | None]
) -> list[SettingResult]:
    """One result per setting: its runs' headline numbers and their mean over the seeds."""
    seeds: dict[Setting, list[SeedResult]] = {}
    keys: list[str] = []
    for run, summary in zip(runs, summaries, strict=True):
        status, numbers = headline(plan.kind, summary)
        keys += [k for k in numbers if k not in keys]
        result = SeedResult(run.seed, str(run.directory), status, numbers)
        seeds.setdefault(run.setting, []).append(result)
    out = []
    for setting, results in seeds.items():
        means = {}
        for key in keys:
            values = [v for r in results if isinstance(v := r.numbers.get(key), int | float)]
            if values:
                means[key] = sum(values) / len(values)
        out.append(SettingResult(setting.group, setting.label, tuple(results), means))
    return out


def headline(
    kind: Kind[Any], summary: Mapping[str, Any] | None
) -> tuple[str, dict[str, float | None]]:
    """A run's (or a job's) status and the numbers a sweep compares, from its summary.json."""
    if summary is None:
        return "not run", {}
    if summary.get("kind") == "job":  # repetitions: the mean of each number
        job = JobSummary.from_json(summary)
        return job.status, {k: m.mean for k, m in job.means.items()}
    run = RunSummary.from_json(summary)
    return run.status, {"steps_completed": run.steps_completed} | kind.report.headline(run)


# --- a sweep's directory ------------------------------------------------------------------


def groups(runs: Sequence[PlannedRun]) -> dict[str, list[PlannedRun]]:
    """The runs of each group (an axis, or the grid), in plan order: one report each."""
    grouped: dict[str, list[PlannedRun]] = {}
    for run in runs:
        grouped.setdefault(run.setting.group, []).append(run)
    return grouped


def write_results(
    out: Path,
    plan: SweepPlan,
    runs: Sequence[PlannedRun],
    summaries: Sequence[Mapping[str, Any] | None],
) -> list[SettingResult]:
    """The settings' results, also written to ``out/sweep.json`` (with the plan)."""
    settings = summarize(plan, runs, summaries)
    data = {"plan": plan_json(plan), "settings": [s.to_json() for s in settings]}
    write_json_atomic(out / "sweep.json", data)
    return settings


def table(settings: Sequence[SettingResult]) -> str:
    """The settings side by side: the mean over seeds of each headline number."""
    keys = list(dict.fromkeys(k for s in settings for k in s.means))
    width = max([len("setting"), *(len(s.setting) for s in settings)])
    lines = [f"{'setting':<{width}}  seeds  " + "  ".join(f"{k:>18}" for k in keys)]
    for s in settings:
        cells = [s.means.get(k) for k in keys]
        shown = "  ".join(f"{'-' if c is None else f'{c:.2f}':>18}" for c in cells)
        lines.append(f"{s.setting:<{width}}  {len(s.runs):>5}  {shown}")
    return "\n".join(lines)
