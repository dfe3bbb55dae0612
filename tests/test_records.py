"""The run dir's records read and write through their types (``opro.record``): what a
hand-edited file gets wrong is a one-line error naming the field, a kind's own summary fields
round-trip whatever their names, a NaN is never written as null, and a refused writer names
a live lock holder, never a stale or odd one."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from opro import LinregSpec
from opro.errors import ConfigError
from opro.files import json_bytes, lock_holder
from opro.problems.jobs import JobSummary, MeanStd
from opro.problems.records import Candidate, RunSummary, StepRecord
from opro.runconfig import RunConfig

CONFIG = Path("/run/config.json")


def _summary(**details: object) -> RunSummary:
    return RunSummary("finished", "max_steps", "", 3, None, None, 0, {}, 1.0, details=details)


def test_a_config_read_back_equals_the_one_written() -> None:
    config = RunConfig(LinregSpec())
    assert RunConfig.read(config.to_json(), CONFIG) == config
    assert RunConfig.from_json(config.to_json()) == config  # the same reader


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"versions": {"opro": None}}, "'versions.opro' is None"),
        ({"cache": {"path": 5}}, "'cache.path' is 5"),
        ({"format": None}, "run format None"),
        ({"runs": ["../elsewhere"]}, "not the name of a folder inside the job"),
        ({"caps": {"max_calls": 0}}, "caps: 'max_calls' is 0"),
    ],
)
def test_a_broken_config_is_one_line_naming_what_is_wrong(change: dict, says: str) -> None:
    data = RunConfig(LinregSpec()).to_json() | change
    if change.get("format", 2) is None:
        del data["format"]  # a config.json that names no format is not read as one
    with pytest.raises(ConfigError) as error:
        RunConfig.read(data, CONFIG)
    assert says in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ({"step": True, "candidates": []}, "'step' is True"),
        ({"step": 1.0, "candidates": []}, "'step' is 1.0"),
        ({"step": 1, "candidates": [{"solution": 1, "score": math.nan}]}, "'candidates.0.score'"),
        ({"step": 1, "candidates": [{"solution": 1, "score": 1, "optimal": "yes"}]}, "optimal"),
        ({"step": 1, "candidates": [], "note": 1}, "'note'"),
        ({"step": 1, "candidates": ["x" * 10_000]}, "'candidates.0' is 'xxxxxxx"),
    ],
)
def test_a_broken_step_line_names_its_field(line: dict, says: str) -> None:
    with pytest.raises(ValueError, match=r"^'") as error:  # it names the field first
        StepRecord.from_json(line)
    assert says in str(error.value)
    assert "\n" not in str(error.value)
    assert len(str(error.value)) < 200  # a long value is cut, not shown whole


def test_a_kinds_summary_field_of_any_name_round_trips() -> None:
    summary = _summary(details="a kind's own", gap_percent=1.5, n=3)
    data = summary.to_json()
    assert (data["details"], data["gap_percent"], data["n"]) == ("a kind's own", 1.5, 3)
    assert RunSummary.from_json(data) == summary


def test_a_job_of_a_kind_whose_numbers_are_named_like_its_fields() -> None:
    """A kind's number called ``run``, ``status``, ``kind`` or ``reps`` (a plugin's) made
    ``JobSummary.of`` raise a TypeError (an internal error); the records' own fields win,
    the kind's other numbers are averaged, and the summary reads back."""
    runs = [_summary(run=1, status=2, kind=3, reps=4, hits=h) for h in (2, 4)]
    job = JobSummary.of(["rep-0", "rep-1"], [*runs])
    assert (job.kind, job.status, job.reps) == ("job", "finished", 2)
    assert job.means["hits"] == MeanStd(mean=3.0, std=1.0, n=2)
    assert set(job.means) == {"best_score", "run", "hits"}  # status, kind, reps: the job's
    rows = [(r.run, r.status, r.model_extra) for r in job.per_rep]
    assert rows == [  # run, status: the repetition's
        ("rep-0", "finished", {"best_score": None, "kind": 3, "reps": 4, "hits": 2}),
        ("rep-1", "finished", {"best_score": None, "kind": 3, "reps": 4, "hits": 4}),
    ]
    assert JobSummary.from_json(job.to_json()) == job


def test_a_nan_is_never_written_as_null() -> None:
    data = _summary(gap_percent=math.nan).to_json()
    assert math.isnan(data["gap_percent"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Out of range float"):  # refused, as it always was
        json_bytes(data)
    step = Candidate(1, "1", 2.0, {"x": math.inf}).to_json()
    assert step["details"] == {"x": math.inf}


@pytest.mark.parametrize("content", ["", "0", "-1", "99999999999999999999", "x", "2147483647"])
def test_a_lock_holder_is_a_live_process_or_another_process(tmp_path: Path, content: str) -> None:
    path = tmp_path / "lock"
    path.write_text(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert lock_holder(fd) == "another process"
    finally:
        os.close(fd)
    path.write_text(str(os.getpid()))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert lock_holder(fd) == str(os.getpid())
    finally:
        os.close(fd)
