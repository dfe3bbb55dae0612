"""Your own objective (``opro solve``): OPRO on any problem whose solutions are texts that a
Python function of yours scores, the paper's thesis that an LLM optimizes whatever it is
told in words, given solutions with their scores (OPRO_SPEC §1).

The meta-prompt is the paper's generic form: the task in your words, earlier solutions
with their scores (best last), and "give a new solution different from all above" inside
``<solution>`` tags; an instruction-tuned optimizer gets it as a request, a pre-trained one
as a pattern to continue (``style``, chosen by the optimizer's API unless given). Your
function's feedback text, if it returns one, is shown next to the score with ``feedback``
(off by default: the paper shows scores only). ``show_history`` off asks the same request
with no earlier solutions: random sampling from the optimizer, the baseline OPRO must beat.

A solution is checked (its length, ``pattern``, ``validator``) and then scored; one that
fails either way is recorded as invalid with the reason, never scored
(``opro.problems.objective_calls`` calls the function: time limits, concurrency, cache).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from opro.history import Direction, History, Scored
from opro.llm.base import LLM
from opro.llm.stack import ManagedLLM
from opro.problems.base import (
    Invalid,
    KindSummary,
    Problem,
    ProposalFormat,
    ScoringContext,
    SolutionScore,
)
from opro.problems.jobs import JobRecord
from opro.problems.objective_calls import Objective, Score, in_thread, load, raised
from opro.problems.records import RunSummary
from opro.problems.registry import Kind, KindCli, KindReport, Plot, Table
from opro.problems.spec import (
    MAX_SAMPLES,
    EngineSpec,
    RunSpec,
    ScoreDisplay,
    function_path,
)
from opro.types import Api

MAX_LENGTH = 20_000
"""Characters a solution may have at most (``max_length``'s ceiling)."""
SOLUTIONS = ("step", "solution", "score", "feedback")
INVALID = ("step", "solution", "why")
_SOLUTION = re.compile(r"<solution>((?:(?!<solution>).)*?)</solution>", re.DOTALL)
"""A closed solution, from the last opening before its close."""


class ObjectiveEngine(EngineSpec):
    GRAMMAR = False  # a solution's form is the user's: no grammar holds proposals to it

    steps: int = Field(20, ge=1, description="optimization steps")
    score_display: ScoreDisplay = Field(
        "short",
        description="how scores are shown (short: a fraction's 4 significant digits, a "
        "whole number whole: a score of yours may be a fraction, which int rounds away)",
    )

    @field_validator("constrained")
    @classmethod
    def _unconstrained(cls, constrained: bool) -> bool:
        if constrained:
            raise ValueError(
                "your solutions' form has no grammar to hold proposals to: leave it off (a "
                "pattern or a validator refuses what does not fit)"
            )
        return constrained


class ObjectiveSpec(RunSpec):
    kind: Literal["objective"] = "objective"
    engine: ObjectiveEngine = ObjectiveEngine()
    objective: str = Field(
        description="your scoring function, module:function: (solution: str) -> a number, or "
        "(number, feedback text); sync or async (in Python also the function itself)"
    )
    task: str = Field(min_length=1, description="the problem in words, as the optimizer reads it")
    solution_format: str = Field(
        "", description="what a solution looks like, said to the optimizer"
    )
    direction: Direction = Field("max", description="max: higher scores are better; min: lower")
    initial: tuple[str, ...] = Field((), description="starting solutions, scored at step 0")
    pattern: str | None = Field(
        None, description="a regular expression a solution must match in full to be scored"
    )
    validator: str | None = Field(
        None,
        description="module:function(solution) -> True, or False or a reason: checked before "
        "scoring (in Python also the function itself)",
    )
    max_length: int = Field(
        2000, ge=1, le=MAX_LENGTH, description="characters a solution may have at most"
    )
    feedback: bool = Field(
        False,
        description="show your function's feedback text next to each score in the "
        "meta-prompt (the paper shows scores only)",
    )
    show_history: bool = Field(
        True,
        description="show earlier solutions and scores (off: sample the optimizer with no "
        "history, the random-sampling baseline)",
    )
    target: float | None = Field(
        None, description="a score that ends the run when reached (a known optimum)"
    )
    objective_timeout_s: float = Field(
        10.0, gt=0, description="seconds one call of your function may take"
    )
    objective_concurrency: int = Field(
        4, ge=1, le=MAX_SAMPLES, description="calls of your function at once"
    )
    isolation: Literal["thread", "process"] = Field(
        "thread",
        description="where a sync function runs: a thread of its own (a call that overruns "
        "is abandoned) or a process of its own (killed)",
    )
    cache_scores: bool = Field(
        True, description="cache your function's scores by solution in the call cache"
    )
    style: Literal["instruct", "pretrained"] | None = Field(
        None,
        description="meta-prompt style (default: pretrained for a completion-API optimizer)",
    )

    @field_validator("objective", "validator", mode="before")
    @classmethod
    def _function_by_its_path(cls, value: Any) -> Any:
        return function_path(value, "objective")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return pattern

    @field_validator("objective", "validator")
    @classmethod
    def _a_path(cls, path: str | None) -> str | None:
        if path is not None and not re.fullmatch(r"[\w.]+:[\w.]+", path):
            raise ValueError("give module:function (e.g. mymodule:score)")
        return path

    def imports(self) -> tuple[str, ...]:
        return (*super().imports(), self.objective, *([self.validator] if self.validator else []))


class FirstInvalid(BaseModel):
    """An objective run's first solution that could not be scored."""

    model_config = ConfigDict(frozen=True)
    solution: str = Field(description="the solution's text")
    reason: str = Field(description="why it could not be scored")


class ObjectiveSummary(KindSummary):
    objective: str = Field(description="the user's scoring function, module:function")
    invalid_solutions: int = Field(
        description="distinct solutions that could not be scored (the objective failed on "
        "them, or they failed their checks)"
    )
    first_invalid: FirstInvalid | None = Field(
        description="the first of them, and why (null: none)"
    )


class ObjectiveDetails(KindSummary):
    feedback: str = Field(description="the text the user's function returned with the score")


class ObjectiveProblem(Problem[str]):
    summary_model = ObjectiveSummary
    details_model = ObjectiveDetails

    def __init__(self, spec: ObjectiveSpec, objective: Objective) -> None:
        self.spec = spec
        self.direction = spec.direction
        self.objective = objective
        self.validator = None if spec.validator is None else load(spec.validator, "validator")
        self.validator_async = inspect.iscoroutinefunction(self.validator)
        self.pattern = None if spec.pattern is None else re.compile(spec.pattern, re.DOTALL)
        template = f"objective_{spec.style or 'instruct'}.jinja"
        self.proposal = ProposalFormat(template, end="</solution>")

    def initial_solutions(self, rng: np.random.Generator) -> list[str]:
        return list(self.spec.initial)

    def parse(self, text: str) -> str | None:
        """The last closed solution; a bare close only where the prompt opened it (the
        pre-trained style without history ends with ``<solution>``)."""
        opened = "<solution>" in text.partition("</solution>")[0]
        if not opened and self.spec.style == "pretrained":
            text = "<solution>" + text
        found = _SOLUTION.findall(text)
        if not found:
            return None
        solution: str = found[-1].strip()
        return solution or None

    def canonical(self, solution: str) -> str:
        return solution

    def render(self, solution: str) -> str:
        return solution

    def context(self, history: History[str], rng: np.random.Generator) -> dict[str, str | bool]:
        spec = self.spec
        return {
            "task": spec.task.strip(),
            "solution_format": spec.solution_format.strip(),
            "maximize": spec.direction == "max",
            "show_history": spec.show_history,
        }

    def summary(self, history: History[str]) -> ObjectiveSummary:
        first = next(iter(history.refusals.items()), None)
        return ObjectiveSummary(
            objective=self.spec.objective,
            invalid_solutions=len(history.refusals),
            first_invalid=None
            if first is None
            else FirstInvalid(solution=first[0], reason=first[1]),
        )

    def feedback(self, entry: Scored[str]) -> str | None:
        if not self.spec.feedback or not entry.details:
            return None
        note = entry.details.get("feedback")
        return note if isinstance(note, str) else None

    async def score(
        self, solutions: list[str], context: ScoringContext
    ) -> Sequence[SolutionScore | Invalid]:
        checked = [await self._check(s) for s in solutions]
        valid = [s for s, reason in zip(solutions, checked, strict=True) if reason is None]
        scores = iter(await self.objective.score_all(valid))
        results: list[SolutionScore | Invalid] = []
        for reason in checked:
            if reason is not None:
                results.append(Invalid(reason))
                continue
            result = next(scores)
            results.append(result if isinstance(result, Invalid) else self._evaluation(result))
        return results

    def _evaluation(self, score: Score) -> SolutionScore:
        target = self.spec.target
        reached = target is not None and (
            score.value >= target if self.direction == "max" else score.value <= target
        )
        details = None if score.feedback is None else {"feedback": score.feedback}
        return SolutionScore(score.value, optimal=reached, details=details)

    async def _check(self, solution: str) -> str | None:
        """Why ``solution`` may not be scored, or None."""
        if len(solution) > self.spec.max_length:
            return f"longer than {self.spec.max_length} characters ({len(solution)})"
        if self.pattern is not None and self.pattern.fullmatch(solution) is None:
            return f"does not match the pattern {self.spec.pattern!r}"
        if self.validator is None:
            return None
        limit = self.spec.objective_timeout_s  # a validator is held to the same limit
        try:
            validator = self.validator
            call = validator(solution) if self.validator_async else in_thread(validator, solution)
            verdict = await asyncio.wait_for(call, limit)
        except TimeoutError:
            return f"validator timed out after {limit:g} s"
        except Exception as exc:
            return f"validator {raised(exc)}"
        if verdict is True or verdict is None:
            return None
        if isinstance(verdict, str) and verdict.strip():
            return verdict.strip()
        return "refused by the validator"


class ObjectiveCli(KindCli):
    help = "optimize any text a Python function of yours scores (OPRO on your own objective)"
    examples = (
        'opro solve --objective examples.objectives.knapsack:score --task "Choose items of '
        'the most total value..." --solution-format "Item numbers separated by commas." '
        "--steps 8   # offline: the embedded model proposes",
        'opro solve --objective mymodule:cost --task "..." --direction min --target 0 --feedback',
        'opro solve --objective mymodule:score --task "..." --optimizer openai:gpt-4o-mini '
        "--budget-usd 1",
    )

    def describe(self, summary: RunSummary) -> list[str]:
        best = summary.best
        invalid = summary.details.get("invalid_solutions") or 0
        first = summary.details.get("first_invalid")
        lines = ["nothing was scored"] if best is None else [
            f"best solution (score {best.score:.6g}, found at step {best.step}):",
            *(f"  {line}" for line in best.text.splitlines()),
        ]  # fmt: skip
        if invalid and isinstance(first, dict):
            lines.append(
                f"{invalid} solution{'s' if invalid > 1 else ''} could not be scored, the first "
                f"{_cell(first.get('solution'), 60)!r}: {_cell(first.get('reason'))} (the "
                "report lists each and why)"
            )
        return lines


class ObjectiveReport(KindReport):
    def figures(self, job: JobRecord) -> list[Plot]:
        from opro.problems.figures import objective  # the report facet: loads matplotlib

        return objective.figures(job)

    def tables(self, job: JobRecord) -> list[Table]:
        tables = []
        for run in job.runs:
            ranked = run.ranked()
            rows = tuple(
                (str(step), _cell(c.text), f"{c.score:.6g}", _cell(_note(c.details)))
                for step, c in ranked[:50]
            )
            name = run.path.name
            tables.append(Table(f"Solutions, best first ({name})", SOLUTIONS, rows))
            refused = tuple(
                (str(s.step), _cell(r.text), _cell(r.reason)) for s in run.steps for r in s.invalid
            )
            if refused:
                tables.append(Table(f"Invalid solutions ({name})", INVALID, refused))
        return tables


class ObjectiveKind(Kind[ObjectiveSpec]):
    name = "objective"
    command = "solve"
    title = "your own objective"
    spec = ObjectiveSpec
    problem = ObjectiveProblem  # its direction: the spec's (direction_of)
    cli = ObjectiveCli()
    report = ObjectiveReport()

    def direction_of(self, spec: ObjectiveSpec) -> Direction:
        return spec.direction

    def resolve(self, spec: ObjectiveSpec, apis: Mapping[str, Api]) -> ObjectiveSpec:
        style = spec.style or ("pretrained" if apis["optimizer"] == "completion" else "instruct")
        return spec.model_copy(update={"style": style})

    def build(self, spec: ObjectiveSpec, llms: Mapping[str, LLM]) -> ObjectiveProblem:
        optimizer = llms.get("optimizer")
        cache = optimizer.cache if isinstance(optimizer, ManagedLLM) else None
        objective = Objective(
            spec.objective,
            timeout_s=spec.objective_timeout_s,
            concurrency=spec.objective_concurrency,
            isolation=spec.isolation,
            cache=cache if spec.cache_scores else None,
        )
        return ObjectiveProblem(spec, objective)


def _note(details: Mapping[str, Any] | None) -> str:
    return str((details or {}).get("feedback", ""))


def _cell(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


KIND = ObjectiveKind()
