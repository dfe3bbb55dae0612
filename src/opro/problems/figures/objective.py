"""The objective kind's figure (its report facet, loaded when a report is drawn): every
solution's score per step, with the best so far, one colour per repetition."""

from __future__ import annotations

from matplotlib.figure import Figure

from opro import plotting
from opro.problems.jobs import JobRecord
from opro.problems.registry import Plot


def figures(job: JobRecord) -> list[Plot]:
    return [Plot("scores", "Score per step", plotting.to_svg(_scores(job)))]


def _scores(job: JobRecord) -> Figure:
    figure = Figure(figsize=plotting.WIDE)
    ax = figure.add_subplot()
    for i, run in enumerate(job.runs):
        name = plotting.plain(run.path.name)
        plotting.candidates_and_best(ax, run, f"{name} solutions", f"{name} best so far", i)
    plotting.steps_axis(ax)
    ax.set_ylabel("score (your objective)")
    better = "higher" if job.runs and job.runs[0].direction == "max" else "lower"
    title = f"{job.label}: score per step ({better} is better; lines: best so far)"
    ax.set_title(plotting.plain(title))
    ax.legend(fontsize=8, ncol=2)
    return figure
