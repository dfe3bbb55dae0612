"""Rendering the meta-prompt: top-K selection, order, threshold, score display → the
problem's template (``opro/prompts``).

The best ``top_k`` solutions are listed worst→best (best last, as the paper), with their
scores shown as rounded integers (default), 20 buckets, raw or not at all; the problem adds
its own variables (the TSP's points, an instruction task's exemplars).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from opro import prompts
from opro.history import History
from opro.problems.base import Problem
from opro.problems.spec import EngineSpec, ScoreDisplay

S = TypeVar("S")


def display_score(score: float, mode: ScoreDisplay) -> str | None:
    """How a score is shown: rounded integer (default), 20 buckets of a 0–100 score, raw,
    4 significant digits, none."""
    if mode == "none":
        return None
    if mode == "raw":
        return repr(float(score))
    if mode == "short":  # a fraction keeps 4 significant digits (0.8333); 12345 stays whole
        return str(round(score)) if abs(score) >= 1e4 or score == int(score) else f"{score:.4g}"
    if mode == "buckets20":
        return str(round(score / 5.0) * 5)
    return str(round(score))


def render_meta_prompt(
    problem: Problem[S], history: History[S], engine: EngineSpec, rng: np.random.Generator
) -> str:
    shown = history.top_k(engine.top_k, engine.order, rng, threshold=engine.score_threshold)
    entries = [
        {
            "text": problem.render(e.solution),
            "score": display_score(e.score, engine.score_display),
            "feedback": problem.feedback(e),
        }
        for e in shown
    ]
    return prompts.render(
        problem.proposal.template,
        {"entries": entries, "order": engine.order, **problem.context(history, rng)},
        problem.proposal.text,
    )
