"""The travelling salesman problem (the paper's second motivating example, §3 of OPRO_SPEC).

A solution is a closed tour, a permutation of 0..n-1, written ``<trace> 0,3,1,... </trace>``;
its score is the Euclidean tour length (lower is better). Two traces of the same cycle
(rotated or reversed) are the same solution. The exact optimum, nearest-neighbour and
farthest-insertion tours come from ``tsp_solvers`` and are reported as gaps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opro.errors import ConfigError
from opro.history import History
from opro.problems.base import Problem
from opro.problems.tsp_solvers import (
    Point,
    distance_matrix,
    farthest_insertion,
    is_valid_tour,
    nearest_neighbor,
    solve_exact,
    tour_length,
)

Tour = tuple[int, ...]
_TRACE = re.compile(r"<trace>(.*?)</trace>", re.DOTALL)
GRAMMAR = r"""root ::= "<trace> " num ("," num)* " </trace>"
num ::= [0-9] [0-9]?
"""
OPTIMUM_TOLERANCE = 1e-6


def parse_trace(text: str, n: int) -> Tour | None:
    """The first ``<trace>…</trace>`` of ``text`` if it is a permutation of 0..n-1."""
    match = _TRACE.search(text)
    if match is None:
        return None
    parts = [p.strip() for p in match.group(1).split(",")]
    if not parts or not all(re.fullmatch(r"\d{1,6}", p) for p in parts):
        return None
    tour = tuple(int(p) for p in parts)
    return tour if is_valid_tour(tour, n) else None


def canonical_cycle(tour: Sequence[int]) -> Tour:
    """Rotate to start at 0 and pick the direction whose second node is smaller."""
    start = list(tour).index(0)
    rotated = tuple(tour[start:]) + tuple(tour[:start])
    reverse = (rotated[0], *rotated[1:][::-1])
    return min(rotated, reverse)


def load_instance(path: Path | str) -> list[Point]:
    """``{"points": [[x, y], ...]}`` → points, with a one-line error for anything else."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read TSP instance {path} ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"TSP instance {path} is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    points = data.get("points") if isinstance(data, dict) else None
    if not isinstance(points, list):
        raise ConfigError(f'TSP instance {path} must be {{"points": [[x, y], ...]}}')
    return validate_points(points, str(path))


def validate_points(points: list[Any], where: str) -> list[Point]:
    clean: list[Point] = []
    for i, p in enumerate(points):
        if (
            not isinstance(p, list | tuple)
            or len(p) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        ):
            raise ConfigError(f"{where}: point {i} is {p!r}, not a pair of numbers [x, y]")
        if not all(float(v).is_integer() for v in p):
            raise ConfigError(f"{where}: point {i} is {p!r}: coordinates must be integers")
        clean.append((int(p[0]), int(p[1])))
    if len(clean) < 3:
        raise ConfigError(f"{where}: a TSP instance needs at least 3 points, got {len(clean)}")
    if len(set(clean)) != len(clean):
        dup = next(p for p in clean if clean.count(p) > 1)
        raise ConfigError(f"{where}: duplicate point {list(dup)}: every point must be distinct")
    return clean


class TravellingSalesman(Problem[Tour]):
    name = "tsp"
    direction = "min"
    template = "tsp.jinja"
    solution_label = "trace"

    def __init__(
        self, points: Sequence[Point], *, num_initial: int = 5, optimal_length: float | None = None
    ) -> None:
        self.points = list(points)
        self.n = len(self.points)
        self.num_initial = num_initial
        self.dist = distance_matrix(self.points)
        self.optimal_length = (
            optimal_length if optimal_length is not None else solve_exact(self.dist).length
        )
        self.nn_length = tour_length(self.dist, nearest_neighbor(self.dist))
        self.fi_length = tour_length(self.dist, farthest_insertion(self.dist))

    def initial_solutions(self, rng: np.random.Generator) -> list[Tour]:
        return [tuple(int(i) for i in rng.permutation(self.n)) for _ in range(self.num_initial)]

    def parse(self, text: str) -> Tour | None:
        return parse_trace(text, self.n)

    def canonical(self, solution: Tour) -> str:
        return ",".join(map(str, canonical_cycle(solution)))

    def render(self, solution: Tour) -> str:
        return ",".join(map(str, solution))

    async def score(self, solutions: list[Tour]) -> list[float]:
        return [tour_length(self.dist, s) for s in solutions]

    def to_json(self, solution: Tour) -> Any:
        return list(solution)

    def from_json(self, data: Any) -> Tour:
        return tuple(int(i) for i in data)

    def context(self, history: History[Tour], rng: np.random.Generator) -> dict[str, Any]:
        return {"points": self.points}

    def grammar(self) -> str:
        return GRAMMAR

    def is_optimal(self, solution: Tour, score: float) -> bool:
        return score <= self.optimal_length * (1 + OPTIMUM_TOLERANCE)

    def gap(self, length: float) -> float:
        gap = (length - self.optimal_length) / self.optimal_length * 100
        return 0.0 if abs(gap) < 1e-9 else gap  # no "-0.0 %" from float noise

    def summary(self, history: History[Tour]) -> dict[str, Any]:
        best = history.best()
        return {
            "n": self.n,
            "optimal_length": self.optimal_length,
            "best_length": None if best is None else best.score,
            "gap_percent": None if best is None else self.gap(best.score),
            "nearest_neighbor_gap_percent": self.gap(self.nn_length),
            "farthest_insertion_gap_percent": self.gap(self.fi_length),
        }
