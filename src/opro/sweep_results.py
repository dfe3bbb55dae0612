"""A sweep's results: its runs' summaries read back, the mean over seeds of each setting's
headline numbers (``sweep.json``), the table printed at its end, and the groups a report
each covers. The planning, the run dirs and their claim are ``opro.sweep``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opro.problems.jobs import JobSummary
from opro.problems.records import RunSummary
from opro.problems.registry import Kind
from opro.runlog import write_json_atomic
from opro.sweep import PlannedRun, Setting, SweepPlan, plan_json


def summarize(
    plan: SweepPlan, runs: Sequence[PlannedRun], summaries: Sequence[Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """One row per setting: its runs' headline numbers and their mean over the seeds."""
    rows: dict[Setting, dict[str, Any]] = {}
    keys: list[str] = []
    for run, summary in zip(runs, summaries, strict=True):
        row = rows.setdefault(
            run.setting,
            {"group": run.setting.group, "setting": run.setting.label, "runs": []},
        )
        numbers = headline(plan.kind, summary)
        keys += [k for k in numbers if k not in keys and k != "status"]
        row["runs"].append({"seed": run.seed, "dir": str(run.directory), **numbers})
    for row in rows.values():
        for key in keys:
            values = [r[key] for r in row["runs"] if isinstance(r.get(key), int | float)]
            if values:
                row[f"mean_{key}"] = sum(values) / len(values)
    return list(rows.values())


def headline(kind: Kind[Any], summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers a sweep compares, from a run's (or a job's) summary.json."""
    if summary is None:
        return {"status": "not run"}
    if summary.get("kind") == "job":  # repetitions: the mean of each number
        job = JobSummary.from_json(summary)
        return {"status": job.status} | {k: m.mean for k, m in job.means.items()}
    run = RunSummary.from_json(summary)
    return {"status": run.status, "steps_completed": run.steps_completed} | kind.headline(run)


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
) -> dict[str, Any]:
    result = {"plan": plan_json(plan), "settings": summarize(plan, runs, summaries)}
    write_json_atomic(out / "sweep.json", result)
    return result


def table(result: Mapping[str, Any]) -> str:
    """The settings side by side: the mean over seeds of each headline number."""
    rows = result["settings"]
    keys = list(dict.fromkeys(k[5:] for row in rows for k in row if k.startswith("mean_")))
    width = max([len("setting"), *(len(row["setting"]) for row in rows)])
    lines = [f"{'setting':<{width}}  seeds  " + "  ".join(f"{k:>18}" for k in keys)]
    for row in rows:
        cells = [row.get(f"mean_{k}") for k in keys]
        shown = "  ".join(f"{'-' if c is None else f'{c:.2f}':>18}" for c in cells)
        lines.append(f"{row['setting']:<{width}}  {len(row['runs']):>5}  {shown}")
    return "\n".join(lines)
