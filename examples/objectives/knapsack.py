"""A 0/1 knapsack of 12 items: choose items of the most total value within the capacity.
The optimum is computed exactly by dynamic programming (``optimum()``).

    T=$(python -c 'import examples.objectives.knapsack as m; print(m.TASK)')
    F=$(python -c 'import examples.objectives.knapsack as m; print(m.SOLUTION_FORMAT)')
    opro solve --objective examples.objectives.knapsack:score --task "$T" --solution-format "$F" \\
        --initial "1, 2" --target 309 --steps 8

A set over the capacity raises ``ValueError``, so the run records it invalid with the reason
rather than scoring it: it has no value, and a score of 0 would show it to the optimizer as a
feasible solution no better than the empty set (which scores 0 too).
"""

from __future__ import annotations

import re

WEIGHTS = (31, 82, 89, 38, 17, 29, 44, 85, 53, 23, 41, 63)
VALUES = (57, 72, 87, 43, 21, 49, 68, 84, 60, 92, 52, 67)
CAPACITY = 165
ITEMS = "; ".join(
    f"item {i}: weight {w}, value {v}"
    for i, (w, v) in enumerate(zip(WEIGHTS, VALUES, strict=True), 1)
)
TASK = (
    f"Choose items for a knapsack that holds a total weight of at most {CAPACITY}, so that "
    f"the total value of the chosen items is as high as possible. The items are: {ITEMS}"
    + ". The score is the total value of the chosen items."
)
SOLUTION_FORMAT = "A solution is a list of item numbers separated by commas, such as 1, 5, 7."
INITIAL = "1, 2"


def parse(solution: str) -> list[int]:
    """The item numbers in ``solution`` (1-based); ValueError for anything else."""
    tokens = [t for t in re.split(r"[,\s]+", solution.strip()) if t]
    if not tokens or not all(t.isdigit() for t in tokens):
        raise ValueError("give item numbers separated by commas")
    items = [int(t) for t in tokens]
    if len(set(items)) != len(items):
        raise ValueError("an item is listed twice")
    if not all(1 <= i <= len(WEIGHTS) for i in items):
        raise ValueError(f"item numbers go from 1 to {len(WEIGHTS)}")
    return items


def score(solution: str) -> int:
    """The total value of the items in ``solution``; ValueError when over capacity."""
    items = parse(solution)
    weight = sum(WEIGHTS[i - 1] for i in items)
    if weight > CAPACITY:
        raise ValueError(f"over capacity: weight {weight} > {CAPACITY}")
    return sum(VALUES[i - 1] for i in items)


def optimum() -> tuple[int, list[int]]:
    """The best total value and the items giving it, by dynamic programming over weight."""
    best = [[0] * (CAPACITY + 1)]  # best[k][c]: the best value of items 1..k within c
    for w, v in zip(WEIGHTS, VALUES, strict=True):
        row = best[-1]
        best.append([max(row[c], row[c - w] + v if c >= w else 0) for c in range(CAPACITY + 1)])
    chosen, c = [], CAPACITY
    for k in range(len(WEIGHTS), 0, -1):
        if best[k][c] != best[k - 1][c]:
            chosen.append(k)
            c -= WEIGHTS[k - 1]
    return best[-1][CAPACITY], sorted(chosen)


OPTIMUM = optimum()[0]
