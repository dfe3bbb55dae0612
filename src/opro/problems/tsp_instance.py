"""TSP instances as a user gives them: a JSON file or a number of random points, checked
and bounded before anything costly starts, and ``opro tsp baselines``.

Owns the limits that keep an instance within the machine: the exact solver's MILP has a
binary variable per pair of points (nodes² / 2: ~0.5 GB of memory at 1000 points, ~45 GB at
10,000), so an instance over ``max_nodes`` (default ``MAX_NODES``, raised with
``--max-nodes``) is refused up front, naming the limit; an instance file is read with a cap
on its size, so that ``--instance /dev/zero`` is refused at once. Leaves out the solvers
(``opro.problems.tsp_solvers``) and the kind (``opro.problems.tsp``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opro.errors import ConfigError
from opro.problems import tsp_solvers as ts

MAX_NODES = 1000
"""The largest instance accepted unless raised (``--max-nodes``): its exact solve fits in
about half a gigabyte."""
GRID_POINTS = (ts.COORD_MAX - ts.COORD_MIN + 1) ** 2
"""Distinct integer points in the square random instances are drawn from."""
COORD_LIMIT = 10**6
"""The largest coordinate accepted: tour lengths stay exact sums of float distances."""
SOLVE_SECONDS = 60.0
"""The exact solver's time limit; past it the best tour found is used, marked unproven."""


def max_bytes(max_nodes: int) -> int:
    """The largest instance file read: generous for ``max_nodes`` points of any layout."""
    return max(1 << 20, 64 * max_nodes)


def check_nodes(n: int, max_nodes: int, where: str = "the instance") -> None:
    if n > max_nodes:
        raise ConfigError(
            f"{where} has {n} points, over the limit of {max_nodes} (the exact solver needs "
            "memory growing with the square of the points): raise it with max_nodes N"
        )


def load_instance(path: Path | str, max_nodes: int = MAX_NODES) -> list[ts.Point]:
    """``{"points": [[x, y], ...]}`` → points, with a one-line error for anything else."""
    limit = max_bytes(max_nodes)
    try:
        with Path(path).open("rb") as f:
            raw = f.read(limit + 1)  # never more: /dev/zero, a huge file
    except OSError as exc:
        raise ConfigError(f"cannot read TSP instance {path} ({exc.strerror})") from None
    if len(raw) > limit:
        raise ConfigError(
            f"TSP instance {path} is over {limit} bytes, too large for {max_nodes} points "
            "(the limit): give a smaller instance, or raise it with max_nodes N"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"TSP instance {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"TSP instance {path} is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    except RecursionError:
        raise ConfigError(f"TSP instance {path} is nested too deeply to be an instance") from None
    points = data.get("points") if isinstance(data, dict) else None
    if not isinstance(points, list):
        raise ConfigError(f'TSP instance {path} must be {{"points": [[x, y], ...]}}')
    return validate_points(points, str(path), max_nodes)


def validate_points(
    points: Sequence[Any], where: str, max_nodes: int = MAX_NODES
) -> list[ts.Point]:
    check_nodes(len(points), max_nodes, where)
    clean: list[ts.Point] = []
    for i, p in enumerate(points):
        if (
            not isinstance(p, list | tuple)
            or len(p) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        ):
            raise ConfigError(f"{where}: point {i} is {p!r}, not a pair of numbers [x, y]")
        if not all(abs(v) <= COORD_LIMIT for v in p):  # nan, inf, 10**400 included
            raise ConfigError(
                f"{where}: point {i} is {p!r}: coordinates must lie within ±{COORD_LIMIT}"
            )
        if not all(float(v).is_integer() for v in p):
            raise ConfigError(f"{where}: point {i} is {p!r}: coordinates must be integers")
        clean.append((int(p[0]), int(p[1])))
    if len(clean) < 3:
        raise ConfigError(f"{where}: a TSP instance needs at least 3 points, got {len(clean)}")
    if len(set(clean)) != len(clean):
        seen: set[ts.Point] = set()
        dup = next(p for p in clean if p in seen or seen.add(p))  # type: ignore[func-returns-value]
        raise ConfigError(f"{where}: duplicate point {list(dup)}: every point must be distinct")
    return clean


def random_points(n: int, seed: int, max_nodes: int = MAX_NODES) -> list[ts.Point]:
    """``tsp_solvers.random_instance`` within the limits, or a one-line error."""
    check_nodes(n, max_nodes, f"`nodes` {n}")
    if n > GRID_POINTS:
        raise ConfigError(
            f"`nodes` {n}: random instances are drawn from the {GRID_POINTS} integer points "
            f"of [{ts.COORD_MIN}, {ts.COORD_MAX}]^2; give at most that many"
        )
    if n < 3:
        raise ConfigError(f"`nodes` {n}: a TSP instance needs at least 3 points")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0 (got {seed})")
    return ts.random_instance(n, seed)


def print_baselines(
    points: Sequence[ts.Point], *, as_json: bool, time_limit_s: float = SOLVE_SECONDS
) -> None:
    """The exact optimum (within ``time_limit_s``) and both heuristics, on stdout."""
    dist = ts.distance_matrix(points)
    exact = ts.solve_exact(dist, time_limit_s=time_limit_s)
    nn, fi = ts.nearest_neighbor(dist), ts.farthest_insertion(dist)
    result = {
        "n": len(points),
        "optimal_length": exact.length,
        "optimal_tour": list(exact.tour),
        "proven_optimal": exact.proven_optimal,
        "solve_seconds": round(exact.seconds, 3),
        "nearest_neighbor_length": ts.tour_length(dist, nn),
        "nearest_neighbor_tour": nn,
        "farthest_insertion_length": ts.tour_length(dist, fi),
        "farthest_insertion_tour": fi,
    }
    if as_json:
        print(json.dumps(result))
        return
    for key in ("n", "optimal_length", "proven_optimal", "nearest_neighbor_length",
                "farthest_insertion_length", "solve_seconds"):  # fmt: skip
        print(f"{key:<26} {result[key]}")
