"""The contract a problem implements to be optimized by OPRO.

A problem owns its solutions' text form (``render`` for the meta-prompt, ``parse`` for the
optimizer's output), their identity (``canonical``), their JSON form, their scoring, and
what its meta-prompt needs (``proposal``: the template, where an answer stops, a grammar;
``context``: the template's variables). ``score`` returns one ``SolutionScore`` per solution,
carrying whatever it found besides the score, so a resumed run rebuilds everything from
the step records. A problem knows nothing of proposing LLM calls, history keeping or run
directories; how a kind is configured, built and reported is ``opro.problems.registry``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from opro.answer_shape import ListShape
from opro.history import Direction, History, Scored
from opro.record import RECORD, Count, first_error

S = TypeVar("S")


@pydantic_dataclass(frozen=True, config=RECORD)
class Partial:
    """Scoring stopped early (racing): the score is over ``scored`` of ``of`` examples."""

    scored: Count
    """examples scored"""
    of: Count
    """examples in the training fold"""


@dataclass(frozen=True)
class SolutionScore:
    """A solution's score, whether it is a known optimum (the run stops there), what
    scoring found besides (kept in the step record, e.g. per-example marks), and whether
    the score is partial (racing stopped scoring it: it is never shown or chosen)."""

    score: float
    optimal: bool = False
    details: Mapping[str, Any] | None = None
    partial: Partial | None = None


@dataclass(frozen=True)
class Invalid:
    """A solution that could not be scored (the user's objective raised, timed out, returned
    NaN or no number; it failed its validation): recorded with the reason, never given a
    score, never shown, and never proposed again."""

    reason: str


@dataclass(frozen=True)
class ScoringContext:
    """What a step's scoring may use: the step (to seed an order of examples) and the
    ``bar``: the score a new solution must reach to be shown in the next meta-prompt (the
    K-th best shown, or the score threshold); None while any score would be shown (and at
    step 0). A solution confidently short of the bar may be scored partially."""

    step: int
    bar: float | None = None


@dataclass(frozen=True)
class ProposalFormat:
    """How the optimizer is asked for solutions: the meta-prompt template (a file under
    ``opro/prompts``, or ``text``: the template itself, for a kind that brings its own),
    where its output may stop (nothing after is parsed) and a GBNF grammar for constrained
    decoding, if the problem has one.

    ``end`` closes an answer (``</trace>``): the model is stopped there, as a base model
    otherwise writes on to its token limit, and since a server cuts the stop text from
    what it returns, the parser is handed it back when the model stopped (not when it ran
    out of tokens: a cut-off answer stays unclosed).

    ``shape``: what a valid answer looks like, if the problem can say; the embedded model
    then abandons a sample as soon as no continuation could parse (``opro.answer_shape``)."""

    template: str
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    text: str | None = None
    end: str | None = None
    shape: ListShape | None = None

    @property
    def stops(self) -> tuple[str, ...]:
        """The stop sequences of a proposal request."""
        return self.stop if self.end is None else (*self.stop, self.end)

    def answer(self, text: str, finish_reason: str | None) -> str:
        """The text to parse: ``text`` closed with ``end`` if the model stopped on it."""
        if self.end is None or finish_reason != "stop" or text.endswith(self.end):
            return text
        return text + self.end


class KindSummary(BaseModel):
    """A kind's own fields of summary.json (beside the common ones), written after every
    step: each kind's subclass declares them, with their meanings (the run-dir schema's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(abc.ABC, Generic[S]):
    direction: Direction
    proposal: ProposalFormat
    summary_model: ClassVar[type[KindSummary]] = KindSummary
    """What ``summary`` returns."""
    outcome_model: ClassVar[type[Any] | None] = None
    """What ``finalize`` returns, as a record (its fields join summary.json's at the end)."""
    details_model: ClassVar[type[BaseModel] | None] = None
    """What a candidate's ``details`` hold (``SolutionScore.details``; None: nothing)."""

    @classmethod
    def check_details(cls, details: Mapping[str, Any]) -> None:
        """A summary's own part as read back (``RunSummary.details``): ``summary_model``'s
        fields, and ``outcome_model``'s once written; a one-line ``ValueError`` naming the
        first bad field otherwise (a hand edit)."""
        own = cls.summary_model.model_fields
        final = [] if cls.outcome_model is None else [f.name for f in fields(cls.outcome_model)]
        try:
            cls.summary_model.model_validate(
                {k: v for k, v in details.items() if k in own or k not in final}
            )
        except ValidationError as exc:
            raise ValueError(first_error(exc)) from None
        if cls.outcome_model is not None and any(k in details for k in final if k not in own):
            cls.outcome_model.from_json({k: details.get(k) for k in final})

    @abc.abstractmethod
    def initial_solutions(self, rng: np.random.Generator) -> list[S]: ...

    @abc.abstractmethod
    def parse(self, text: str) -> S | None:
        """A solution from the optimizer's raw output, or None (a parse failure, never an
        exception, whatever the text)."""

    @abc.abstractmethod
    def canonical(self, solution: S) -> str:
        """Its identity: two solutions with the same canonical form are the same."""

    @abc.abstractmethod
    def render(self, solution: S) -> str:
        """As the meta-prompt shows it."""

    @abc.abstractmethod
    async def score(
        self, solutions: list[S], context: ScoringContext
    ) -> Sequence[SolutionScore | Invalid]:
        """One evaluation per solution, in order (``Invalid`` for one that has no score)."""

    def to_json(self, solution: S) -> Any:
        """Its JSON form in the step records (default: itself)."""
        return solution

    def from_json(self, data: Any) -> S:
        """Back from ``to_json`` (default: itself)."""
        value: S = data
        return value

    def context(self, history: History[S], rng: np.random.Generator) -> Mapping[str, object]:
        """Extra variables for the meta-prompt template (``rng`` is seeded by the step)."""
        return {}

    def feedback(self, entry: Scored[S]) -> str | None:
        """A text shown next to the entry's score in the meta-prompt (none by default: the
        paper shows scores only)."""
        return None

    def summary(self, history: History[S]) -> KindSummary:
        """The kind's own fields of summary.json, after each step: a ``summary_model``."""
        return KindSummary()

    async def finalize(self, history: History[S]) -> dict[str, JsonValue]:
        """Work done once the loop has finished (a held-out evaluation); its fields go
        into summary.json. It may raise ``BudgetExceeded``/``LLMError``: the run then stops
        and ``finalize`` runs again on resume."""
        return {}
