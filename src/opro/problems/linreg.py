"""Linear regression as a black box (the paper's motivating example, §2 of OPRO_SPEC).

Data: x = 1..50, y = w_true·x + b_true + ε with ε ~ N(0, 1), seeded. A solution is an
integer pair (w, b); its score is the sum of squared residuals (lower is better). The
optimizer sees only pairs and their integer-rounded values, never the data or the formula.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from opro.history import History
from opro.problems.base import Problem

Pair = tuple[int, int]
_NUMBER = r"-?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
GRAMMAR = r"""root ::= "[" int ", " int "]"
int ::= "-"? [0-9] [0-9]? [0-9]?
"""


def parse_pair(text: str) -> Pair | None:
    """The last bracketed pair of two numbers in ``text``, rounded to integers.

    A placeholder such as ``[w, b]`` is not a pair of numbers, so it is skipped by
    construction; anything unparsable gives None.
    """
    matches = _PAIR.findall(text)
    if not matches:
        return None
    w, b = matches[-1]
    try:
        fw, fb = float(w), float(b)
    except ValueError:
        return None
    if not (math.isfinite(fw) and math.isfinite(fb)) or max(abs(fw), abs(fb)) > 1e9:
        return None
    return round(fw), round(fb)


class LinearRegression(Problem[Pair]):
    name = "linreg"
    direction = "min"
    template = "linreg.jinja"
    solution_label = "pair"

    def __init__(
        self,
        w_true: int,
        b_true: int,
        *,
        data_seed: int = 0,
        num_points: int = 50,
        num_initial: int = 5,
        initial_low: int = 10,
        initial_high: int = 20,
    ) -> None:
        self.w_true, self.b_true = w_true, b_true
        self.num_initial = num_initial
        self.initial_low, self.initial_high = initial_low, initial_high
        rng = np.random.default_rng(data_seed)
        self.x = np.arange(1, num_points + 1, dtype=np.float64)
        self.y = w_true * self.x + b_true + rng.standard_normal(num_points)

    def objective(self, pair: Pair) -> float:
        w, b = pair
        residual = self.y - (w * self.x + b)
        return float(np.dot(residual, residual))

    def initial_solutions(self, rng: np.random.Generator) -> list[Pair]:
        draws = rng.integers(self.initial_low, self.initial_high + 1, size=(self.num_initial, 2))
        return [(int(w), int(b)) for w, b in draws]

    def parse(self, text: str) -> Pair | None:
        return parse_pair(text)

    def canonical(self, solution: Pair) -> str:
        return f"{solution[0]},{solution[1]}"

    def render(self, solution: Pair) -> str:
        return f"w={solution[0]}, b={solution[1]}"

    async def score(self, solutions: list[Pair]) -> list[float]:
        return [self.objective(s) for s in solutions]

    def to_json(self, solution: Pair) -> Any:
        return list(solution)

    def from_json(self, data: Any) -> Pair:
        return int(data[0]), int(data[1])

    def grammar(self) -> str:
        return GRAMMAR

    def is_optimal(self, solution: Pair, score: float) -> bool:
        return solution == (self.w_true, self.b_true)

    def summary(self, history: History[Pair]) -> dict[str, Any]:
        reached = [e.step for e in history.entries if e.solution == (self.w_true, self.b_true)]
        return {
            "w_true": self.w_true,
            "b_true": self.b_true,
            "steps_to_optimum": min(reached) if reached else None,
            "unique_pairs_explored": len(history),
        }
