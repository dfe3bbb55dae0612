"""The linear regression kind's figures (its report facet, loaded when a report is drawn):
the objective per step, and the steps each repetition took to reach (w_true, b_true)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from opro import plotting
from opro.problems.jobs import JobRecord
from opro.problems.linreg import steps_to_optimum
from opro.problems.registry import Plot


def figures(job: JobRecord) -> list[Plot]:
    return [
        Plot("objective", "Objective value per step", plotting.to_svg(_objective(job))),
        Plot("steps-to-optimum", "Steps to the optimum", plotting.to_svg(_steps(job))),
    ]


def _objective(job: JobRecord) -> Figure:
    figure = Figure(figsize=plotting.WIDE)
    ax = figure.add_subplot()
    values: list[float] = []
    for i, run in enumerate(job.runs):
        name = plotting.plain(run.path.name)
        values += plotting.candidates_and_best(ax, run, f"{name} proposals", "_", i)
    plotting.objective_scale(ax, values)
    plotting.steps_axis(ax)
    ax.set_ylabel("objective (sum of squared residuals)")
    ax.set_title(plotting.plain(f"{job.label}: objective per step (lines: best so far)"))
    ax.legend(fontsize=8, ncol=2)
    return figure


def _steps(job: JobRecord) -> Figure:
    figure = Figure(figsize=(max(4.0, 1.1 * len(job.runs) + 2), 3.6))
    ax = figure.add_subplot()
    for i, run in enumerate(job.runs):
        reached = steps_to_optimum(run)
        if reached is None:
            ax.bar(i, run.last_step, color="white", edgecolor="gray", hatch="//")
            label = f"not reached\n({run.last_step} steps)"
            ax.annotate(label, (i, run.last_step), ha="center", va="bottom")
        else:
            ax.bar(i, reached, color=plotting.color(0))
            ax.annotate(str(reached), (i, reached), ha="center", va="bottom")
    ax.set_xticks(range(len(job.runs)), [plotting.plain(r.path.name) for r in job.runs])
    ax.set_ylabel("steps to the optimum")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(plotting.plain(f"{job.label}: steps to (w_true, b_true)"))
    ax.margins(y=0.25)
    return figure
