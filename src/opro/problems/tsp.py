"""The travelling salesman problem (the paper's second motivating example, §3 of OPRO_SPEC).

A solution is a closed tour, a permutation of 0..n-1, written ``<trace> 0,3,1,... </trace>``;
its score is the Euclidean tour length (lower is better). Two traces of the same cycle
(rotated or reversed) are the same solution. The instance (given, or seeded random) and its
exact optimum are fixed once, before the run starts, and kept in its spec; nearest
neighbour and farthest insertion (``tsp_solvers``) are reported as gaps beside it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from opro.answer_shape import ListShape
from opro.errors import ConfigError
from opro.history import History
from opro.llm.base import LLM
from opro.problems import tsp_solvers as ts
from opro.problems.base import KindSummary, Problem, ProposalFormat, ScoringContext, SolutionScore
from opro.problems.jobs import JobRecord, RunRecord
from opro.problems.records import RunSummary
from opro.problems.registry import Kind, KindCli, KindReport, Plot
from opro.problems.spec import MAX_SAMPLES, EngineSpec, RunSpec
from opro.problems.tsp_instance import (
    MAX_NODES,
    SOLVE_SECONDS,
    load_instance,
    print_baselines,
    random_points,
    validate_points,
)
from opro.types import Api

Tour = tuple[int, ...]
GRAMMAR = r"""root ::= "<trace> " num ("," num)* " </trace>"
num ::= [0-9] [0-9]?
"""
OPTIMUM_TOLERANCE = 1e-6


def trace_shape(n: int) -> ListShape:
    """A valid answer: the first ``<trace>…</trace>`` holding a permutation of 0..n-1."""
    return ListShape("<trace>", "</trace>", length=n, below=n)


def parse_trace(text: str, n: int) -> Tour | None:
    """The first ``<trace>…</trace>`` of ``text`` if it is a permutation of 0..n-1."""
    return trace_shape(n).parse(text)


def canonical_cycle(tour: Sequence[int]) -> Tour:
    """Rotate to start at 0 and pick the direction whose second node is smaller."""
    start = list(tour).index(0)
    rotated = tuple(tour[start:]) + tuple(tour[:start])
    reverse = (rotated[0], *rotated[1:][::-1])
    return min(rotated, reverse)


class TspSummary(KindSummary):
    n: int = Field(description="the instance's nodes")
    optimal_length: float = Field(description="the optimal tour's length")
    best_length: float | None = Field(description="the best tour's length so far")
    gap_percent: float | None = Field(description="the best tour's gap to the optimum, in percent")
    nearest_neighbor_gap_percent: float = Field(
        description="the nearest-neighbour tour's gap, percent"
    )
    farthest_insertion_gap_percent: float = Field(
        description="the farthest-insertion tour's gap, percent"
    )


class TravellingSalesman(Problem[Tour]):
    direction = "min"
    summary_model = TspSummary

    def __init__(
        self, points: Sequence[ts.Point], *, num_initial: int = 5, optimal_length: float
    ) -> None:
        self.points = list(points)
        self.n = len(self.points)
        self.num_initial = num_initial
        self.shape = trace_shape(self.n)
        self.proposal = ProposalFormat(
            "tsp.jinja", grammar=GRAMMAR, end="</trace>", shape=self.shape
        )
        self.dist = ts.distance_matrix(self.points)
        self.optimal_length = optimal_length
        self.nn_length = ts.tour_length(self.dist, ts.nearest_neighbor(self.dist))
        self.fi_length = ts.tour_length(self.dist, ts.farthest_insertion(self.dist))

    def initial_solutions(self, rng: np.random.Generator) -> list[Tour]:
        return [tuple(int(i) for i in rng.permutation(self.n)) for _ in range(self.num_initial)]

    def parse(self, text: str) -> Tour | None:
        return self.shape.parse(text)

    def canonical(self, solution: Tour) -> str:
        return ",".join(map(str, canonical_cycle(solution)))

    def render(self, solution: Tour) -> str:
        return ",".join(map(str, solution))

    async def score(self, solutions: list[Tour], context: ScoringContext) -> list[SolutionScore]:
        lengths = [ts.tour_length(self.dist, s) for s in solutions]
        bound = self.optimal_length * (1 + OPTIMUM_TOLERANCE)
        return [SolutionScore(length, optimal=length <= bound) for length in lengths]

    def to_json(self, solution: Tour) -> Any:
        return list(solution)

    def from_json(self, data: Any) -> Tour:
        return tuple(int(i) for i in data)

    def context(
        self, history: History[Tour], rng: np.random.Generator
    ) -> dict[str, list[ts.Point]]:
        return {"points": self.points}

    def summary(self, history: History[Tour]) -> TspSummary:
        best = history.best()
        return TspSummary(
            n=self.n,
            optimal_length=self.optimal_length,
            best_length=None if best is None else best.score,
            gap_percent=None if best is None else gap(best.score, self.optimal_length),
            nearest_neighbor_gap_percent=gap(self.nn_length, self.optimal_length),
            farthest_insertion_gap_percent=gap(self.fi_length, self.optimal_length),
        )


def gap(length: float, optimal: float) -> float:
    """(L - L_opt) / L_opt in percent; no "-0.0 %" from float noise."""
    value = (length - optimal) / optimal * 100 if optimal else 0.0
    return 0.0 if abs(value) < 1e-9 else value


class TspEngine(EngineSpec):
    steps: int = Field(500, ge=1, description="optimization steps")
    top_k: int = Field(10, ge=1, description="best solutions shown in the meta-prompt")
    max_attempts_per_step: int | None = Field(
        24,
        ge=1,
        le=10 * MAX_SAMPLES,
        description="samples drawn at most per step to collect N valid new tours",
    )


class TspSpec(RunSpec):
    kind: Literal["tsp"] = "tsp"
    engine: TspEngine = TspEngine()
    nodes: int | None = Field(None, ge=3, description="a seeded random instance of N points")
    points: tuple[tuple[int, int], ...] | None = Field(
        None, description="the instance (default: random, from nodes and instance_seed)"
    )
    instance_seed: int | None = Field(
        None, ge=0, description="seed of the random instance (default: the run seed)"
    )
    num_initial: int = Field(
        5, ge=1, le=MAX_SAMPLES, description="random starting tours scored at step 0"
    )
    max_nodes: int = Field(
        MAX_NODES,
        ge=3,
        description="the largest instance accepted: the exact solver needs memory growing "
        "with the square of the points (~0.5 GB at 1000)",
    )
    optimal_length: float | None = None
    """the exact optimum's tour length (computed before the run)"""
    optimal_tour: tuple[int, ...] | None = None
    """an optimal tour (computed before the run)"""
    proven_optimal: bool | None = None
    """whether the exact solver proved the optimum within its time limit"""

    RESOLVED = frozenset({"optimal_length", "optimal_tour", "proven_optimal"})


class TspCli(KindCli):
    help = (
        "the paper's travelling-salesman example (§3); "
        "`opro tsp baselines` for the exact optimum, NN and FI"
    )
    examples = (
        "opro tsp baselines --nodes 10            # the exact optimum, NN and FI tours",
        "opro tsp --nodes 10 --steps 20           # offline: the embedded model proposes",
        "opro tsp --optimizer openai:gpt-4o-mini --nodes 10 --budget-usd 1",
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action",
            nargs="?",
            choices=["run", "baselines"],
            default="run",
            help="run OPRO (default) or print the baselines",
        )
        parser.add_argument(
            "--instance", type=Path, metavar="FILE", help='JSON {"points": [[x, y], ...]}'
        )

    def settings_from(self, args: argparse.Namespace) -> dict[str, object]:
        if args.instance is None:
            return {}
        return {"points": load_instance(args.instance, getattr(args, "max_nodes", MAX_NODES))}

    def action(self, args: argparse.Namespace) -> int | None:
        if args.action != "baselines":
            return None
        max_nodes = getattr(args, "max_nodes", MAX_NODES)
        if max_nodes < 3:  # argparse gives the flag no floor (the spec does, for a run)
            raise ConfigError(f"--max-nodes must be >= 3 (got {max_nodes})")
        if args.instance is not None:
            points = load_instance(args.instance, max_nodes)
        elif getattr(args, "nodes", None) is not None:
            points = random_points(args.nodes, getattr(args, "seed", 0), max_nodes)
        else:
            raise ConfigError("tsp baselines needs --instance FILE or --nodes N")
        limit = getattr(args, "time_limit_s", None) or SOLVE_SECONDS  # the cap flag
        if limit <= 0:
            raise ConfigError(f"--time-limit must be > 0 (got {limit})")
        print_baselines(points, as_json=args.json, time_limit_s=limit)
        return 0

    def describe(self, summary: RunSummary) -> list[str]:
        d = summary.details
        if summary.best is None:
            return ["no tour was scored"]
        return [
            f"best tour: {summary.best.text}",
            f"length {summary.best.score:.2f}: {d['gap_percent']:.1f} % over the optimum "
            f"{d['optimal_length']:.2f} (nearest neighbour {d['nearest_neighbor_gap_percent']:.1f}"
            f" %, farthest insertion {d['farthest_insertion_gap_percent']:.1f} %)",
        ]


class TspReport(KindReport):
    overlay_axis = "optimality gap of the best tour so far (%)"

    def headline(self, summary: RunSummary) -> dict[str, float | None]:
        return {"best_score": summary.best_score, "gap_percent": summary.details.get("gap_percent")}

    def facts(self, job: JobRecord) -> list[tuple[str, str]]:
        facts = _facts(job.runs[0])
        length = facts.best_length
        rows = [
            ("nodes", str(len(facts.points))),
            ("optimal length", f"{facts.optimal_length:.2f}"),
            (
                "best length (gap)",
                "—"
                if length is None
                else f"{length:.2f} ({gap(length, facts.optimal_length):.1f} %)",
            ),
        ]
        for label, value in (("nearest neighbour", facts.nn), ("farthest insertion", facts.fi)):
            rows.append(
                (f"{label} (gap)", f"{value:.2f} ({gap(value, facts.optimal_length):.1f} %)")
            )
        summary = job.runs[0].summary
        first = None if summary is None else summary.first_optimal_step
        return [*rows, ("first step at the optimum", "—" if first is None else str(first))]

    def figures(self, job: JobRecord) -> list[Plot]:
        from opro.problems.figures import tsp  # the report facet: loads matplotlib

        return tsp.figures(job, _facts(job.runs[0]))

    def overlay_curve(self, run: RunRecord) -> list[tuple[int, float]]:
        optimal = _facts(run).optimal_length
        return [(step, gap(value, optimal)) for step, value in run.best_so_far()]


class TspKind(Kind[TspSpec]):
    name = "tsp"
    command = "tsp"
    title = "travelling salesman"
    spec = TspSpec
    problem = TravellingSalesman
    cli = TspCli()
    report = TspReport()

    def resolve(self, spec: TspSpec, apis: Mapping[str, Api]) -> TspSpec:
        points = spec.points
        if points is None:
            if spec.nodes is None:
                raise ConfigError("nodes: give a number of nodes (or the instance's points)")
            seed = spec.engine.seed if spec.instance_seed is None else spec.instance_seed
            points = tuple(random_points(spec.nodes, seed, spec.max_nodes))
        points = tuple(validate_points(points, "instance", spec.max_nodes))
        if spec.optimal_length is not None and spec.points == points:
            return spec
        exact = ts.solve_exact(ts.distance_matrix(points), time_limit_s=SOLVE_SECONDS)
        return spec.model_copy(
            update={
                "points": points,
                "nodes": len(points),
                "optimal_length": exact.length,
                "optimal_tour": exact.tour,
                "proven_optimal": exact.proven_optimal,
            }
        )

    def build(self, spec: TspSpec, llms: Mapping[str, LLM]) -> TravellingSalesman:
        assert spec.points is not None, "resolve it first"
        assert spec.optimal_length is not None, "resolve it first"
        return TravellingSalesman(
            spec.points, num_initial=spec.num_initial, optimal_length=spec.optimal_length
        )


class Facts:
    """A run's instance, reference tours and best tour (the optimum from its spec; a run
    of the first release, which did not keep the optimal tour, has it solved again)."""

    def __init__(self, run: RunRecord) -> None:
        spec = run.spec
        assert isinstance(spec, TspSpec)
        assert spec.points is not None
        self.points = spec.points
        dist = ts.distance_matrix(self.points)
        if spec.optimal_tour is None or spec.optimal_length is None:
            exact = ts.solve_exact(dist, time_limit_s=SOLVE_SECONDS)
            self.optimal_tour, self.optimal_length = exact.tour, exact.length
            self.proven = exact.proven_optimal
        else:
            self.optimal_tour, self.optimal_length = spec.optimal_tour, spec.optimal_length
            self.proven = bool(spec.proven_optimal)
        self.nn = ts.tour_length(dist, ts.nearest_neighbor(dist))
        self.fi = ts.tour_length(dist, ts.farthest_insertion(dist))
        best = run.best()
        self.best_tour = None if best is None else tuple(int(i) for i in best.solution)
        self.best_length = None if best is None else best.score


def _facts(run: RunRecord) -> Facts:
    return Facts(run)


KIND = TspKind()
