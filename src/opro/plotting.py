"""Drawing primitives shared by the report and the kinds' figures: matplotlib ``Figure``
objects (Agg, no pyplot, so no global figure state), saved as SVG so they stay sharp on
any screen. Which figures a kind draws is the kind's; laying them out is ``opro.report``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from opro.problems.jobs import RunRecord

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
WIDE, SQUARE = (7.5, 4.2), (9.0, 4.5)


def to_svg(figure: Figure) -> bytes:
    """The figure as SVG, text kept as paths (identical in every browser, no fonts needed)
    and with a fixed hash salt, so one run always draws to the same bytes."""
    buffer = io.BytesIO()
    with (
        matplotlib.rc_context({"svg.hashsalt": "opro", "svg.fonttype": "path"}),
        warnings.catch_warnings(),
    ):
        # A label or an instruction may hold a character no font draws (an emoji, a control
        # code): it is drawn as a box, which is no reason to print a warning on stderr.
        warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def plain(text: str) -> str:
    """``text`` shown as is by matplotlib (no ``$…$`` mathtext)."""
    return text.replace("$", r"\$")


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def steps_axis(ax: Axes) -> None:
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def objective_scale(ax: Axes, values: Sequence[float]) -> None:
    """A log scale when the values span more than 50×."""
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")


def candidates_and_best(
    ax: Axes, run: RunRecord, candidates: str, best_label: str, i: int = 0
) -> list[float]:
    """Every candidate's score per step as dots and the best-so-far step line; the scores."""
    pairs = run.candidates()
    for partial in (False, True):
        chosen = [(step, c.score) for step, c in pairs if (c.partial is not None) == partial]
        if not chosen:
            continue
        xs, ys = [step for step, _ in chosen], [score for _, score in chosen]
        if partial:  # racing stopped scoring them: a score on part of the examples
            label, fill = "dropped by racing (partial score)", "none"
        else:
            label, fill = candidates, color(i)
        ax.scatter(xs, ys, s=14, alpha=0.55, facecolors=fill, edgecolors=color(i), label=label)
    ys = [c.score for _, c in pairs]
    best = run.best_so_far()
    if best:
        ax.plot(*zip(*best, strict=True), drawstyle="steps-post", color=color(i), lw=2)
        ax.lines[-1].set_label(best_label)
    return ys
