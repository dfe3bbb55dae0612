"""TSP reference solvers: instances, tour checks, the two heuristics and the exact MILP."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opro.problems.tsp_solvers import (
    ExactSolution,
    brute_force,
    distance_matrix,
    farthest_insertion,
    is_valid_tour,
    nearest_neighbor,
    random_instance,
    solve_exact,
    tour_length,
)

# Four points whose pairwise distances are all integers (3-4-5 triangles):
#   P0 = (0, 0), P1 = (4, 3), P2 = (-4, 3), P3 = (4, -3)
#   d01 = d02 = d03 = 5, d12 = 8, d13 = 6, d23 = 10.
# The three tours (up to direction) have lengths
#   0-1-2-3: 5 + 8 + 10 + 5 = 28,  0-1-3-2: 5 + 6 + 10 + 5 = 26,  0-2-1-3: 5 + 8 + 6 + 5 = 24.
KITE = [(0, 0), (4, 3), (-4, 3), (4, -3)]
# A "T": P0 = (0, 0), P1 = (4, 0), P2 = (-4, 0), P3 = (0, 3)
#   d01 = d02 = 4, d03 = 3, d12 = 8, d13 = d23 = 5. Mirror-symmetric, so ties decide the order.
TEE = [(0, 0), (4, 0), (-4, 0), (0, 3)]


def test_distance_matrix_and_closed_tour_length() -> None:
    dist = distance_matrix(KITE)
    assert dist.shape == (4, 4)
    assert dist.dtype == np.float64
    expected = [[0, 5, 5, 5], [5, 0, 8, 6], [5, 8, 0, 10], [5, 6, 10, 0]]
    np.testing.assert_array_equal(dist, np.array(expected, dtype=np.float64))
    # The closing edge 3 -> 0 counts: 5 + 8 + 10 + 5, not 5 + 8 + 10.
    assert tour_length(dist, [0, 1, 2, 3]) == 28.0
    assert tour_length(dist, [2, 0, 1, 3]) == 5 + 5 + 6 + 10
    unit_square = distance_matrix([(0, 0), (1, 0), (1, 1), (0, 1)])
    assert tour_length(unit_square, [0, 1, 2, 3]) == 4.0
    assert tour_length(unit_square, [0, 2, 1, 3]) == pytest.approx(2 + 2 * math.sqrt(2))


def test_nearest_neighbor_by_hand_with_a_tie() -> None:
    # From 0, nodes 1, 2 and 3 all lie at distance 5: the lowest index, 1, wins (picking 2
    # would give 0-2-1-3). From 1: d12 = 8, d13 = 6 -> 3. Then 2 is the only one left.
    dist = distance_matrix(KITE)
    tour = nearest_neighbor(dist)
    assert tour == [0, 1, 3, 2]
    assert tour_length(dist, tour) == 26.0
    # T: 0 -> 3 (3 < 4); from 3, nodes 1 and 2 both at 5: 1 wins; then 2. Length 3 + 5 + 8 + 4.
    tee = distance_matrix(TEE)
    assert nearest_neighbor(tee) == [0, 3, 1, 2]
    assert tour_length(tee, [0, 3, 1, 2]) == 20.0


def test_farthest_insertion_by_hand_with_ties() -> None:
    # Tour [0]; the only edge is (0, 0), so node k costs 2 * d0k = 10 for k = 1, 2, 3:
    #   a three-way tie, the lowest index wins -> [0, 1].
    # Tour [0, 1], edges (0,1) and (1,0): k=2 costs 5 + 8 - 5 = 8 on both, k=3 costs 5 + 6 - 5 = 6.
    #   The largest is k=2; both positions tie, the earliest (between 0 and 1) wins -> [0, 2, 1].
    # Tour [0, 2, 1]: k=3 costs 5 + 10 - 5 = 10 on (0,2), 10 + 6 - 8 = 8 on (2,1),
    #   6 + 5 - 5 = 6 on (1,0): cheapest on (1,0) -> [0, 2, 1, 3], length 24 (the optimum).
    dist = distance_matrix(KITE)
    tour = farthest_insertion(dist)
    assert tour == [0, 2, 1, 3]
    assert tour_length(dist, tour) == 24.0
    assert brute_force(dist)[1] == 24.0


def test_farthest_insertion_tie_between_nodes_lowest_index_wins() -> None:
    # T. Tour [0]: costs 2 * d0k = 8, 8, 6: nodes 1 and 2 tie, 1 wins -> [0, 1].
    # Tour [0, 1]: k=2 costs 4 + 8 - 4 = 8 on both edges, k=3 costs 3 + 5 - 4 = 4 -> [0, 2, 1].
    # Tour [0, 2, 1]: k=3 costs 3 + 5 - 4 = 4 on (0,2), 5 + 5 - 8 = 2 on (2,1), 4 on (1,0)
    #   -> [0, 2, 3, 1], length 4 + 5 + 5 + 4 = 18. (Had node 2 won the first tie: [0, 1, 3, 2].)
    dist = distance_matrix(TEE)
    assert farthest_insertion(dist) == [0, 2, 3, 1]
    assert tour_length(dist, [0, 2, 3, 1]) == 18.0


def test_farthest_insertion_takes_the_farthest_node_first() -> None:
    # Collinear points at x = 0, 1, 10, 5. Tour [0]: costs 2, 20, 10 -> node 2 (x = 10) first.
    # Tour [0, 2]: k=1 costs 1 + 9 - 10 = 0 and k=3 costs 5 + 5 - 10 = 0: tie, lowest k = 1,
    #   at the earliest position -> [0, 1, 2].
    # Tour [0, 1, 2]: k=3 costs 5 + 4 - 1 = 8 on (0,1), 4 + 5 - 9 = 0 on (1,2), 0 on (2,0):
    #   earliest cheapest is (1,2) -> [0, 1, 3, 2]. A nearest-first order would insert 1 first.
    dist = distance_matrix([(0, 0), (1, 0), (10, 0), (5, 0)])
    assert farthest_insertion(dist) == [0, 1, 3, 2]
    assert tour_length(dist, [0, 1, 3, 2]) == 20.0


@pytest.mark.parametrize("n", [5, 6, 7, 8, 9])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solve_exact_matches_brute_force(n: int, seed: int) -> None:
    dist = distance_matrix(random_instance(n, seed))
    exact = solve_exact(dist)
    best_tour, best_len = brute_force(dist)
    assert isinstance(exact, ExactSolution)
    assert exact.proven_optimal
    assert exact.length == pytest.approx(best_len, abs=1e-6)
    assert is_valid_tour(exact.tour, n)
    assert exact.tour[0] == 0
    assert exact.length == pytest.approx(tour_length(dist, exact.tour), abs=1e-9)
    assert is_valid_tour(best_tour, n)
    assert best_tour[0] == 0
    assert tour_length(dist, best_tour) == pytest.approx(best_len)
    # The heuristics are tours, never shorter than the optimum.
    for heuristic in (nearest_neighbor, farthest_insertion):
        tour = heuristic(dist)
        assert is_valid_tour(tour, n)
        assert tour[0] == 0
        assert tour_length(dist, tour) >= best_len - 1e-9


def test_solve_exact_tiny_instances() -> None:
    triangle = distance_matrix([(0, 0), (3, 0), (0, 4)])
    sol = solve_exact(triangle)
    assert sol.tour == (0, 1, 2)
    assert sol.length == 12.0
    assert sol.proven_optimal
    kite = solve_exact(distance_matrix(KITE))
    assert kite.length == pytest.approx(24.0)
    assert kite.tour in {(0, 2, 1, 3), (0, 3, 1, 2)}
    assert kite.proven_optimal


def test_solve_exact_n50_is_proven_optimal() -> None:
    dist = distance_matrix(random_instance(50, 0))
    sol = solve_exact(dist)
    assert sol.proven_optimal
    assert is_valid_tour(sol.tour, 50)
    assert sol.tour[0] == 0
    assert sol.length == pytest.approx(tour_length(dist, sol.tour))
    for heuristic in (nearest_neighbor, farthest_insertion):
        tour = heuristic(dist)
        assert is_valid_tour(tour, 50)
        assert tour_length(dist, tour) >= sol.length - 1e-9


def test_solve_exact_time_limit_returns_an_unproven_tour() -> None:
    dist = distance_matrix(random_instance(80, 3))
    sol = solve_exact(dist, time_limit_s=1e-4)
    assert not sol.proven_optimal
    assert is_valid_tour(sol.tour, 80)
    assert sol.tour[0] == 0
    assert sol.length == pytest.approx(tour_length(dist, sol.tour))
    assert sol.length <= tour_length(dist, farthest_insertion(dist)) + 1e-9


def test_solve_exact_after_highs_started_with_another_thread_count() -> None:
    # HiGHS keeps one thread pool per process, sized by the first solve. A later model asking
    # for a different count gets an error from run(); solve_exact must still prove optimality.
    # In a subprocess, so the pool of this test process is left alone.
    script = """
import numpy as np
from opro.problems.tsp_solvers import distance_matrix, new_solver, random_instance, solve_exact
h = new_solver()
h.setOptionValue("threads", 3)
h.addVars(1, np.zeros(1), np.ones(1))
h.run()
sol = solve_exact(distance_matrix(random_instance(12, 0)))
print(sol.proven_optimal)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "True"


def test_brute_force_refuses_large_instances() -> None:
    with pytest.raises(ValueError, match="n <= 10"):
        brute_force(distance_matrix(random_instance(11, 0)))


@pytest.mark.parametrize("n", [3, 10, 50])
def test_random_instance_distinct_in_range_and_seeded(n: int) -> None:
    points = random_instance(n, 7)
    assert len(points) == n
    assert len(set(points)) == n
    assert all(-100 <= x <= 100 and -100 <= y <= 100 for x, y in points)
    assert all(isinstance(x, int) and isinstance(y, int) for x, y in points)
    assert random_instance(n, 7) == points
    assert random_instance(n, 8) != points


def test_random_instance_redraws_duplicates() -> None:
    # 3000 draws from 201^2 = 40401 grid points almost surely collide (about 110 pairs expected).
    points = random_instance(3000, 0)
    assert len(set(points)) == 3000
    assert min(min(p) for p in points) >= -100
    assert max(max(p) for p in points) <= 100
    # Both ends of the range are reachable.
    xs = {x for x, _ in points}
    assert -100 in xs
    assert 100 in xs


@pytest.mark.parametrize("n", [-1, 0, 1, 2])
def test_random_instance_needs_three_points(n: int) -> None:
    with pytest.raises(ValueError, match="at least 3"):
        random_instance(n, 0)


def test_is_valid_tour_rejects_bad_tours() -> None:
    assert is_valid_tour([0, 1, 2, 3], 4)
    assert is_valid_tour([2, 0, 3, 1], 4)
    assert not is_valid_tour([0, 1, 1, 3], 4)  # repeat
    assert not is_valid_tour([0, 1, 2, -1], 4)  # negative
    assert not is_valid_tour([0, 1, 2, 4], 4)  # out of range
    assert not is_valid_tour([0, 1, 2], 4)  # too short
    assert not is_valid_tour([0, 1, 2, 3, 0], 4)  # too long, returning to the start
    assert not is_valid_tour([0, 1, 2, 3, 4], 4)  # too long
    assert not is_valid_tour([], 4)


@given(st.integers(min_value=1, max_value=30).flatmap(lambda n: st.permutations(range(n))))
def test_any_permutation_is_valid(perm: list[int]) -> None:
    assert is_valid_tour(perm, len(perm))


@given(
    st.lists(st.integers(min_value=-5, max_value=40), min_size=1, max_size=30),
    st.data(),
)
def test_any_list_with_a_repeat_is_invalid(values: list[int], data: st.DataObject) -> None:
    # Insert a copy of one of the values somewhere: the list now has a repeat.
    repeated = data.draw(st.sampled_from(values))
    position = data.draw(st.integers(min_value=0, max_value=len(values)))
    tour = [*values[:position], repeated, *values[position:]]
    for n in {len(tour), len(tour) - 1, len(set(tour))}:
        assert not is_valid_tour(tour, n)
