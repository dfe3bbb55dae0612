"""A run's records as types, written and read by the same classes: ``StepRecord`` (one
line of steps.jsonl) and ``RunSummary`` (summary.json). A job's summary and a run dir as
read back are ``opro.problems.jobs``.

On disk they stay plain, readable JSON: a summary's kind-specific fields (``details``) sit at
its top level beside the common ones. Reading checks every field (``opro.record``) and
raises a one-line ``ValueError`` naming the first bad one; the run dir reader turns that into
a one-line error naming the file and line. Format 1 (the first release) reads through the
same classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field, fields
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, computed_field, model_validator
from pydantic.dataclasses import dataclass

from opro.history import Direction
from opro.llm.usage import RoleUsage
from opro.problems.base import Partial
from opro.record import RECORD, Count, JsonRecord, Number, Seconds
from opro.types import Status, StopReason, stop_reason_of

Verdict = Literal["improved", "no_improvement", "all_duplicates", "all_invalid",
                  "no_valid_proposals", "nothing_proposed"]  # fmt: skip
"""What a run's proposals came to (``ProposalCounts.verdict``), whatever its status."""


def _text_defaults_to_solution(data: Any) -> Any:
    """Format 1 wrote no ``text`` where it was the solution itself."""
    if isinstance(data, dict) and "solution" in data and "text" not in data:
        return {**data, "text": str(data["solution"])}
    return data


@dataclass(frozen=True, config=RECORD)
class Candidate(JsonRecord):
    """One new solution of a step, as scored."""

    solution: Any
    """its JSON form (``Problem.to_json``): linreg a pair [w, b], tsp a tour (a permutation
    of the nodes 0..n-1), instructions the instruction, objective the solution's text"""
    text: str
    """the solution as shown in the meta-prompt (``Problem.render``)"""
    score: Number
    """its score: linreg the sum of squared residuals, tsp the tour's length (lower is
    better), instructions the training accuracy in percent, objective what the user's
    function returned"""
    details: Mapping[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    """what scoring found besides the score (an instruction's per-example marks; written
    only when there is something): the kind's own fields"""
    partial: Partial | None = Field(default=None, exclude_if=lambda v: v is None)
    """racing stopped scoring it: ``score`` is over ``partial.scored`` examples of
    ``partial.of``; it is never shown in a meta-prompt nor chosen as the best"""
    optimal: Annotated[bool, Strict()] = Field(default=False, exclude_if=lambda v: not v)
    """a known optimum (the run stops at the step that found one; written only when true)"""

    _text = model_validator(mode="before")(_text_defaults_to_solution)


@dataclass(frozen=True, config=RECORD)
class Refused(JsonRecord):
    """A new solution of a step that has no score (``opro.problems.base.Invalid``)."""

    solution: Any
    """its JSON form (``Problem.to_json``)"""
    text: str
    """as the meta-prompt would show it (``Problem.render``)"""
    reason: str
    """why it has no score (the objective raised, timed out, returned NaN...)"""


@dataclass(frozen=True, config=RECORD)
class StepRecord(JsonRecord):
    """One completed step: the meta-prompt, every output, the new solutions and their
    scores, and the run's usage and time once the step was done."""

    step: Count
    """the step's number: 0 (the starting solutions), 1, 2... in order"""
    temperature: Number
    """the optimizer's sampling temperature at this step (0 at step 0, where nothing is
    sampled)"""
    meta_prompt: str | None
    """the meta-prompt the optimizer was given; null at step 0 (the starting solutions are
    not proposed)"""
    outputs: tuple[str, ...]
    """every optimizer output of the step, as returned, in order (an embedded model stops an
    output once it cannot parse, when the problem has an answer shape: TSP)"""
    candidates: tuple[Candidate, ...]
    """the step's new solutions (parsed, not seen before), as scored"""
    parse_failures: Count
    """outputs holding no solution"""
    duplicates: Count
    """outputs whose solution was already seen"""
    best_score: Number | None
    """the best score so far, this step included"""
    step_seconds: Seconds
    """seconds the step took"""
    elapsed_s: Seconds
    """the run's seconds when the step was done, over all sessions"""
    usage: Mapping[str, RoleUsage] = Field(default_factory=dict)
    """per role (optimizer, scorer, judge): the run's usage so far"""
    invalid: tuple[Refused, ...] = Field(default=(), exclude_if=lambda v: not v)
    """the step's new solutions that have no score, with why (written only when any)"""
    spec_sha256: Annotated[str | None, Field(exclude_if=lambda v: v is None)] = field(
        default=None, compare=False
    )
    """the fingerprint of the spec the step was scored under: the sha256 of config.json's
    ``spec`` as canonical JSON (``opro.fingerprint``); absent in older run dirs"""
    spec: Annotated[Mapping[str, Any] | None, Field(exclude_if=lambda v: v is None)] = field(
        default=None, compare=False
    )
    """step 0 only: config.json's ``spec`` as it was, to name what changed when a
    config.json no longer matches the steps"""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """A hand-edited line may leave out what a step without outputs would hold."""
        if not isinstance(data, dict):
            return data
        return {"temperature": 0.0, "meta_prompt": None, "outputs": [], "parse_failures": 0,
                "duplicates": 0, "best_score": None, "step_seconds": 0.0, "elapsed_s": 0.0,
                **data}  # fmt: skip


@dataclass(frozen=True, config=RECORD)
class ProposalCounts(JsonRecord):
    """What the optimizer's proposals came to, over the steps after step 0 (whose starting
    solutions are not proposed): each output drawn either failed to parse, repeated a
    solution seen before, or was scored."""

    drawn: Count = 0
    """optimizer outputs drawn"""
    parsed: Count = 0
    """outputs that held a solution"""
    parse_failures: Count = 0
    """outputs that held none"""
    duplicates: Count = 0
    """parsed solutions seen before (at an earlier step or in the same one)"""
    scored: Count = 0
    """new solutions scored"""
    improvements: Count = 0
    """new solutions, scored in full, better than the best starting solution"""
    invalid: Count = Field(default=0, exclude_if=lambda v: not v)
    """new solutions that could not be scored (the objective failed on them)"""

    def plus(self, record: StepRecord, start: float | None, direction: Direction) -> ProposalCounts:
        """These counts with ``record``'s (step 0 adds nothing); ``start`` is the best
        starting solution's score (None: any score beats it)."""
        if record.step == 0:
            return self
        sign = 1.0 if direction == "max" else -1.0
        new, refused = len(record.candidates), len(record.invalid)
        better = sum(
            c.partial is None and (start is None or sign * c.score > sign * start)
            for c in record.candidates
        )
        return ProposalCounts(
            drawn=self.drawn + record.parse_failures + record.duplicates + new + refused,
            parsed=self.parsed + record.duplicates + new + refused,
            parse_failures=self.parse_failures + record.parse_failures,
            duplicates=self.duplicates + record.duplicates,
            scored=self.scored + new,
            improvements=self.improvements + better,
            invalid=self.invalid + refused,
        )

    def __add__(self, other: ProposalCounts) -> ProposalCounts:
        """Both runs' counts (a job's: each improvement on its own run's start)."""
        return ProposalCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )

    @classmethod
    def of(cls, records: Sequence[StepRecord], direction: Direction) -> ProposalCounts:
        """The counts of a run's steps (step 0 first), e.g. as read back from its dir."""
        counts = cls()
        start = next((r.best_score for r in records if r.step == 0), None)
        for record in records:
            counts = counts.plus(record, start, direction)
        return counts

    @property
    def verdict(self) -> Verdict:
        if not self.drawn:
            return "nothing_proposed"
        if not self.parsed:
            return "no_valid_proposals"
        if not self.scored:
            return "all_invalid" if self.invalid else "all_duplicates"
        return "improved" if self.improvements else "no_improvement"


@dataclass(frozen=True, config=RECORD)
class BestSolution(JsonRecord):
    solution: Any
    """its JSON form, as in the step records"""
    text: str
    """as shown in the meta-prompt"""
    score: Number
    """its score"""
    step: Count
    """the step that found it"""

    _text = model_validator(mode="before")(_text_defaults_to_solution)


_DERIVED = (
    "calls", "cached_calls", "retries", "tokens", "cost_usd", "verdict", "format", "versions"
)  # fmt: skip
"""Keys written for people (totals of ``usage``) and never read back."""


@dataclass(frozen=True, config=RECORD)
class RunSummary(JsonRecord):
    """Where a run stands (summary.json): written after every step and at the end."""

    status: Status
    """running (written after each step), finished or stopped"""
    stop_reason: StopReason
    """why it ended: max_steps, optimum or patience (finished); budget, llm_error,
    interrupted, user_code (the user's metric failed) or error (stopped); 'running' while
    it runs"""
    message: str
    """why it stopped, in a sentence (empty when finished)"""
    steps_completed: Count
    """the last completed step's number (0 also when none is)"""
    best: BestSolution | None
    """the best solution so far (null: nothing scored)"""
    first_optimal_step: Count | None
    """the step that found a known optimum (null: none)"""
    solutions_evaluated: Count
    """distinct solutions scored so far"""
    usage: Mapping[str, RoleUsage]
    """per role: the run's usage"""
    elapsed_s: Seconds
    """the run's seconds, over all sessions"""
    proposals: ProposalCounts | None = Field(default=None, exclude_if=lambda v: v is None)
    """what the optimizer's proposals came to (absent in summaries written before opro
    counted them)"""
    details: Mapping[str, Any] = Field(default_factory=dict)
    """the kind's own fields (``best_test_score``, ``gap_percent``...), written at the top
    level"""

    flattened = "details"

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        """The common fields as they are, the totals written for people dropped, every other
        key the kind's own (``details``); an older summary's missing counts are 0."""
        if not isinstance(data, dict):
            return data  # built in code, not read
        common = {f.name for f in fields(cls)} - {"details"}
        return {
            "steps_completed": 0, "best": None, "first_optimal_step": None,
            "solutions_evaluated": 0, "usage": {}, "elapsed_s": 0.0,
            **{k: v for k, v in data.items() if k in common},
            "message": str(data.get("message") or ""),
            "stop_reason": stop_reason_of(data),
            "details": {k: v for k, v in data.items() if k not in common and k not in _DERIVED},
        }  # fmt: skip

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> Verdict | None:
        """what the proposals came to (null in a summary without them): improved (a new
        solution beat the best starting one), no_improvement, all_duplicates,
        no_valid_proposals (none parsed), all_invalid (no new one could be scored) or
        nothing_proposed (no step after 0 yet)"""
        return None if self.proposals is None else self.proposals.verdict

    @property
    def total(self) -> RoleUsage:
        return sum(tuple(self.usage.values()), RoleUsage())

    # The totals of ``usage`` over its roles, written for people.

    @computed_field  # type: ignore[prop-decorator]
    @property
    def calls(self) -> int:
        """total of usage: calls"""
        return self.total.calls

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cached_calls(self) -> int:
        """total of usage: cached calls"""
        return self.total.cached_calls

    @computed_field  # type: ignore[prop-decorator]
    @property
    def retries(self) -> int:
        """total of usage: retries"""
        return self.total.retries

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        """total of usage: prompt + completion tokens"""
        return self.total.total_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float | None:
        """total of usage: US dollars (null if a role's is unknown)"""
        return self.total.cost_usd

    @property
    def best_score(self) -> float | None:
        return None if self.best is None else self.best.score
