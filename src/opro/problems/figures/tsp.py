"""The TSP kind's figures (its report facet, loaded when a report is drawn): tour length
per step against the baselines and the optimum, and the best tour beside the optimal one."""

from __future__ import annotations

from matplotlib.figure import Figure

from opro import plotting
from opro.problems.jobs import JobRecord
from opro.problems.registry import Plot
from opro.problems.tsp import Facts


def figures(job: JobRecord, facts: Facts) -> list[Plot]:
    return [
        Plot("tour-length", "Tour length per step", plotting.to_svg(_lengths(job, facts))),
        Plot("tours", "Best tour and optimal tour", plotting.to_svg(_tours(facts))),
    ]


def _lengths(job: JobRecord, facts: Facts) -> Figure:
    figure = Figure(figsize=plotting.WIDE)
    ax = figure.add_subplot()
    plotting.candidates_and_best(ax, job.runs[0], "traces", "best so far")
    for value, label, color, style in (
        (facts.nn, "nearest neighbour", plotting.color(1), "--"),
        (facts.fi, "farthest insertion", plotting.color(2), "-."),
        (facts.optimal_length, "optimum", "black", ":"),
    ):
        ax.axhline(value, color=color, ls=style, lw=1.3, label=f"{label} ({value:.1f})")
    plotting.steps_axis(ax)
    ax.set_ylabel("tour length")
    ax.set_title(f"TSP, {len(facts.points)} nodes: tour length per step")
    ax.legend(fontsize=8)
    return figure


def _tours(facts: Facts) -> Figure:
    figure = Figure(figsize=plotting.SQUARE)
    best = "no tour yet" if facts.best_length is None else f"length {facts.best_length:.1f}"
    optimal = "optimal" if facts.proven else "best known (not proven optimal)"
    panels = ((facts.best_tour, f"best found: {best}"), (facts.optimal_tour, optimal))
    xs, ys = zip(*facts.points, strict=True)
    for i, (tour, title) in enumerate(panels):
        ax = figure.add_subplot(1, 2, i + 1)
        if tour:
            cycle = [*tour, tour[0]]
            ax.plot([xs[k] for k in cycle], [ys[k] for k in cycle], color=plotting.color(i))
        ax.scatter(xs, ys, color="black", s=18, zorder=3)
        if len(facts.points) <= 30:
            for k, (x, y) in enumerate(facts.points):
                ax.annotate(str(k), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(title if i == 0 else f"{title}: length {facts.optimal_length:.1f}")
    return figure
