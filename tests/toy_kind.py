"""A tiny problem kind defined outside the package, to prove the registry: guess a hidden
number. Registering it is one line, an entry point (``guess = "tests.toy_kind:KIND"`` under
``[project.entry-points."opro.kinds"]`` of a pyproject.toml; here in
tests/plugins/opro_toy_kind-0.1.dist-info, as installed); the runner, resume, the report,
the sweep and the CLI then know it without a change of theirs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from opro.llm.base import LLM
from opro.problems.base import Problem, ProposalFormat, ScoringContext, SolutionScore
from opro.problems.jobs import JobRecord
from opro.problems.registry import Kind, KindCli, KindReport, Table
from opro.problems.spec import EngineSpec, RunSpec
from opro.types import Request

TEMPLATE = """Guess my number. Earlier guesses, worst first:
{% for entry in entries %}
<guess>{{ entry.text }}</guess> scored {{ entry.score }}
{% endfor %}
Write a new guess as <guess>N</guess>."""


class Guess(Problem[int]):
    direction = "max"
    proposal = ProposalFormat("guess", stop=("</guess>",), text=TEMPLATE)

    def __init__(self, target: int) -> None:
        self.target = target

    def initial_solutions(self, rng: np.random.Generator) -> list[int]:
        return [int(x) for x in rng.integers(0, 100, size=3)]

    def parse(self, text: str) -> int | None:
        found = re.search(r"<guess>\s*(-?\d+)", text)
        return None if found is None else int(found.group(1))

    def canonical(self, solution: int) -> str:
        return str(solution)

    def render(self, solution: int) -> str:
        return str(solution)

    async def score(self, solutions: list[int], context: ScoringContext) -> list[SolutionScore]:
        return [SolutionScore(-abs(s - self.target), optimal=s == self.target) for s in solutions]


class GuessEngine(EngineSpec):
    steps: int = Field(6, ge=1, description="optimization steps")
    samples_per_step: int = Field(4, ge=1, description="optimizer samples per step")


class GuessSpec(RunSpec):
    kind: Literal["guess"] = "guess"
    engine: GuessEngine = GuessEngine()
    target: int = Field(42, description="the hidden number")


class GuessCli(KindCli):
    help = "guess a hidden number (a toy kind)"


class GuessReport(KindReport):
    def tables(self, job: JobRecord) -> list[Table]:
        rows = tuple((str(s), c.text, f"{c.score:g}") for s, c in job.runs[0].ranked()[:3])
        return [Table("Best guesses", ("step", "guess", "score"), rows)]


class GuessKind(Kind[GuessSpec]):
    name = "guess"
    command = "guess"
    title = "number guessing"
    spec = GuessSpec
    problem = Guess
    cli = GuessCli()
    report = GuessReport()

    def build(self, spec: GuessSpec, llms: Mapping[str, LLM]) -> Guess:
        return Guess(spec.target)


KIND = GuessKind()


def guesser(request: Request) -> str:
    """A scripted optimizer for the toy kind: a guess drawn from the request's sample."""
    rng = np.random.default_rng([request.seed or 0, request.sample])
    return f" <guess>{int(rng.integers(30, 50))}"
