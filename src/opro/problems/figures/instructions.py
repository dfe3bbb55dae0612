"""The instructions kind's figure (its report facet, loaded when a report is drawn):
training accuracy per step, with the initial instruction's and the top instructions' test
accuracy."""

from __future__ import annotations

from matplotlib.figure import Figure

from opro import plotting
from opro.problems.instructions.problem import Outcome
from opro.problems.jobs import JobRecord
from opro.problems.registry import Plot


def figures(job: JobRecord) -> list[Plot]:
    figure = _accuracy_figure(job)
    return [Plot("accuracy", "Training accuracy per step", plotting.to_svg(figure))]


def _accuracy_figure(job: JobRecord) -> Figure:
    run = job.runs[0]
    outcome = Outcome.from_details(dict(run.summary.details)) if run.summary else None
    figure = Figure(figsize=plotting.WIDE)
    ax = figure.add_subplot()
    plotting.candidates_and_best(ax, run, "candidates (training)", "best so far (training)")
    if outcome is not None:
        found = {str(c.solution): step for step, c in reversed(run.candidates())}
        if outcome.initial_test_score is not None:
            ax.axhline(
                outcome.initial_test_score,
                color="gray",
                ls="--",
                lw=1.2,
                label="initial instruction (test)",
            )
        rows = [
            (found.get(r.instruction, 0), r.test_score)
            for r in outcome.test_evaluation
            if r.instruction != outcome.initial_instruction and r.test_score is not None
        ]
        if rows:
            ax.scatter(
                [step for step, _ in rows],
                [score for _, score in rows],
                marker="*",
                s=160,
                color=plotting.color(3),
                edgecolor="black",
                lw=0.5,
                zorder=3,
                label="top instructions (test)",
            )
    plotting.steps_axis(ax)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(plotting.plain(f"{job.label}: training accuracy per step"))
    ax.legend(loc="lower right", fontsize=8)
    return figure
