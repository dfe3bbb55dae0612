"""TSP baselines against the exact optimum, beside the paper's numbers (OPRO, Table 3).

    .venv/bin/python benchmarks/tsp_baselines.py

For n in 10, 15, 20, 50: five instances (``random_instance(n, seed)``, seeds 0..4), each
solved exactly by ``solve_exact`` (timed) and by the nearest-neighbour and farthest-insertion
heuristics. Gap = (L - L_opt) / L_opt * 100. Prints a table of mean gaps with the paper's
beside them, the slowest exact solve per n (target: under 10 s at n = 50), then one JSON line
with every result.
"""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass

from opro.problems.tsp_solvers import (
    distance_matrix,
    farthest_insertion,
    nearest_neighbor,
    random_instance,
    solve_exact,
    tour_length,
)

SIZES = (10, 15, 20, 50)
SEEDS = range(5)
# The paper's mean optimality gaps (%) of the two heuristics.
PAPER_NN = {10: 13.0, 15: 9.4, 20: 16.0, 50: 19.7}
PAPER_FI = {10: 3.2, 15: 1.2, 20: 0.2, 50: 9.8}
EXACT_TARGET_S = 10.0


@dataclass(frozen=True)
class Result:
    n: int
    seed: int
    optimum: float
    proven_optimal: bool
    exact_seconds: float
    nn_length: float
    fi_length: float
    nn_gap_pct: float
    fi_gap_pct: float


def gap_percent(length: float, optimum: float) -> float:
    return round((length - optimum) / optimum * 100, 6) + 0.0  # + 0.0 turns -0.0 into 0.0


def main() -> None:
    results: list[Result] = []
    for n in SIZES:
        for seed in SEEDS:
            dist = distance_matrix(random_instance(n, seed))
            exact = solve_exact(dist)
            nn = tour_length(dist, nearest_neighbor(dist))
            fi = tour_length(dist, farthest_insertion(dist))
            results.append(
                Result(
                    n=n,
                    seed=seed,
                    optimum=exact.length,
                    proven_optimal=exact.proven_optimal,
                    exact_seconds=exact.seconds,
                    nn_length=nn,
                    fi_length=fi,
                    nn_gap_pct=gap_percent(nn, exact.length),
                    fi_gap_pct=gap_percent(fi, exact.length),
                )
            )

    header = (
        f"{'n':>4} | {'NN gap %':>8} {'paper':>6} | {'FI gap %':>8} {'paper':>6} | "
        f"{'exact max s':>11} {'proven':>6}"
    )
    print(header)
    print("-" * len(header))
    for n in SIZES:
        rows = [r for r in results if r.n == n]
        nn_gap = statistics.mean(r.nn_gap_pct for r in rows)
        fi_gap = statistics.mean(r.fi_gap_pct for r in rows)
        max_s = max(r.exact_seconds for r in rows)
        proven = sum(r.proven_optimal for r in rows)
        print(
            f"{n:>4} | {nn_gap:>8.1f} {PAPER_NN[n]:>6.1f} | {fi_gap:>8.1f} {PAPER_FI[n]:>6.1f} | "
            f"{max_s:>11.3f} {proven:>4}/{len(rows)}"
        )
    slowest = max(r.exact_seconds for r in results if r.n == 50)
    verdict = "OK" if slowest < EXACT_TARGET_S else "TOO SLOW"
    print(f"exact n=50: slowest {slowest:.3f} s, target < {EXACT_TARGET_S:.0f} s: {verdict}")
    print(json.dumps({"machine": platform.machine(), "results": [asdict(r) for r in results]}))


if __name__ == "__main__":
    main()
