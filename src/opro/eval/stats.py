"""Paired comparison of two instructions scored on the same examples.

McNemar's exact test: only the discordant examples (one instruction right, the other not)
carry information; under "no difference" each is a fair coin flip, so the two-sided p-value
is twice the binomial tail of the smaller count. Examples that failed (``x``) or were not
asked (``-``, a cap stopped the evaluation) under either instruction are left out of the
pairing, never counted as wrong. Works on the marks strings of ``opro.eval.scorer`` (``1``
correct; ``0``/``e`` not correct; ``x`` failed; ``-`` stopped).
"""

from __future__ import annotations

import math

from pydantic.dataclasses import dataclass

from opro.record import RECORD, Count, JsonRecord, Number


@dataclass(frozen=True, config=RECORD)
class PairedTest(JsonRecord):
    method: str
    """the test: mcnemar-exact"""
    n: Count
    """examples answered under both instructions"""
    only_baseline: Count
    """examples correct under the baseline only"""
    only_other: Count
    """examples correct under the other instruction only"""
    p_value: Number
    """the two-sided p-value"""


def mcnemar_exact(baseline: str, other: str) -> PairedTest:
    """Two-sided exact McNemar test of ``other`` against ``baseline`` (marks strings)."""
    if len(baseline) != len(other):
        raise ValueError("marks of different lengths: the instructions saw different examples")
    pairs = [(a, b) for a, b in zip(baseline, other, strict=True) if not {a, b} & {"x", "-"}]
    only_a = sum(a == "1" and b != "1" for a, b in pairs)
    only_b = sum(b == "1" and a != "1" for a, b in pairs)
    p_value = binomial_two_sided(only_a, only_b)
    return PairedTest("mcnemar-exact", len(pairs), only_a, only_b, p_value)


def binomial_two_sided(a: int, b: int) -> float:
    """P(a split at least as uneven as (a, b) | fair coin), two-sided, capped at 1."""
    n = a + b
    if n == 0:
        return 1.0
    k = min(a, b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2 * tail))


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion ``correct / n`` (None when n = 0);
    unlike the normal approximation it stays inside [0, 1] and is sound for small n."""
    if n <= 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
