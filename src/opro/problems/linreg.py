"""Linear regression as a black box (the paper's motivating example, §2 of OPRO_SPEC).

Data: x = 1..50, y = w_true·x + b_true + ε with ε ~ N(0, 1), seeded by the run seed. A
solution is an integer pair (w, b); its score is the sum of squared residuals (lower is
better). The optimizer sees only pairs and their integer-rounded values, never the data or
the formula. The paper runs it 5 times (``reps``) and reports steps to the optimum and
unique pairs explored, mean ± sd: a job of repetitions whose summary holds those means.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, JsonValue

from opro.history import History
from opro.llm.base import LLM
from opro.problems.base import KindSummary, Problem, ProposalFormat, ScoringContext, SolutionScore
from opro.problems.jobs import JobRecord, RunRecord
from opro.problems.records import RunSummary
from opro.problems.registry import Kind, KindCli, KindReport, Plot, Table
from opro.problems.spec import MAX_REPS, MAX_SAMPLES, EngineSpec, RunSpec

Pair = tuple[int, int]
_NUMBER = r"-?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
GRAMMAR = r"""root ::= "[" int ", " int "]"
int ::= "-"? [0-9] [0-9]? [0-9]?
"""
COORDINATE_LIMIT = 10**6
"""|w_true|, |b_true| at most this: beyond, the objective overflows what a prompt can show."""


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


class LinregSummary(KindSummary):
    w_true: int = Field(description="the true slope")
    b_true: int = Field(description="the true intercept")
    steps_to_optimum: int | None = Field(
        description="the first step that proposed (w_true, b_true)"
    )
    unique_pairs_explored: int = Field(description="distinct pairs scored")


class LinearRegression(Problem[Pair]):
    direction = "min"
    summary_model = LinregSummary

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
        stop_at_pair: bool = False,
    ) -> None:
        """``stop_at_pair``: stop the optimizer at the first ``]`` (a base model writes on
        past its pair; a chat model may write a ``[w, b]`` placeholder before it)."""
        self.w_true, self.b_true = w_true, b_true
        self.num_initial = num_initial
        self.initial_low, self.initial_high = initial_low, initial_high
        rng = np.random.default_rng(data_seed)
        self.x = np.arange(1, num_points + 1, dtype=np.float64)
        self.y = w_true * self.x + b_true + rng.standard_normal(num_points)
        self.proposal = ProposalFormat(
            "linreg.jinja", grammar=GRAMMAR, end="]" if stop_at_pair else None
        )

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

    async def score(self, solutions: list[Pair], context: ScoringContext) -> list[SolutionScore]:
        target = (self.w_true, self.b_true)
        return [SolutionScore(self.objective(s), optimal=s == target) for s in solutions]

    def to_json(self, solution: Pair) -> Any:
        return list(solution)

    def from_json(self, data: Any) -> Pair:
        return int(data[0]), int(data[1])

    def summary(self, history: History[Pair]) -> LinregSummary:
        reached = [e.step for e in history.entries if e.solution == (self.w_true, self.b_true)]
        return LinregSummary(
            w_true=self.w_true,
            b_true=self.b_true,
            steps_to_optimum=min(reached) if reached else None,
            unique_pairs_explored=len(history),
        )


class LinregEngine(EngineSpec):
    steps: int = Field(500, ge=1, description="optimization steps")


class LinregSpec(RunSpec):
    kind: Literal["linreg"] = "linreg"
    engine: LinregEngine = LinregEngine()
    reps: int = Field(
        5, ge=1, le=MAX_REPS, description="repetitions, seeds seed..seed+reps-1 (the paper: 5)"
    )
    w_true: int = Field(15, ge=-COORDINATE_LIMIT, le=COORDINATE_LIMIT, description="true slope")
    b_true: int = Field(14, ge=-COORDINATE_LIMIT, le=COORDINATE_LIMIT, description="true intercept")
    num_initial: int = Field(
        5, ge=1, le=MAX_SAMPLES, description="random starting pairs scored at step 0"
    )


class LinregCli(KindCli):
    help = "the paper's linear-regression example (§2)"
    examples = (
        "opro linreg --steps 10                   # offline: the embedded model proposes",
        "opro linreg --optimizer local:gemma3-270m --constrained --w-true 3 --b-true 5",
        "opro linreg --optimizer openai:gpt-4o-mini --reps 5 --budget-usd 1",
    )

    def describe(self, summary: RunSummary) -> list[str]:
        reached = summary.details.get("steps_to_optimum")
        best = "nothing" if summary.best is None else summary.best.text
        found = "not reached" if reached is None else f"reached at step {reached}"
        return [f"best: {best}; the optimum ({summary.details.get('w_true')}, "
                f"{summary.details.get('b_true')}) {found}"]  # fmt: skip


class LinregReport(KindReport):
    overlay_axis = "best objective so far"

    def headline(self, summary: RunSummary) -> dict[str, float | None]:
        steps = summary.details.get("steps_to_optimum")
        return {"best_score": summary.best_score, "steps_to_optimum": steps}

    def facts(self, job: JobRecord) -> list[tuple[str, str]]:
        reached = [s for s in (steps_to_optimum(r) for r in job.runs) if s is not None]
        pairs = [len(r.candidates()) for r in job.runs]
        spec = job.spec
        assert isinstance(spec, LinregSpec)
        return [
            ("true (w, b)", f"({spec.w_true}, {spec.b_true})"),
            ("repetitions (reaching the optimum)", f"{len(job.runs)} ({len(reached)})"),
            ("steps to optimum (mean ± sd)", _mean_std(reached)),
            ("unique pairs explored (mean ± sd)", _mean_std(pairs)),
        ]

    def tables(self, job: JobRecord) -> list[Table]:
        headers = ("run", "status", "steps done", "steps to optimum", "unique pairs",
                   "best (w, b)", "best objective")  # fmt: skip
        rows = []
        for run in job.runs:
            best = run.best()
            reached = steps_to_optimum(run)
            rows.append(
                (
                    run.path.name,
                    run.status,
                    str(run.last_step),
                    "not reached" if reached is None else str(reached),
                    str(len(run.candidates())),
                    "—" if best is None else best.text,
                    "—" if best is None else f"{best.score:.2f}",
                )
            )
        return [Table("Repetitions", headers, tuple(rows))]

    def figures(self, job: JobRecord) -> list[Plot]:
        from opro.problems.figures import linreg  # the report facet: loads matplotlib

        return linreg.figures(job)


class LinregKind(Kind[LinregSpec]):
    name = "linreg"
    command = "linreg"
    title = "linear regression"
    spec = LinregSpec
    problem = LinearRegression
    cli = LinregCli()
    report = LinregReport()

    def build(self, spec: LinregSpec, llms: Mapping[str, LLM]) -> LinearRegression:
        return LinearRegression(
            spec.w_true,
            spec.b_true,
            data_seed=spec.engine.seed,
            num_initial=spec.num_initial,
            stop_at_pair=llms["optimizer"].api == "completion",
        )

    def upgrade(self, params: dict[str, JsonValue]) -> dict[str, JsonValue]:
        params.pop("data_seed", None)  # format 1 kept it apart; it is the run seed
        return params


def steps_to_optimum(run: RunRecord) -> int | None:
    """A run's first step that proposed (w_true, b_true), if any."""
    spec = run.spec
    assert isinstance(spec, LinregSpec)
    target = [spec.w_true, spec.b_true]
    found = [step for step, c in run.candidates() if list(c.solution) == target]
    return min(found) if found else None


def _mean_std(values: list[int]) -> str:
    if not values:
        return "—"
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return f"{mean:.1f} ± {sd:.1f}"


KIND = LinregKind()
