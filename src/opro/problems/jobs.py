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
from typing import Any

from opro.history import Direction
from opro.llm.usage import RoleUsage
from opro.problems.records import Candidate, RunSummary, StepRecord, _int
from opro.problems.spec import RunSpec
from opro.types import Status, StopReason, stop_reason_of


@dataclass(frozen=True)
class MeanStd:
    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> MeanStd:
        if not values:
            return cls(None, None, 0)
        spread = statistics.pstdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), spread, len(values))

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n}


@dataclass(frozen=True)
class JobSummary:
    """A job of repetitions (summary.json of its dir): each numeric headline of its runs as
    mean ± sd over the runs that finished, as the paper reports linear regression."""

    status: Status
    stop_reason: StopReason
    message: str
    reps: int
    reps_finished: int
    reps_reaching_optimum: int
    means: Mapping[str, MeanStd]
    per_rep: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, names: Sequence[str], summaries: Sequence[RunSummary | None]) -> JobSummary:
        done = [s for s in summaries if s is not None and s.status == "finished"]
        unfinished = [s for s in summaries if s is None or s.status != "finished"]
        # Why the job ended: its first unfinished run's reason, else its last run's.
        last = next((s for s in unfinished if s is not None), done[-1] if done else None)
        numbers: dict[str, list[float]] = {}
        for s in done:  # every number of theirs, None (e.g. not reached) left out of its mean
            for key, value in {"best_score": s.best_score, **s.details}.items():
                if value is None or (
                    isinstance(value, int | float) and not isinstance(value, bool)
                ):
                    numbers.setdefault(key, [])
                    if value is not None:
                        numbers[key].append(float(value))
        per_rep = tuple(
            {"run": name, "status": "not run" if s is None else s.status}
            | ({} if s is None else {"best_score": s.best_score, **_numeric(s.details)})
            for name, s in zip(names, summaries, strict=True)
        )
        return cls(
            status="finished" if not unfinished else "stopped",
            stop_reason="none" if last is None else last.stop_reason,
            message="" if last is None or not unfinished else last.message,
            reps=len(summaries),
            reps_finished=len(done),
            reps_reaching_optimum=sum(s.first_optimal_step is not None for s in done),
            means={key: MeanStd.of(values) for key, values in numbers.items()},
            per_rep=per_rep,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "job",
            "status": self.status,
            "stop_reason": self.stop_reason,
            "message": self.message,
            "reps": self.reps,
            "reps_finished": self.reps_finished,
            "reps_reaching_optimum": self.reps_reaching_optimum,
            **{key: m.to_json() for key, m in self.means.items()},
            "per_rep": [dict(r) for r in self.per_rep],
        }

    @classmethod
    def from_json(cls, data: Any) -> JobSummary:
        if not isinstance(data, dict) or data.get("status") not in ("finished", "stopped"):
            raise ValueError("a job summary is not an object with a 'status'")
        means = {
            key: MeanStd(value.get("mean"), value.get("std"), int(value.get("n", 0)))
            for key, value in data.items()
            if isinstance(value, dict) and "mean" in value
        }
        per_rep = data.get("per_rep", [])
        if not isinstance(per_rep, list) or not all(isinstance(r, dict) for r in per_rep):
            raise ValueError("'per_rep' is not a list of objects")
        return cls(
            status=data["status"],
            stop_reason=stop_reason_of(data),
            message=str(data.get("message") or ""),
            reps=_int(data, "reps", len(per_rep)),
            reps_finished=_int(data, "reps_finished", 0),
            reps_reaching_optimum=_int(data, "reps_reaching_optimum", 0),
            means=means,
            per_rep=tuple(per_rep),
        )


def _numeric(details: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in details.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


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
