"""The report's figures as PNG bytes, drawn on ``matplotlib.figure.Figure`` (Agg, no pyplot
and so no global figure state).

Per kind, the paper's figures: for instruction runs every candidate's training accuracy per
step, the best so far, and the test accuracy of the top and initial instructions; for
linear regression the proposals' objective values per step and the steps to the optimum
per repetition; for TSP the tour lengths per step against nearest neighbour, farthest
insertion and the optimum, and the best tour beside the optimal one. For several
directories, their best-so-far curves overlaid, a mean with a ±1 sd band for a label shared
by several runs. What goes into the HTML is ``opro.report.html``.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from opro.report.runs import Job, Kind, Run, TspFacts, steps_to_optimum

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
WIDE, SQUARE = (7.5, 4.2), (9.0, 4.5)


@dataclass(frozen=True)
class Plot:
    """One figure: a short name (for its file), a caption, the PNG."""

    name: str
    caption: str
    png: bytes


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def plain(text: str) -> str:
    """``text`` shown as is by matplotlib (no ``$…$`` mathtext)."""
    return text.replace("$", r"\$")


def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _steps_axis(ax: Axes) -> None:
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _objective_scale(ax: Axes, values: Sequence[float]) -> None:
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")


# -- one directory ----------------------------------------------------------------------


def job_plots(job: Job, tsp: TspFacts | None = None) -> list[Plot]:
    """The figures of one directory (``tsp``: the facts of a TSP run, if it is one)."""
    if job.kind == "instructions":
        return [Plot("accuracy", "Training accuracy per step", to_png(instruction_figure(job)))]
    if job.kind == "linreg":
        return [
            Plot("objective", "Objective value per step", to_png(linreg_objective_figure(job))),
            Plot("steps-to-optimum", "Steps to the optimum", to_png(linreg_steps_figure(job))),
        ]
    assert tsp is not None
    run = job.runs[0]
    return [
        Plot("tour-length", "Tour length per step", to_png(tsp_length_figure(run, tsp))),
        Plot("tours", "Best tour and optimal tour", to_png(tsp_tours_figure(tsp))),
    ]


def _candidates_and_best(ax: Axes, run: Run, candidates: str, best_label: str) -> None:
    """Every candidate's score per step as dots, and the best-so-far step line."""
    xs = [s.number for s in run.steps for _ in s.candidates]
    ys = [c.score for s in run.steps for c in s.candidates]
    ax.scatter(xs, ys, s=14, alpha=0.55, color=_color(0), label=candidates)
    best = run.best_so_far()
    if best:
        ax.plot(*zip(*best, strict=True), drawstyle="steps-post", color=_color(0), lw=2)
        ax.lines[-1].set_label(best_label)


def instruction_figure(job: Job) -> Figure:
    run = job.runs[0]
    summary = run.summary or {}
    figure = Figure(figsize=WIDE)
    ax = figure.add_subplot()
    _candidates_and_best(ax, run, "candidates (training)", "best so far (training)")
    found = {c.solution: s.number for s in reversed(run.steps) for c in s.candidates}
    initial = summary.get("initial_instruction")
    initial_test = summary.get("initial_test_score")
    if isinstance(initial_test, int | float):
        ax.axhline(initial_test, color="gray", ls="--", lw=1.2, label="initial instruction (test)")
    rows = [
        r
        for r in summary.get("test_evaluation") or []
        if r.get("instruction") != initial and isinstance(r.get("test_score"), int | float)
    ]
    if rows:
        ax.scatter(
            [found.get(r["instruction"], 0) for r in rows],
            [r["test_score"] for r in rows],
            marker="*",
            s=160,
            color=_color(3),
            edgecolor="black",
            lw=0.5,
            zorder=3,
            label="top instructions (test)",
        )
    _steps_axis(ax)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(plain(f"{job.label}: training accuracy per step"))
    ax.legend(loc="lower right", fontsize=8)
    return figure


def linreg_objective_figure(job: Job) -> Figure:
    figure = Figure(figsize=WIDE)
    ax = figure.add_subplot()
    values: list[float] = []
    for i, run in enumerate(job.runs):
        xs = [s.number for s in run.steps for _ in s.candidates]
        ys = [c.score for s in run.steps for c in s.candidates]
        values += ys
        name = plain(run.path.name)
        ax.scatter(xs, ys, s=10, alpha=0.45, color=_color(i), label=f"{name} proposals")
        best = run.best_so_far()
        if best:
            ax.plot(*zip(*best, strict=True), drawstyle="steps-post", color=_color(i), lw=1.8)
    _objective_scale(ax, values)
    _steps_axis(ax)
    ax.set_ylabel("objective (sum of squared residuals)")
    ax.set_title(plain(f"{job.label}: objective per step (lines: best so far)"))
    ax.legend(fontsize=8, ncol=2)
    return figure


def linreg_steps_figure(job: Job) -> Figure:
    figure = Figure(figsize=(max(4.0, 1.1 * len(job.runs) + 2), 3.6))
    ax = figure.add_subplot()
    for i, run in enumerate(job.runs):
        reached = steps_to_optimum(run)
        done = run.steps[-1].number if run.steps else 0
        if reached is None:
            ax.bar(i, done, color="white", edgecolor="gray", hatch="//")
            ax.annotate(f"not reached\n({done} steps)", (i, done), ha="center", va="bottom")
        else:
            ax.bar(i, reached, color=_color(0))
            ax.annotate(str(reached), (i, reached), ha="center", va="bottom")
    ax.set_xticks(range(len(job.runs)), [plain(r.path.name) for r in job.runs])
    ax.set_ylabel("steps to the optimum")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(plain(f"{job.label}: steps to (w_true, b_true)"))
    ax.margins(y=0.25)
    return figure


def tsp_length_figure(run: Run, tsp: TspFacts) -> Figure:
    figure = Figure(figsize=WIDE)
    ax = figure.add_subplot()
    _candidates_and_best(ax, run, "traces", "best so far")
    for value, label, color, style in (
        (tsp.nearest_neighbor_length, "nearest neighbour", _color(1), "--"),
        (tsp.farthest_insertion_length, "farthest insertion", _color(2), "-."),
        (tsp.optimal_length, "optimum", "black", ":"),
    ):
        ax.axhline(value, color=color, ls=style, lw=1.3, label=f"{label} ({value:.1f})")
    _steps_axis(ax)
    ax.set_ylabel("tour length")
    ax.set_title(f"TSP, {len(tsp.points)} nodes: tour length per step")
    ax.legend(fontsize=8)
    return figure


def tsp_tours_figure(tsp: TspFacts) -> Figure:
    figure = Figure(figsize=SQUARE)
    best = "no tour yet" if tsp.best_length is None else f"length {tsp.best_length:.1f}"
    optimal = "optimal" if tsp.proven_optimal else "best known (not proven optimal)"
    panels = ((tsp.best_tour, f"best found: {best}"), (tsp.optimal_tour, optimal))
    for i, (tour, title) in enumerate(panels):
        ax = figure.add_subplot(1, 2, i + 1)
        xs, ys = zip(*tsp.points, strict=True)
        if tour:
            cycle = [*tour, tour[0]]
            ax.plot([xs[k] for k in cycle], [ys[k] for k in cycle], color=_color(i), lw=1.5)
        ax.scatter(xs, ys, color="black", s=18, zorder=3)
        if len(tsp.points) <= 30:
            for k, (x, y) in enumerate(tsp.points):
                ax.annotate(str(k), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(title if i == 0 else f"{title}: length {tsp.optimal_length:.1f}")
    return figure


# -- several directories ----------------------------------------------------------------

OVERLAY_AXES: dict[Kind, str] = {
    "instructions": "best training accuracy so far (%)",
    "linreg": "best objective so far",
    "tsp": "optimality gap of the best tour so far (%)",
}


def overlay_plots(jobs: Sequence[Job], optima: Mapping[Path, float]) -> list[Plot]:
    """One best-so-far overlay per kind shared by two or more directories; ``optima``: the
    optimal tour length of each TSP run dir (its curve is drawn as the gap to it)."""
    plots = []
    for kind in OVERLAY_AXES:
        same = [j for j in jobs if j.kind == kind]
        if len(same) >= 2:
            figure = overlay_figure(kind, same, optima)
            plots.append(Plot(f"overlay-{kind}", f"Best so far, {kind} runs", to_png(figure)))
    return plots


def curve(run: Run, optima: Mapping[Path, float]) -> list[tuple[int, float]]:
    """A run's best-so-far curve; for TSP, as the gap (%) to the optimum."""
    points = run.best_so_far()
    optimum = optima.get(run.path)
    if run.kind == "tsp" and optimum:
        return [(s, (v - optimum) / optimum * 100) for s, v in points]
    return points


def overlay_figure(kind: Kind, jobs: Sequence[Job], optima: Mapping[Path, float]) -> Figure:
    figure = Figure(figsize=WIDE)
    ax = figure.add_subplot()
    groups: dict[str, list[Run]] = {}
    for job in jobs:
        groups.setdefault(job.label, []).extend(job.runs)
    values: list[float] = []
    for i, (label, runs) in enumerate(groups.items()):
        curves = [(c, _held(r)) for r in runs if (c := curve(r, optima))]
        values += [v for c, _ in curves for _, v in c]
        if len(curves) == 1:
            ax.plot(*zip(*curves[0][0], strict=True), drawstyle="steps-post", color=_color(i))
            ax.lines[-1].set_label(plain(label))
        elif curves:
            xs, mean, low, high = mean_band(curves)
            ax.plot(xs, mean, drawstyle="steps-post", color=_color(i), lw=2)
            ax.lines[-1].set_label(plain(f"{label} (mean ± sd of {len(curves)})"))
            ax.fill_between(xs, low, high, step="post", color=_color(i), alpha=0.2)
    if kind == "linreg":
        _objective_scale(ax, values)
    _steps_axis(ax)
    ax.set_ylabel(OVERLAY_AXES[kind])
    ax.set_title(f"Best so far, {kind} runs")
    ax.legend(fontsize=8)
    return figure


def _held(run: Run) -> bool:
    """Whether the run stopped at the optimum (its best so far holds to any later step)."""
    return run.summary is not None and run.summary.get("stop_reason") == "optimum"


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
