"""Reference solvers for the TSP experiment: instances, the exact optimum and two heuristics.

This module owns everything the TSP experiment compares LLM-found tours against:

* ``random_instance``: n distinct integer points in [-100, 100]^2, seeded;
* ``distance_matrix``, ``tour_length`` (closed tours) and ``is_valid_tour``;
* the paper's two baselines, ``nearest_neighbor`` and ``farthest_insertion``;
* ``solve_exact``: the proven optimum, a MILP on HiGHS with lazy subtour elimination, within
  a time limit and answering Ctrl-C at once;
* ``brute_force``: all tours of a tiny instance, to check ``solve_exact``.

Tours are lists of node indices, each node once, implicitly returning to the start.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where a solve needs it: `import opro` stays light
    import highspy

Point = tuple[int, int]

COORD_MIN, COORD_MAX = -100, 100
BRUTE_FORCE_MAX_N = 10
# Prove optimality (no gap tolerance), quietly, on the 2 cores of the target machine.
_HIGHS_OPTIONS: dict[str, bool | int | float] = {
    "output_flag": False,
    "threads": 2,
    "mip_rel_gap": 0.0,
    "mip_abs_gap": 1e-9,
}


_QUIET = threading.Lock()


@contextlib.contextmanager
def _silenced_fds() -> Iterator[None]:
    """Point the process's stdout and stderr (fds 1 and 2, where C code writes) at the null
    device, and flush C's buffered streams before putting them back, so that nothing
    written meanwhile leaks out later."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)  # C's stdout buffer, when fd 1 is a pipe
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def new_solver() -> highspy.Highs:
    """A HiGHS solver that prints nothing, with ``_HIGHS_OPTIONS`` set.

    HiGHS 1.16 prints a banner on stdout when a process creates its first solver, in the
    constructor, before any option (``output_flag``) can be set; that broke every command
    whose stdout is JSON. So the solver is created with fds 1 and 2 silenced, whatever the
    HiGHS version, and ``output_flag`` keeps its solves quiet.
    """
    import highspy

    with _QUIET, _silenced_fds():
        h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves __init__ unannotated
    for name, value in _HIGHS_OPTIONS.items():
        h.setOptionValue(name, value)
    return h


def _run(h: highspy.Highs) -> highspy.HighsStatus:
    """``h.run()``, answering Ctrl-C (and SIGTERM, which the CLI turns into it) within a
    tenth of a second: the solve runs on HiGHS's own thread while this one waits, and an
    interrupt stops it through HiGHS's interrupt callbacks, then propagates.

    A blocked C call never lets Python's signal handlers run, and asyncio's Ctrl-C handler
    only cancels a task at its next ``await``, which a solve inside a coroutine (``opro
    tsp`` fixes the optimum before its run starts) reaches only when it is over. So while
    this thread waits, Ctrl-C raises ``KeyboardInterrupt`` here, where it is handled."""
    import highspy

    h.HandleUserInterrupt = True
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
    try:
        h.startSolve()
        try:
            while True:
                done, status = h.wait(0.1)
                if done:
                    return status if status is not None else highspy.HighsStatus.kError
        except KeyboardInterrupt:
            h.cancelSolve()  # type: ignore[no-untyped-call]  # highspy leaves it unannotated
            h.wait()  # the interrupt callbacks stop the solve at their next check
            raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def random_instance(n: int, seed: int) -> list[Point]:
    """``n`` distinct points drawn uniformly from the integer grid [-100, 100]^2.

    Duplicates are redrawn from the same generator, so the result depends only on (n, seed).
    """
    if n < 3:
        raise ValueError(f"a TSP instance needs at least 3 points, got {n}")
    if n > (COORD_MAX - COORD_MIN + 1) ** 2:
        raise ValueError(f"the grid has fewer than {n} distinct points")
    rng = np.random.default_rng(seed)
    points: list[Point] = []
    seen: set[Point] = set()
    while len(points) < n:
        x, y = rng.integers(COORD_MIN, COORD_MAX, size=2, endpoint=True)
        point = (int(x), int(y))
        if point not in seen:
            seen.add(point)
            points.append(point)
    return points


def distance_matrix(points: Sequence[Point]) -> np.ndarray:
    """Euclidean distances, float64, shape (n, n); exactly symmetric with a zero diagonal."""
    coords = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    diff = coords[:, None, :] - coords[None, :, :]
    dist: np.ndarray = np.sqrt((diff**2).sum(axis=-1))
    return dist


def tour_length(dist: np.ndarray, tour: Sequence[int]) -> float:
    """Length of the closed tour: the last node returns to the first."""
    if len(tour) < 2:
        return 0.0
    nodes = np.asarray(tour, dtype=np.intp)
    return float(dist[nodes, np.roll(nodes, -1)].sum())


def is_valid_tour(tour: Sequence[int], n: int) -> bool:
    """True iff ``tour`` visits each of the nodes 0..n-1 exactly once."""
    return len(tour) == n and set(tour) == set(range(n))


def nearest_neighbor(dist: np.ndarray) -> list[int]:
    """From node 0, go to the nearest unvisited node each time (ties: lowest index)."""
    n = dist.shape[0]
    tour = [0]
    visited = np.zeros(n, dtype=bool)
    visited[0] = True
    for _ in range(n - 1):
        row = np.where(visited, np.inf, dist[tour[-1]])
        nxt = int(np.argmin(row))  # argmin returns the first minimum: the lowest index
        tour.append(nxt)
        visited[nxt] = True
    return tour


def farthest_insertion(dist: np.ndarray) -> list[int]:
    """Farthest insertion from the tour [0].

    Each step, every unvisited node k gets its cheapest insertion cost over the tour's edges
    (i, j): d(i,k) + d(k,j) - d(i,j). The node whose cheapest cost is largest (ties: lowest k)
    is inserted at its cheapest position (ties: earliest edge).
    """
    n = dist.shape[0]
    tour = [0]
    unvisited = list(range(1, n))
    while unvisited:
        a = np.asarray(tour)
        b = np.roll(a, -1)  # edge p is (tour[p], tour[p+1]); with one node it is (0, 0)
        k = np.asarray(unvisited)
        cost = dist[a][:, k] + dist[k][:, b].T - dist[a, b][:, None]  # shape (edges, nodes)
        best_pos = np.argmin(cost, axis=0)  # earliest edge among ties
        best_cost = cost[best_pos, np.arange(len(unvisited))]
        pick = int(np.argmax(best_cost))  # unvisited is sorted: the first maximum is lowest k
        tour.insert(int(best_pos[pick]) + 1, unvisited.pop(pick))
    return tour


@dataclass(frozen=True)
class ExactSolution:
    tour: tuple[int, ...]  # starts at node 0
    length: float
    proven_optimal: bool
    seconds: float


def _two_opt(dist: np.ndarray, tour: Sequence[int]) -> list[int]:
    """Improve ``tour`` by reversing segments until no reversal shortens it (2-opt)."""
    t = np.asarray(tour, dtype=np.intp)
    n = len(t)
    improved = n > 3
    while improved:
        improved = False
        for i in range(n - 1):
            # Replace edges (t[i], t[i+1]) and (t[j], t[j+1]) by (t[i], t[j]), (t[i+1], t[j+1]).
            j = np.arange(i + 2, n if i > 0 else n - 1)
            if len(j) == 0:
                continue
            a, b, c, d = t[i], t[i + 1], t[j], t[(j + 1) % n]
            delta = dist[a, c] + dist[b, d] - dist[a, b] - dist[c, d]
            best = int(np.argmin(delta))
            if delta[best] < -1e-9:
                t[i + 1 : j[best] + 1] = t[i + 1 : j[best] + 1][::-1].copy()
                improved = True
    return [int(v) for v in t]


def _cycles(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of the graph (0..n-1, edges), each as a walk from its lowest node."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges:
        adj[i].append(j)
        adj[j].append(i)
    seen = [False] * n
    components: list[list[int]] = []
    for start in range(n):
        if seen[start]:
            continue
        walk, stack = [], [start]
        seen[start] = True
        while stack:
            v = stack.pop()
            walk.append(v)
            for w in sorted(adj[v], reverse=True):  # visit the lower neighbour first
                if not seen[w]:
                    seen[w] = True
                    stack.append(w)
        components.append(walk)
    return components


def solve_exact(dist: np.ndarray, *, time_limit_s: float | None = None) -> ExactSolution:
    """The optimal tour with a proof of optimality, from a MILP solved by HiGHS.

    Binary x_ij for each edge i < j, degree 2 at each node, minimise sum d_ij x_ij. Subtours
    are cut lazily: after each solve, every connected component S of the chosen edges that is
    not the whole tour gets the cut sum_{i<j in S} x_ij <= |S| - 1, and the model is solved
    again until the chosen edges form one Hamiltonian cycle. A 2-opt tour is passed as the
    starting incumbent before each solve. ``proven_optimal`` is False only if the time limit
    stopped HiGHS; the starting 2-opt tour is then returned.
    """
    import highspy

    start = time.perf_counter()
    n = dist.shape[0]
    if dist.shape != (n, n) or n < 1:
        raise ValueError(f"dist must be a non-empty square matrix, got shape {dist.shape}")
    if n <= 3:  # one tour up to direction
        tour = tuple(range(n))
        return ExactSolution(tour, tour_length(dist, tour), True, time.perf_counter() - start)

    rows, cols = np.triu_indices(n, 1)
    m = len(rows)
    edge_id = np.full((n, n), -1, dtype=np.int64)
    edge_id[rows, cols] = edge_id[cols, rows] = np.arange(m)

    h = new_solver()
    h.addVars(m, np.zeros(m), np.ones(m))
    all_cols = np.arange(m, dtype=np.int64)
    h.changeColsCost(m, all_cols, dist[rows, cols].astype(np.float64))
    h.changeColsIntegrality(m, all_cols, np.full(m, highspy.HighsVarType.kInteger.value, np.uint8))
    # Degree 2 at every node: row v holds the n-1 edges at v.
    degree_idx = np.array([[e for e in edge_id[v] if e >= 0] for v in range(n)], dtype=np.int64)
    h.addRows(
        n,
        np.full(n, 2.0),
        np.full(n, 2.0),
        degree_idx.size,
        np.arange(0, degree_idx.size, n - 1, dtype=np.int64),
        degree_idx.ravel(),
        np.ones(degree_idx.size),
    )

    incumbent = _two_opt(dist, farthest_insertion(dist))
    while True:
        inc_edges = edge_id[incumbent, np.roll(incumbent, -1)]
        h.setSolution(n, inc_edges, np.ones(n))  # a tour satisfies every subtour cut
        if time_limit_s is not None:
            remaining = time_limit_s - (time.perf_counter() - start)
            if remaining <= 0:
                break
            h.setOptionValue("time_limit", remaining)
        if _run(h) == highspy.HighsStatus.kError:
            # HiGHS has one thread pool per process; if another solve started it with another
            # size, run() refuses. Threads 0 joins the existing pool.
            h.setOptionValue("threads", 0)
            _run(h)
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        x = np.asarray(h.getSolution().col_value)
        chosen = np.flatnonzero(x > 0.5)
        components = _cycles(n, zip(rows[chosen].tolist(), cols[chosen].tolist(), strict=True))
        if len(components) == 1:
            tour = tuple(components[0])
            return ExactSolution(tour, tour_length(dist, tour), True, time.perf_counter() - start)
        starts, indices = [0], []  # one cut per subtour: its internal edges sum to <= |S| - 1
        for comp in components:
            a, b = np.triu_indices(len(comp), 1)
            indices.extend(edge_id[np.asarray(comp)[a], np.asarray(comp)[b]].tolist())
            starts.append(len(indices))
        k = len(components)
        h.addRows(
            k,
            np.full(k, -np.inf),
            np.array([len(c) - 1.0 for c in components]),
            len(indices),
            np.array(starts[:-1], dtype=np.int64),
            np.array(indices, dtype=np.int64),
            np.ones(len(indices)),
        )
    tour = tuple(incumbent)
    return ExactSolution(tour, tour_length(dist, tour), False, time.perf_counter() - start)


def brute_force(dist: np.ndarray) -> tuple[tuple[int, ...], float]:
    """Shortest tour by trying every order of nodes 1..n-1 after node 0 (n <= 10)."""
    n = dist.shape[0]
    if n > BRUTE_FORCE_MAX_N:
        raise ValueError(f"brute_force is for n <= {BRUTE_FORCE_MAX_N}, got {n}")
    best: tuple[int, ...] = tuple(range(n))
    best_len = tour_length(dist, best)
    for rest in itertools.permutations(range(1, n)):
        tour = (0, *rest)
        length = tour_length(dist, tour)
        if length < best_len - 1e-12:
            best, best_len = tour, length
    return best, best_len
