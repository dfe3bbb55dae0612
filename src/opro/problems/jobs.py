"""A job of repetitions and run dirs as read back: ``JobSummary`` (summary.json of a job:
each number of its runs as mean ± sd), ``RunRecord`` and ``JobRecord`` (what a directory
holds, typed, for reports, the sweep and the API). Written and read by the same classes as
``opro.problems.records``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opro.history import Direction
from opro.llm.usage import RoleUsage
from opro.problems.records import Candidate, RunSummary, StepRecord
from opro.problems.spec import RunSpec
from opro.record import RECORD, Count, JsonRecord, Number, Real
from opro.types import Status, StopReason, stop_reason_of

JOB_RECORD = RECORD | ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)
"""Models, not dataclasses: a job's means and a repetition's numbers are typed extra keys."""


class MeanStd(BaseModel):
    """A number over a job's finished repetitions."""

    model_config = JOB_RECORD

    mean: Number | None
    """the mean over the finished repetitions that have the number"""
    std: Number | None
    """their population standard deviation"""
    n: Count = 0
    """how many repetitions the mean is over"""

    @classmethod
    def of(cls, values: Sequence[float]) -> MeanStd:
        if not values:
            return cls(mean=None, std=None, n=0)
        spread = statistics.pstdev(values) if len(values) > 1 else 0.0
        return cls(mean=statistics.fmean(values), std=spread, n=len(values))


class PerRep(BaseModel):
    """One repetition of a job, with its numbers (``best_score`` and each numeric field of
    its summary) beside its dir and status."""

    model_config = JOB_RECORD | ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Real | None] = Field(init=False)  # its numbers

    run: str
    """the repetition's dir, under the job's"""
    status: Status | Literal["not run"]
    """its status ('not run': no summary yet)"""


class JobSummary(JsonRecord, BaseModel):
    """A job of repetitions (summary.json of its dir): each numeric headline of its runs as
    mean ± sd over the runs that finished, as the paper reports linear regression; each mean
    sits at the top level, under its number's name."""

    model_config = JOB_RECORD | ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, MeanStd] = Field(init=False)  # the means

    kind: Literal["job"] = "job"
    """always 'job': a job of repetitions, not one run"""
    status: Literal["finished", "stopped"]
    """finished when every repetition finished, else stopped (never running)"""
    stop_reason: StopReason
    """the first unfinished repetition's stop reason, else the last's"""
    message: str
    """that repetition's message when one is unfinished, else empty"""
    reps: Count
    """repetitions (run dirs rep-0, rep-1...)"""
    reps_finished: Count
    """repetitions that finished"""
    reps_reaching_optimum: Count
    """finished repetitions that found a known optimum"""
    per_rep: tuple[PerRep, ...]
    """per repetition, in order: its dir, status and numbers"""

    @property
    def means(self) -> Mapping[str, MeanStd]:
        """Each number of the finished repetitions: its mean and standard deviation."""
        return self.model_extra or {}

    @model_validator(mode="before")
    @classmethod
    def _format_1(cls, data: Any) -> Any:
        """Format 1 named its kind (``linreg-reps``), wrote its versions, means without their
        ``n`` and a repetition not run as null."""
        if not isinstance(data, dict) or data.get("format") != 1:
            return data
        means = {k: {"n": 0, **v} for k, v in data.items() if isinstance(v, dict) and "mean" in v}
        rows = [
            {**row, "status": row.get("status") or "not run"} for row in data.get("per_rep", [])
        ]
        common = {k: v for k, v in data.items() if k in cls.model_fields}
        return common | means | {"kind": "job", "stop_reason": stop_reason_of(data),
                                 "per_rep": rows}  # fmt: skip

    @classmethod
    def of(cls, names: Sequence[str], summaries: Sequence[RunSummary | None]) -> JobSummary:
        done = [s for s in summaries if s is not None and s.status == "finished"]
        unfinished = [s for s in summaries if s is None or s.status != "finished"]
        # Why the job ended: its first unfinished run's reason, else its last run's.
        last = next((s for s in unfinished if s is not None), done[-1] if done else None)
        numbers: dict[str, list[float]] = {}
        for s in done:  # every number of theirs, None (e.g. not reached) left out of its mean
            for key, value in {"best_score": s.best_score, **s.details}.items():
                if value is None or _is_number(value):
                    numbers.setdefault(key, [])
                    if value is not None:
                        numbers[key].append(float(value))
        # A kind's number named like a field of these records (``run``, ``status``) stays in
        # its run's summary only: the records' own fields win.
        per_rep = tuple(
            PerRep.model_validate({"run": name, "status": "not run"})
            if s is None
            else PerRep.model_validate({"best_score": s.best_score} | {k: v for k, v in
                s.details.items() if _is_number(v)} | {"run": name, "status": s.status})
            for name, s in zip(names, summaries, strict=True)
        )  # fmt: skip
        return cls.model_validate(
            {key: MeanStd.of(values) for key, values in numbers.items()}
            | {
                "kind": "job",
                "status": "finished" if not unfinished else "stopped",
                "stop_reason": "none" if last is None else last.stop_reason,
                "message": "" if last is None or not unfinished else last.message,
                "reps": len(summaries),
                "reps_finished": len(done),
                "reps_reaching_optimum": sum(s.first_optimal_step is not None for s in done),
                "per_rep": per_rep,
            }
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunRecord:
    """One run dir as read back: its spec, its complete steps, its summary if written."""

    path: Path
    spec: RunSpec
    direction: Direction
    steps: tuple[StepRecord, ...]
    summary: RunSummary | None

    @property
    def status(self) -> str:
        """``finished``, ``stopped``, ``running`` (stored), or ``unfinished`` (no summary)."""
        return self.summary.status if self.summary else "unfinished"

    @property
    def last_step(self) -> int:
        return self.steps[-1].step if self.steps else 0

    def quality(self, score: float) -> float:
        return score if self.direction == "max" else -score

    def best_so_far(self) -> list[tuple[int, float]]:
        """(step, best score so far) for every step that has one."""
        return [(s.step, s.best_score) for s in self.steps if s.best_score is not None]

    def candidates(self) -> list[tuple[int, Candidate]]:
        """Every scored solution with its step, in the order they were scored."""
        return [(s.step, c) for s in self.steps for c in s.candidates]

    def ranked(self) -> list[tuple[int, Candidate]]:
        """Every scored solution, best first (the earliest among equals); those scored in
        part (racing dropped them) after all others."""
        return sorted(
            self.candidates(),
            key=lambda sc: (sc[1].partial is not None, -self.quality(sc[1].score)),
        )

    def best(self) -> Candidate | None:
        ranked = self.ranked()
        return ranked[0][1] if ranked else None

    def usage(self) -> Mapping[str, RoleUsage]:
        if self.summary is not None:
            return self.summary.usage
        return self.steps[-1].usage if self.steps else {}

    @property
    def elapsed_s(self) -> float:
        if self.summary is not None:
            return self.summary.elapsed_s
        return self.steps[-1].elapsed_s if self.steps else 0.0


@dataclass(frozen=True)
class JobRecord:
    """What one directory holds, as read back: one run, or a job of repetitions."""

    path: Path
    label: str
    spec: RunSpec
    runs: tuple[RunRecord, ...]
    job: JobSummary | None = None
    """The job's own summary (a job of repetitions that has written one)."""

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def status(self) -> str:
        if self.job is not None:
            return self.job.status
        return self.runs[0].status if len(self.runs) == 1 else "unfinished"

    @property
    def stop_reason(self) -> str | None:
        if self.job is not None:
            return self.job.stop_reason
        summary = self.runs[0].summary if len(self.runs) == 1 else None
        return None if summary is None else summary.stop_reason

    @property
    def message(self) -> str:
        if self.job is not None:
            return self.job.message
        summary = self.runs[0].summary if len(self.runs) == 1 else None
        return "" if summary is None else summary.message

    @property
    def elapsed_s(self) -> float:
        return sum(run.elapsed_s for run in self.runs)

    def usage(self) -> dict[str, RoleUsage]:
        """Usage per role, summed over the job's runs."""
        total: dict[str, RoleUsage] = {}
        for run in self.runs:
            for role, u in run.usage().items():
                total[role] = total[role] + u if role in total else u
        return total
