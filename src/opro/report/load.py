"""Reading run directories for a report, as typed records (``opro.problems.records``).

A directory given to ``opro report`` is one run, or a job of repetitions (its own
config.json and summary.json, and one run dir per repetition). Both load as a
``JobRecord``; a single run is a job of one. Unfinished runs load too (no summary.json, or
status ``running``/``stopped``): a report shows what they have. Anything unreadable is a
``ConfigError`` naming the file and the fix. Writing and plotting live elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from opro.errors import ConfigError
from opro.problems.jobs import JobRecord, RunRecord
from opro.problems.registry import kind_of
from opro.runlog import RunDir


def load_jobs(paths: Sequence[Path | str], labels: Sequence[str] | None = None) -> list[JobRecord]:
    """Every directory in ``paths`` as a ``JobRecord``, labelled by ``labels`` or its name."""
    if not paths:
        raise ConfigError("give at least one RUN_DIR to report on")
    folders = [Path(p) for p in paths]
    if labels is not None and len(labels) != len(folders):
        raise ConfigError(
            f"got {len(labels)} `labels` for {len(folders)} run dir(s): give one per run dir, "
            "in the same order, or none"
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


def load_job(path: Path, label: str) -> JobRecord:
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        raise ConfigError(
            f"{path} {what}: give the `out` directory of a run (optimize, solve, linreg, tsp)"
        )
    folder = RunDir.open(path)
    config = folder.config()
    if not config.runs:
        return JobRecord(path, label, config.spec, (load_run(path),))
    runs = tuple(load_run(path / name) for name in config.runs if (path / name).is_dir())
    if not runs:
        raise ConfigError(f"{path} holds no run directory yet: resume it first")
    return JobRecord(path, label, config.spec, runs, folder.job_summary())


def load_run(path: Path) -> RunRecord:
    folder = RunDir.open(path)
    spec = folder.config().spec
    steps = tuple(folder.read_steps())
    direction = kind_of(spec.kind).direction_of(spec)
    return RunRecord(path, spec, direction, steps, folder.summary())
