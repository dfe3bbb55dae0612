"""Scored solutions of a run: deduplication, the best so far, and the top-K shown to the
optimizer. Knows nothing of prompts or LLMs.

"Quality" orders entries from worst to best whatever the direction: for minimisation a
lower score is better. A partial entry (racing stopped scoring it) is seen, so never
proposed again, but neither the best nor shown. The meta-prompt lists the best K entries
worst→best (best last), as the paper found converges fastest; ``descending`` and
``random`` are its ablations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import numpy as np

S = TypeVar("S")
Direction = Literal["min", "max"]
Order = Literal["ascending", "descending", "random"]


@dataclass(frozen=True)
class Scored(Generic[S]):
    solution: S
    key: str
    """Canonical form: two solutions with the same key are the same solution."""
    score: float
    step: int
    details: Mapping[str, Any] | None = None
    """What scoring found besides the score (``SolutionScore.details``)."""
    partial: bool = False
    """Scored on part of the examples only (racing dropped it): it counts as seen, but is
    never the best nor shown."""


class History(Generic[S]):
    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.entries: list[Scored[S]] = []
        self._keys: set[str] = set()
        self.refusals: dict[str, str] = {}
        """Solutions seen that have no score (their keys), and why."""

    def __len__(self) -> int:
        return len(self.entries)

    def seen(self, key: str) -> bool:
        return key in self._keys

    def refuse(self, key: str, reason: str) -> None:
        """Mark a solution seen that has no score (``Invalid``): it is never proposed again,
        never shown, never the best."""
        if key not in self._keys:
            self._keys.add(key)
            self.refusals[key] = reason

    def add(self, entry: Scored[S]) -> bool:
        """Add unless an entry with the same key exists; True when added."""
        if entry.key in self._keys:
            return False
        self._keys.add(entry.key)
        self.entries.append(entry)
        return True

    def quality(self, score: float) -> float:
        return -score if self.direction == "min" else score

    def better(self, a: float, b: float) -> bool:
        return self.quality(a) > self.quality(b)

    def complete(self) -> list[Scored[S]]:
        """The entries scored in full, in the order they were added."""
        return [e for e in self.entries if not e.partial]

    def best(self) -> Scored[S] | None:
        complete = self.complete()
        if not complete:
            return None
        # max() keeps the first of equals: the earliest entry wins ties.
        return max(complete, key=lambda e: self.quality(e.score))

    def top_k(
        self,
        k: int,
        order: Order = "ascending",
        rng: np.random.Generator | None = None,
        *,
        threshold: float | None = None,
    ) -> list[Scored[S]]:
        """The best ``k`` entries, worst→best (``ascending``), best→worst, or shuffled.

        Equal scores keep the order they were added in (a stable sort, as the authors'
        ``sorted(..., key=score)``): of two ties the newer is shown nearer the end, and is
        the one kept when the cut at ``k`` falls between them. ``threshold`` then drops
        the entries whose quality is below that of this score (the authors'
        ``old_instruction_score_threshold``), so fewer than ``k`` may be shown.
        """
        ranked = sorted(self.complete(), key=lambda e: self.quality(e.score))
        chosen = ranked[-k:] if k > 0 else []
        if threshold is not None:
            floor = self.quality(threshold)
            chosen = [e for e in chosen if self.quality(e.score) >= floor]
        if order == "descending":
            return chosen[::-1]
        if order == "random":
            if rng is None:
                raise ValueError("order='random' needs an rng")
            return [chosen[i] for i in rng.permutation(len(chosen))]
        return chosen
