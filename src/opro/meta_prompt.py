"""Rendering the meta-prompt: top-K selection, order, score display → a Jinja template.

The text itself lives in ``opro/prompts/*.jinja`` (one template per problem and style),
rendered with StrictUndefined so a missing variable is an error, not an empty string.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import jinja2
import numpy as np

from opro.history import History, Order
from opro.problems.base import Problem

S = TypeVar("S")
ScoreDisplay = Literal["int", "buckets20", "raw", "none"]


@dataclass(frozen=True)
class MetaPromptOptions:
    top_k: int = 20
    order: Order = "ascending"
    score_display: ScoreDisplay = "int"
    score_threshold: float | None = None
    """Show only solutions scoring at least this (the authors' threshold; off by default)."""


def display_score(score: float, mode: ScoreDisplay) -> str | None:
    """How a score is shown: rounded integer (default), 20 buckets of a 0–100 score, raw, none."""
    if mode == "none":
        return None
    if mode == "raw":
        return repr(float(score))
    if mode == "buckets20":
        return str(round(score / 5.0) * 5)
    return str(round(score))


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("opro", "prompts"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name: str, variables: dict[str, Any]) -> str:
    return environment().get_template(name).render(**variables)


def render_meta_prompt(
    problem: Problem[S],
    history: History[S],
    options: MetaPromptOptions,
    rng: np.random.Generator,
) -> str:
    shown = history.top_k(options.top_k, options.order, rng, threshold=options.score_threshold)
    entries = [
        {"text": problem.render(e.solution), "score": display_score(e.score, options.score_display)}
        for e in shown
    ]
    return render_template(
        problem.template,
        {"entries": entries, "order": options.order, **problem.context(history, rng)},
    )
