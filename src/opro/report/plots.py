"""The report's figures of several directories: their curves overlaid, one figure per kind
shared by two or more directories; runs sharing a label are drawn as their mean with a
±1 sd band. Each kind's report facet gives its curve (``KindReport.overlay_curve``: best so
far, or a TSP's gap to its optimum) and axis; one run's own figures are its kind's
(``KindReport.figures``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from matplotlib.figure import Figure

from opro import plotting
from opro.problems.jobs import JobRecord, RunRecord
from opro.problems.registry import Kind, Plot, kind_of


def overlay_plots(jobs: Sequence[JobRecord]) -> list[Plot]:
    plots = []
    for name in dict.fromkeys(job.kind for job in jobs):
        same = [j for j in jobs if j.kind == name]
        if len(same) >= 2:
            kind = kind_of(name)
            svg = plotting.to_svg(overlay_figure(kind, same))
            plots.append(Plot(f"overlay-{name}", f"Best so far, {kind.title} runs", svg))
    return plots


def overlay_figure(kind: Kind[object], jobs: Sequence[JobRecord]) -> Figure:  # type: ignore[type-var]
    figure = Figure(figsize=plotting.WIDE)
    ax = figure.add_subplot()
    groups: dict[str, list[RunRecord]] = {}
    for job in jobs:
        groups.setdefault(job.label, []).extend(job.runs)
    values: list[float] = []
    for i, (label, runs) in enumerate(groups.items()):
        curves = [(c, _held(r)) for r in runs if (c := kind.report.overlay_curve(r))]
        values += [v for c, _ in curves for _, v in c]
        if len(curves) == 1:
            ax.plot(
                *zip(*curves[0][0], strict=True), drawstyle="steps-post", color=plotting.color(i)
            )
            ax.lines[-1].set_label(plotting.plain(label))
        elif curves:
            xs, mean, low, high = mean_band(curves)
            ax.plot(xs, mean, drawstyle="steps-post", color=plotting.color(i), lw=2)
            ax.lines[-1].set_label(plotting.plain(f"{label} (mean ± sd of {len(curves)})"))
            ax.fill_between(xs, low, high, step="post", color=plotting.color(i), alpha=0.2)
    if kind.direction_of(jobs[0].spec) == "min":
        plotting.objective_scale(ax, values)
    plotting.steps_axis(ax)
    ax.set_ylabel(kind.report.overlay_axis)
    ax.set_title(f"Best so far, {kind.title} runs")
    ax.legend(fontsize=8)
    return figure


def _held(run: RunRecord) -> bool:
    """Whether the run stopped at the optimum (its best so far holds to any later step)."""
    return run.summary is not None and run.summary.stop_reason == "optimum"


def mean_band(
    curves: Sequence[tuple[Sequence[tuple[int, float]], bool]],
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Mean and mean ± sd per step over the curves that reach it; a curve flagged as held
    (its run stopped at the optimum) keeps its last value to the end."""
    tables = [(dict(c), c[-1], held) for c, held in curves]
    last = max(end for _, (end, _), _ in tables)
    xs, mean, low, high = [], [], [], []
    for step in range(last + 1):
        here = [
            table.get(step, end_value)
            for table, (end, end_value), held in tables
            if step in table or (held and step > end)
        ]
        if not here:
            continue
        m = statistics.fmean(here)
        sd = statistics.pstdev(here) if len(here) > 1 else 0.0
        xs.append(step)
        mean.append(m)
        low.append(m - sd)
        high.append(m + sd)
    return xs, mean, low, high
