"""The contract a problem implements to be optimized by OPRO.

A problem owns its solutions' text form (``render`` for the meta-prompt, ``parse`` for the
optimizer's output), their identity (``canonical``), their JSON form (for the run log),
their scoring, and what its meta-prompt template needs (``template`` + ``context``). It
knows nothing of LLM calls for proposals, history or run directories.
"""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar

import numpy as np

from opro.history import Direction, History

S = TypeVar("S")


class Problem(abc.ABC, Generic[S]):
    name: str
    direction: Direction
    template: str
    """The meta-prompt template file under ``opro/prompts``."""
    solution_label: str
    """How the template names one solution (``pair``, ``trace``...)."""

    @abc.abstractmethod
    def initial_solutions(self, rng: np.random.Generator) -> list[S]: ...

    @abc.abstractmethod
    def parse(self, text: str) -> S | None:
        """A solution from the optimizer's raw output, or None (a parse failure, never an
        exception, whatever the text)."""

    @abc.abstractmethod
    def canonical(self, solution: S) -> str: ...

    @abc.abstractmethod
    def render(self, solution: S) -> str: ...

    @abc.abstractmethod
    async def score(self, solutions: list[S]) -> list[float]: ...

    @abc.abstractmethod
    def to_json(self, solution: S) -> Any: ...

    @abc.abstractmethod
    def from_json(self, data: Any) -> S: ...

    def context(self, history: History[S], rng: np.random.Generator) -> dict[str, Any]:
        """Extra variables for the meta-prompt template (``rng`` is seeded by the step)."""
        return {}

    def stop_sequences(self) -> tuple[str, ...]:
        """Where the optimizer's output may stop early (nothing after it is parsed)."""
        return ()

    def grammar(self) -> str | None:
        """A GBNF grammar for constrained decoding of proposals, if the problem has one."""
        return None

    def is_optimal(self, solution: S, score: float) -> bool:
        """Whether a known optimum is reached (the run stops there)."""
        return False

    def summary(self, history: History[S]) -> dict[str, Any]:
        """Problem-specific fields for summary.json."""
        return {}

    def details(self, solution: S) -> dict[str, Any] | None:
        """What scoring found beyond the score (kept in the step record), if anything."""
        return None

    def restore_details(self, solution: S, details: dict[str, Any]) -> None:
        """Take back ``details`` from a step record when a run is resumed."""
        return None

    async def finalize(self, history: History[S]) -> dict[str, Any]:
        """Work done once the loop has finished (a held-out evaluation); its fields go
        into summary.json. It may raise ``BudgetExceeded``/``LLMError``: the run then stops
        and ``finalize`` runs again on resume."""
        return {}
