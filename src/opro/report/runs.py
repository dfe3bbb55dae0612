"""Reading run directories for a report: typed, frozen values, checked on the way in.

A directory given to ``opro report`` is either one run (``opro optimize`` or ``opro tsp``,
or one repetition of ``opro linreg``) or a job of several runs (``opro linreg``: its own
config.json and summary.json, and one run dir per repetition). Both load as a ``Job``; a
single run is a job of one. Unfinished runs load too (no summary.json, or status
``running``/``stopped``): a report shows what they have. Anything unreadable is a
``ConfigError`` naming the file and the fix. Writing and plotting live elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opro.budget import RoleUsage
from opro.errors import ConfigError
from opro.runlog import CONFIG, STEPS, SUMMARY, RunDir

Kind = Literal["instructions", "linreg", "tsp"]
KINDS: tuple[Kind, ...] = ("instructions", "linreg", "tsp")
JOB_KINDS: dict[str, Kind] = {"linreg-reps": "linreg"}
"""Job kind (config.json of a job dir) → the kind of its runs."""


@dataclass(frozen=True)
class Candidate:
    """One scored solution of a step."""

    solution: Any
    text: str
    score: float


@dataclass(frozen=True)
class Step:
    number: int
    candidates: tuple[Candidate, ...]
    best_score: float | None
    """The best score so far, this step included."""
    parse_failures: int
    duplicates: int
    elapsed_s: float
    usage: Mapping[str, RoleUsage]


@dataclass(frozen=True)
class Run:
    """One run directory: its config, its complete steps, and its summary if written."""

    path: Path
    kind: Kind
    config: Mapping[str, Any]
    steps: tuple[Step, ...]
    summary: Mapping[str, Any] | None

    @property
    def status(self) -> str:
        """``finished``, ``stopped``, ``running`` (stored), or ``unfinished`` (no summary)."""
        return str(self.summary.get("status", "unfinished")) if self.summary else "unfinished"

    @property
    def direction(self) -> Literal["max", "min"]:
        return "max" if self.kind == "instructions" else "min"

    def best_so_far(self) -> list[tuple[int, float]]:
        """(step, best score so far) for every step that has one."""
        return [(s.number, s.best_score) for s in self.steps if s.best_score is not None]

    def best(self) -> Candidate | None:
        """The best candidate of the run (the earliest among equals), from its steps."""
        sign = -1.0 if self.direction == "max" else 1.0
        ranked = [
            (sign * c.score, s.number, i, c) for s in self.steps for i, c in enumerate(s.candidates)
        ]
        return min(ranked, key=lambda t: t[:3])[3] if ranked else None

    def usage(self) -> dict[str, RoleUsage]:
        """Usage per role: from summary.json, else from the last step."""
        stored = (self.summary or {}).get("usage")
        if isinstance(stored, dict):
            return {role: _role_usage(u, self.path / SUMMARY) for role, u in stored.items()}
        return dict(self.steps[-1].usage) if self.steps else {}

    @property
    def elapsed_s(self) -> float:
        stored = (self.summary or {}).get("elapsed_s")
        if isinstance(stored, int | float):
            return float(stored)
        return self.steps[-1].elapsed_s if self.steps else 0.0

    @property
    def configured_steps(self) -> int | None:
        engine = self.config.get("engine")
        steps = engine.get("steps") if isinstance(engine, dict) else None
        return steps if isinstance(steps, int) else None


@dataclass(frozen=True)
class Job:
    """What one directory given to the report holds: one run, or a job of repetitions."""

    path: Path
    label: str
    kind: Kind
    config: Mapping[str, Any]
    summary: Mapping[str, Any] | None
    runs: tuple[Run, ...]

    @property
    def status(self) -> str:
        if self.summary:
            return str(self.summary.get("status", "unfinished"))
        return "unfinished"

    @property
    def stop_reason(self) -> str | None:
        reason = (self.summary or {}).get("stop_reason")
        return None if reason is None else str(reason)

    @property
    def message(self) -> str:
        return str((self.summary or {}).get("message") or "")

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


def load_jobs(paths: Sequence[Path | str], labels: Sequence[str] | None = None) -> list[Job]:
    """Every directory in ``paths`` as a ``Job``, labelled by ``labels`` or its name."""
    if not paths:
        raise ConfigError("give at least one RUN_DIR to report on")
    folders = [Path(p) for p in paths]
    if labels is not None and len(labels) != len(folders):
        raise ConfigError(
            f"got {len(labels)} --label for {len(folders)} run dir(s): give one --label per "
            "RUN_DIR, in the same order, or none"
        )
    names = list(labels) if labels is not None else default_labels(folders)
    return [load_job(path, name) for path, name in zip(folders, names, strict=True)]


def default_labels(paths: Sequence[Path]) -> list[str]:
    """Each directory's name, or parent/name where two different directories share a name."""
    resolved = [p.resolve() for p in paths]
    labels = []
    for path, full in zip(paths, resolved, strict=True):
        clash = any(q.name == full.name and q != full for q in resolved)
        labels.append(f"{full.parent.name}/{full.name}" if clash else full.name or str(path))
    return labels


def load_job(path: Path, label: str) -> Job:
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        raise ConfigError(
            f"{path} {what}: give the --out directory of an `opro optimize`, `opro linreg` "
            "or `opro tsp` run"
        )
    config = _config(path)
    summary = _summary(path)
    job_kind = config.get("kind")
    if "runs" in config:
        if job_kind not in JOB_KINDS or not isinstance(config["runs"], list):
            raise ConfigError(f"{path / CONFIG}: unknown job kind {job_kind!r}: rerun it")
        kind = JOB_KINDS[job_kind]
        runs = tuple(
            load_run(path / str(name)) for name in config["runs"] if (path / str(name)).is_dir()
        )
        if not runs:
            raise ConfigError(f"{path} holds no run directory yet: resume it first")
        return Job(path, label, kind, config, summary, runs)
    run = load_run(path, config, summary)
    return Job(path, label, run.kind, config, summary, (run,))


def load_run(
    path: Path,
    config: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Run:
    if config is None:
        config, summary = _config(path), _summary(path)
    kind = config.get("kind")
    if kind not in KINDS:
        raise ConfigError(
            f"{path / CONFIG}: unknown run kind {kind!r} (this opro reports on "
            f"{', '.join(KINDS)}): give a run dir of this version"
        )
    steps = tuple(_steps(path))
    return Run(path, kind, config, steps, summary)


# -- files ------------------------------------------------------------------------------


def _config(path: Path) -> dict[str, Any]:
    return RunDir.open(path).config()  # checks it is a run dir of this format


def _summary(path: Path) -> dict[str, Any] | None:
    try:
        summary = RunDir(path).summary()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path / SUMMARY} is unreadable ({exc}): remove it (the report then shows the "
            "steps alone) or resume the run to write it again"
        ) from None
    if summary is not None and not isinstance(summary, dict):
        raise ConfigError(f"{path / SUMMARY} is not a JSON object: remove it or resume the run")
    return summary


def _steps(path: Path) -> list[Step]:
    where = path / STEPS
    try:
        records = RunDir(path).read_steps()
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}: repair or delete that line (the steps before it are kept), then report again"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {where} ({exc})") from None
    steps = []
    for line, record in enumerate(records, start=1):
        try:
            steps.append(_step(record, where))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigError(
                f"{where}: record {line} is not an opro step record: repair or delete that "
                "line, then report again"
            ) from None
    return steps


def _step(record: dict[str, Any], where: Path) -> Step:
    best = record["best_score"]
    return Step(
        number=int(record["step"]),
        candidates=tuple(
            Candidate(c["solution"], str(c.get("text", c["solution"])), float(c["score"]))
            for c in record["candidates"]
        ),
        best_score=None if best is None else float(best),
        parse_failures=int(record.get("parse_failures", 0)),
        duplicates=int(record.get("duplicates", 0)),
        elapsed_s=float(record.get("elapsed_s", 0.0)),
        usage={role: _role_usage(u, where) for role, u in record.get("usage", {}).items()},
    )


def _role_usage(data: Any, where: Path) -> RoleUsage:
    try:
        return RoleUsage.from_json(dict(data))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: a usage record is malformed: rerun or resume the run"
        ) from None


# -- derived facts ----------------------------------------------------------------------


@dataclass(frozen=True)
class TspFacts:
    """A TSP run's instance, reference tours and best tour (stored values preferred)."""

    points: tuple[tuple[int, int], ...]
    optimal_length: float
    optimal_tour: tuple[int, ...]
    proven_optimal: bool
    nearest_neighbor_length: float
    farthest_insertion_length: float
    best_tour: tuple[int, ...] | None
    best_length: float | None


def tsp_facts(run: Run) -> TspFacts:
    """The optimal tour is solved again (it is not stored); lengths come from the run."""
    from opro.problems import tsp_solvers as ts

    problem = run.config.get("problem") or {}
    try:
        points = tuple((int(x), int(y)) for x, y in problem["points"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{run.path / CONFIG}: the TSP instance is missing: rerun it") from None
    dist = ts.distance_matrix(points)
    exact = ts.solve_exact(dist, time_limit_s=60.0)
    summary = run.summary or {}
    optimal = _number(summary.get("optimal_length"), problem.get("optimal_length"), exact.length)

    def from_gap(key: str, tour: list[int]) -> float:
        gap = summary.get(key)
        if isinstance(gap, int | float):
            return optimal * (1 + gap / 100)
        return ts.tour_length(dist, tour)

    best_tour: tuple[int, ...] | None = None
    best_length: float | None = None
    stored = summary.get("best")
    if isinstance(stored, dict) and isinstance(stored.get("solution"), list):
        best_tour, best_length = tuple(stored["solution"]), float(stored["score"])
    else:
        for step in run.steps:
            for c in step.candidates:
                if best_length is None or c.score < best_length:
                    best_tour, best_length = tuple(c.solution), c.score
    if best_tour is not None and not ts.is_valid_tour(best_tour, len(points)):
        raise ConfigError(f"{run.path}: the best tour is not a tour of the instance: rerun it")
    return TspFacts(
        points,
        optimal,
        exact.tour,
        exact.proven_optimal,
        from_gap("nearest_neighbor_gap_percent", ts.nearest_neighbor(dist)),
        from_gap("farthest_insertion_gap_percent", ts.farthest_insertion(dist)),
        best_tour,
        best_length,
    )


def steps_to_optimum(run: Run) -> int | None:
    """A linear-regression run's first step that proposed (w_true, b_true), if any."""
    stored = (run.summary or {}).get("steps_to_optimum")
    if isinstance(stored, int):
        return stored
    problem = run.config.get("problem") or {}
    target = [problem.get("w_true"), problem.get("b_true")]
    for step in run.steps:
        if any(list(c.solution) == target for c in step.candidates):
            return step.number
    return None


def _number(*values: Any) -> float:
    return next(float(v) for v in values if isinstance(v, int | float))
