"""A run's records as types, written and read by the same classes: ``StepRecord`` (one
line of steps.jsonl) and ``RunSummary`` (summary.json). A job's summary and a run dir as
read back are ``opro.problems.jobs``.

On disk they stay plain, readable JSON: a summary's kind-specific fields (``details``) sit at
its top level beside the common ones. ``from_json`` checks types and raises ``ValueError``
naming the first bad field; the run dir reader turns that into a one-line error naming the
file and line. Format 1 (the first release) reads through the same classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from opro.history import Direction
from opro.llm.usage import RoleUsage, Totals
from opro.problems.base import Partial
from opro.types import Status, StopReason, stop_reason_of

Verdict = Literal["improved", "no_improvement", "all_duplicates", "all_invalid",
                  "no_valid_proposals", "nothing_proposed"]  # fmt: skip
"""What a run's proposals came to (``ProposalCounts.verdict``), whatever its status."""


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value: object = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key!r} is {value!r}, not an integer")
    return int(value)


def _number(data: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{key!r} is {value!r}, not a number")
    return float(value)


def _optional_number(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _number(data, key)


def _usage(data: Any) -> dict[str, RoleUsage]:
    if not isinstance(data, dict):
        raise ValueError("'usage' is not an object of roles")
    try:
        return {str(role): RoleUsage.from_json(dict(u)) for role, u in data.items()}
    except (TypeError, ValueError):
        raise ValueError("'usage' holds a malformed role") from None


@dataclass(frozen=True)
class Candidate:
    """One new solution of a step, as scored."""

    solution: Any
    """Its JSON form (``Problem.to_json``)."""
    text: str
    """As shown in the meta-prompt (``Problem.render``)."""
    score: float
    details: Mapping[str, Any] | None = None
    """What scoring found besides the score (an instruction's per-example marks)."""
    optimal: bool = False
    """A known optimum (the run stops at the step that found one)."""
    partial: Partial | None = None
    """Racing stopped scoring it: ``score`` is over ``partial.scored`` examples of
    ``partial.of``; it is never shown in a meta-prompt nor chosen as the best."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"solution": self.solution, "text": self.text, "score": self.score}
        if self.details is not None:
            data["details"] = dict(self.details)
        if self.partial is not None:
            data["partial"] = {"scored": self.partial.scored, "of": self.partial.of}
        return data | ({"optimal": True} if self.optimal else {})

    @classmethod
    def from_json(cls, data: Any) -> Candidate:
        if not isinstance(data, dict) or "solution" not in data:
            raise ValueError("a candidate is not an object with a 'solution'")
        details = data.get("details")
        if details is not None and not isinstance(details, dict):
            raise ValueError("a candidate's 'details' is not an object")
        text = data.get("text", data["solution"])
        optimal = data.get("optimal", False) is True
        partial = data.get("partial")
        if partial is not None:
            if not isinstance(partial, dict):
                raise ValueError("a candidate's 'partial' is not an object")
            partial = Partial(_int(partial, "scored"), _int(partial, "of"))
        return cls(data["solution"], str(text), _number(data, "score"), details, optimal, partial)


@dataclass(frozen=True)
class Refused:
    """A new solution of a step that has no score (``opro.problems.base.Invalid``)."""

    solution: Any
    """Its JSON form (``Problem.to_json``)."""
    text: str
    """As the meta-prompt would show it (``Problem.render``)."""
    reason: str
    """Why it has no score (the objective raised, timed out, returned NaN...)."""

    @classmethod
    def from_json(cls, data: Any) -> Refused:
        if not isinstance(data, dict) or "solution" not in data:
            raise ValueError("an invalid solution is not an object with a 'solution'")
        return cls(data["solution"], str(data.get("text", "")), str(data.get("reason", "")))


@dataclass(frozen=True)
class StepRecord:
    """One completed step: the meta-prompt, every output, the new solutions and their
    scores, and the run's usage and time once the step was done."""

    step: int
    temperature: float
    meta_prompt: str | None
    """None at step 0 (the starting solutions are not proposed)."""
    outputs: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    parse_failures: int
    duplicates: int
    best_score: float | None
    """The best score so far, this step included."""
    step_seconds: float
    elapsed_s: float
    usage: Mapping[str, RoleUsage] = field(default_factory=dict)
    invalid: tuple[Refused, ...] = ()
    """The step's new solutions that have no score, with why (written only when any)."""
    spec_sha256: str | None = field(default=None, compare=False)
    """The fingerprint of the spec the step was scored under: the sha256 of config.json's
    ``spec`` as canonical JSON (``opro.fingerprint``); absent in older run dirs."""
    spec: Mapping[str, Any] | None = field(default=None, compare=False)
    """Step 0 only: config.json's ``spec`` as it was, to name what changed when a
    config.json no longer matches the steps."""

    def to_json(self) -> dict[str, Any]:
        scored_under: dict[str, Any] = {}
        if self.spec_sha256 is not None:
            scored_under["spec_sha256"] = self.spec_sha256
        if self.spec is not None:
            scored_under["spec"] = dict(self.spec)
        invalid = {"invalid": [asdict(r) for r in self.invalid]} if self.invalid else {}
        return (
            {
                "step": self.step,
                "temperature": self.temperature,
                "meta_prompt": self.meta_prompt,
                "outputs": list(self.outputs),
                "candidates": [c.to_json() for c in self.candidates],
                "parse_failures": self.parse_failures,
                "duplicates": self.duplicates,
                "best_score": self.best_score,
                "step_seconds": self.step_seconds,
                "elapsed_s": self.elapsed_s,
                "usage": {role: u.to_json() for role, u in self.usage.items()},
            }
            | invalid
            | scored_under
        )

    @classmethod
    def from_json(cls, data: Any) -> StepRecord:
        if not isinstance(data, dict):
            raise ValueError("a step record is not a JSON object")
        outputs, candidates = data.get("outputs", []), data.get("candidates")
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise ValueError("'outputs' is not a list of texts")
        if not isinstance(candidates, list):
            raise ValueError("'candidates' is not a list")
        meta_prompt = data.get("meta_prompt")
        if meta_prompt is not None and not isinstance(meta_prompt, str):
            raise ValueError("'meta_prompt' is not a text")
        sha, spec = data.get("spec_sha256"), data.get("spec")
        if sha is not None and not isinstance(sha, str):
            raise ValueError("'spec_sha256' is not a text")
        if spec is not None and not isinstance(spec, dict):
            raise ValueError("'spec' is not an object")
        invalid = data.get("invalid", [])
        if not isinstance(invalid, list):
            raise ValueError("'invalid' is not a list")
        return cls(
            step=_int(data, "step"),
            temperature=_number(data, "temperature", 0.0),
            meta_prompt=meta_prompt,
            outputs=tuple(outputs),
            candidates=tuple(Candidate.from_json(c) for c in candidates),
            parse_failures=_int(data, "parse_failures", 0),
            duplicates=_int(data, "duplicates", 0),
            best_score=_optional_number(data, "best_score"),
            step_seconds=_number(data, "step_seconds", 0.0),
            elapsed_s=_number(data, "elapsed_s", 0.0),
            usage=_usage(data.get("usage", {})),
            invalid=tuple(Refused.from_json(r) for r in invalid),
            spec_sha256=sha,
            spec=spec,
        )


@dataclass(frozen=True)
class ProposalCounts:
    """What the optimizer's proposals came to, over the steps after step 0 (whose starting
    solutions are not proposed): each output drawn either failed to parse, repeated a
    solution seen before, or was scored."""

    drawn: int = 0
    """optimizer outputs drawn"""
    parsed: int = 0
    """outputs that held a solution"""
    parse_failures: int = 0
    """outputs that held none"""
    duplicates: int = 0
    """parsed solutions seen before (at an earlier step or in the same one)"""
    scored: int = 0
    """new solutions scored"""
    improvements: int = 0
    """new solutions, scored in full, better than the best starting solution"""
    invalid: int = 0
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

    def to_json(self) -> dict[str, int]:
        counts = asdict(self)
        if not self.invalid:  # only a kind with an objective of the user's has any
            del counts["invalid"]
        return counts

    @classmethod
    def from_json(cls, data: Any) -> ProposalCounts | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError("'proposals' is not an object of counts")
        return cls(**{f.name: _int(data, f.name, 0) for f in fields(cls)})


@dataclass(frozen=True)
class BestSolution:
    solution: Any
    text: str
    score: float
    step: int

    @classmethod
    def from_json(cls, data: Any) -> BestSolution | None:
        if data is None:
            return None
        if not isinstance(data, dict) or "solution" not in data:
            raise ValueError("'best' is not an object with a 'solution'")
        text = str(data.get("text", data["solution"]))
        return cls(data["solution"], text, _number(data, "score"), _int(data, "step"))


_DERIVED = (
    "calls", "cached_calls", "retries", "tokens", "cost_usd", "verdict", "format", "versions"
)  # fmt: skip
"""Keys written for people (totals of ``usage``) and never read back."""


@dataclass(frozen=True)
class RunSummary(Totals):
    """Where a run stands (summary.json): written after every step and at the end."""

    status: Status
    stop_reason: StopReason
    message: str
    steps_completed: int
    best: BestSolution | None
    first_optimal_step: int | None
    solutions_evaluated: int
    usage: Mapping[str, RoleUsage]
    elapsed_s: float
    details: Mapping[str, Any] = field(default_factory=dict)
    """The kind's own fields (``best_test_score``, ``gap_percent``...)."""
    proposals: ProposalCounts | None = None
    """What the optimizer's proposals came to (null in summaries written before opro
    counted them)."""

    @property
    def verdict(self) -> Verdict | None:
        """``proposals.verdict``: whether the run improved on its start, and if not why."""
        return None if self.proposals is None else self.proposals.verdict

    @property
    def total(self) -> RoleUsage:
        return sum(tuple(self.usage.values()), RoleUsage())

    @property
    def best_score(self) -> float | None:
        return None if self.best is None else self.best.score

    def to_json(self) -> dict[str, Any]:
        total = self.total
        best = self.best
        return {
            "status": self.status,
            "stop_reason": self.stop_reason,
            "message": self.message,
            "steps_completed": self.steps_completed,
            "best": None
            if best is None
            else {
                "solution": best.solution,
                "text": best.text,
                "score": best.score,
                "step": best.step,
            },
            "first_optimal_step": self.first_optimal_step,
            "solutions_evaluated": self.solutions_evaluated,
            "usage": {role: u.to_json() for role, u in self.usage.items()},
            "calls": total.calls,
            "cached_calls": total.cached_calls,
            "retries": total.retries,
            "tokens": total.total_tokens,
            "cost_usd": total.cost_usd,
            "elapsed_s": self.elapsed_s,
            **(
                {}
                if self.proposals is None
                else {"proposals": self.proposals.to_json(), "verdict": self.proposals.verdict}
            ),
            **self.details,
        }

    @classmethod
    def from_json(cls, data: Any) -> RunSummary:
        if not isinstance(data, dict):
            raise ValueError("a run summary is not a JSON object")
        status = data.get("status")
        if status not in ("running", "finished", "stopped"):
            raise ValueError(f"'status' is {status!r}")
        first = data.get("first_optimal_step")
        common = {f for f in cls.__dataclass_fields__ if f != "details"}
        return cls(
            status=status,
            stop_reason=stop_reason_of(data),
            message=str(data.get("message") or ""),
            steps_completed=_int(data, "steps_completed", 0),
            best=BestSolution.from_json(data.get("best")),
            first_optimal_step=None if first is None else _int(data, "first_optimal_step"),
            solutions_evaluated=_int(data, "solutions_evaluated", 0),
            usage=_usage(data.get("usage", {})),
            elapsed_s=_number(data, "elapsed_s", 0.0),
            details={k: v for k, v in data.items() if k not in common and k not in _DERIVED},
            proposals=ProposalCounts.from_json(data.get("proposals")),
        )
