"""Racing evaluation: stop scoring a candidate once it confidently cannot matter.

OPRO scores every proposal on the whole training fold, yet most proposals are soon clearly
below the instructions the meta-prompt already shows. Racing scores a step's candidates in
rounds over one seeded order of the training fold, the same for all of them (so a round
asks every candidate the same questions), and after each round drops a candidate whose
accuracy on the *whole* fold is, with confidence, below the ``bar``: the score it must
reach to be shown in the next meta-prompt (the K-th best shown, or the score threshold).
The bar is a number known exactly (the full-fold score of an earlier instruction), so each
look is a one-sided test of one candidate's full-fold mean against a constant.

The full-fold mean of N per-example scores in [0, 1] is a fixed number; the first n of a
uniformly random order are a sample drawn without replacement. Two upper bounds on it:

* certain: every example not yet scored is right, ``(total + N - n) / N``;
* Hoeffding–Serfling (Serfling 1974): with probability at least 1 - δ',
  ``mean_n + sqrt((1 - (n - 1) / N) · ln(1/δ') / (2n))`` — the finite-population
  correction makes it tighten to nothing as n reaches N;
* exact, for 0/1 scores (the built-in answer kinds and the judge): the count K of right
  answers in the fold makes the count in the first n hypergeometric, so the largest K under
  which seeing ``total`` or fewer has probability above δ' bounds it. Hoeffding's bound
  assumes the worst variance (accuracy 0.5); at the low accuracies of a small model this one
  drops a hopeless candidate much sooner (0 right of the first 25 of 50: K ≤ 6, where
  Hoeffding–Serfling allows 11).

A candidate is dropped when the smallest bound is under the bar. Each candidate is looked
at after each of its ``rounds`` rounds but the last (which ends the fold), so δ' =
δ / (rounds - 1) (Bonferroni): a candidate whose full-fold score reaches the bar is dropped
with probability at most δ, whatever the scorer does — the order, not the scorer, is
random. The rounds are fixed in advance (sizes from N and ``rounds`` alone), so the
decisions depend only on the scores: a resumed step decides the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RaceRule:
    delta: float = 0.05
    """The most a candidate that would have entered the meta-prompt is dropped (per
    candidate)."""
    rounds: int = 10
    """Equal rounds over the fold; a candidate is looked at after each but the last."""

    def __post_init__(self) -> None:
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be within (0, 1): {self.delta}")
        if self.rounds < 2:
            raise ValueError(f"rounds must be >= 2: {self.rounds}")

    def ends(self, n_total: int) -> list[int]:
        """Where each round ends: the number of examples scored by then (the last is N)."""
        return sorted({math.ceil(n_total * r / self.rounds) for r in range(1, self.rounds + 1)})

    def upper_bound(self, total: float, n: int, n_total: int, binary: bool = False) -> float:
        """An upper confidence bound on the full-fold mean, given the sum ``total`` of the
        first ``n`` scores (each in [0, 1], or each 0 or 1 when ``binary``) of ``n_total``."""
        if n >= n_total:
            return total / n_total
        certain = (total + n_total - n) / n_total
        if n == 0:
            return certain
        per_look = self.delta / (self.rounds - 1)
        spread = math.sqrt((1 - (n - 1) / n_total) * math.log(1 / per_look) / (2 * n))
        bound = min(certain, total / n + spread)
        if binary:
            bound = min(bound, hypergeometric_upper(round(total), n, n_total, per_look) / n_total)
        return bound

    def hopeless(
        self, total: float, n: int, n_total: int, bar: float, binary: bool = False
    ) -> bool:
        """True when the candidate's full-fold mean is confidently under ``bar`` (in [0, 1]).
        (A bound within 1e-9 of the bar counts as reaching it: the bar comes from a score
        rounded to 6 decimals, the exact bound is a whole count over N.)"""
        return n < n_total and self.upper_bound(total, n, n_total, binary) < bar - 1e-9


def hypergeometric_upper(k: int, n: int, n_total: int, alpha: float) -> int:
    """The largest count K of ones among ``n_total`` 0/1 values under which a uniformly
    random ``n`` of them hold ``k`` or fewer ones with probability above ``alpha``: a
    one-sided 1 - alpha upper confidence bound on K (the probability falls as K grows, so
    a binary search finds it)."""
    low, high = k, n_total - (n - k)  # the ones seen, and all the unseen ones too
    while low < high:
        middle = (low + high + 1) // 2
        if _at_most(k, n, middle, n_total) > alpha:
            low = middle
        else:
            high = middle - 1
    return low


def _at_most(k: int, n: int, ones: int, n_total: int) -> float:
    """P(X <= k) for X ~ Hypergeometric(n_total, ones, n), in log space (no overflow)."""

    def log_choose(a: int, b: int) -> float:
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    first = max(0, n - (n_total - ones))
    whole = log_choose(n_total, n)
    terms = (
        log_choose(ones, i) + log_choose(n_total - ones, n - i) - whole
        for i in range(first, min(k, ones, n) + 1)
    )
    return min(1.0, sum(math.exp(t) for t in terms))


def race_order(n_total: int, seed: int, step: int) -> list[int]:
    """The step's order of the training fold: seeded by the run seed and the step, so a
    resumed step scores the same examples in the same rounds."""
    return [int(i) for i in np.random.default_rng([seed, step, 2]).permutation(n_total)]
