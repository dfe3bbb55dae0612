"""One writer per run dir, and run dirs that were tampered with (issue #17, items 1 and 4).

Reproduced before: two ``opro resume D`` started together both exited 0 with steps.jsonl
holding ``[0, 1, 1, 2, 2, ...]``, and so did two ``opro optimize --out D`` 0.3 s apart; a
refused ``create`` removed the files of the run it was refused for; a stray steps.jsonl in
``--out`` left a config.json behind; ``--out ""`` wrote into the current folder; a corrupt
summary.json made ``resume`` exit 70; a summary forgot the retries and failures of the
sessions before a resume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opro.testing.stub_server import StubServer
from tests.conftest import PYTHONPATH, SHARED_DATA, Ran, assert_one_line_error
from tests.doubles import steps_of, summary_of

WALKER = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1"]
BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
OPTIMIZE = ["optimize", *BOOLEAN, "--scorer", "fake:tests.doubles:boolean_scorer",
            "--optimizer", "fake:tests.doubles:instruction_proposer", "--max-train", "20",
            "--max-test", "5", "--no-report", "--no-cache"]  # fmt: skip


def spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    return subprocess.Popen(
        [sys.executable, "-m", "opro.cli", "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def linreg_stopped_early(opro: Callable[..., Ran], out: Path, steps: int = 40) -> None:
    made = opro("-q", "linreg", *WALKER, "--steps", str(steps), "--max-calls", "8",
                "--no-cache", "--no-report", "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert summary_of(out)["stop_reason"] == "budget"


# -- one writer ----------------------------------------------------------------------------


def test_two_resumes_started_together_one_runs_the_other_is_refused(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    linreg_stopped_early(opro, out)
    procs = [
        spawn("resume", str(out), "--trust-code", "--max-calls", "100000", "--no-report")
        for _ in "ab"
    ]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [(p.returncode, err) for p, _, err in results]
    winner = next(p for p, _, _ in results if p.returncode == 0)
    refused = next(err for p, _, err in results if p.returncode == 2)
    assert refused.strip().splitlines() == [
        f"opro: error: {out} is being written by process {winner.pid}: wait for it to end "
        "(or stop it), then `opro resume` it"
    ]
    assert [s["step"] for s in steps_of(out)] == list(range(41))
    assert summary_of(out)["status"] == "finished"


def test_a_second_optimize_into_the_same_out_is_refused_and_harms_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    first = spawn(*OPTIMIZE, "--steps", "200", "--out", str(out))
    try:
        deadline = time.monotonic() + 60
        while not (out / "config.json").exists():  # the first holds the lock from here on
            assert time.monotonic() < deadline
            assert first.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)
        second = spawn(*OPTIMIZE, "--steps", "3", "--out", str(out))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert err.strip().splitlines() == [
            f"opro: error: {out} is being written by process {first.pid}: wait for it to end "
            "(or stop it), then `opro resume` it"
        ]
        assert (out / "config.json").exists()  # the refused one removed nothing of the first
        assert json.loads((out / "config.json").read_text())["spec"]["engine"]["steps"] == 200
    finally:
        first.terminate()
        first.communicate(timeout=60)
    steps = [s["step"] for s in steps_of(out)] if (out / "steps.jsonl").exists() else []
    assert steps == list(range(len(steps)))  # one writer: no step twice


def test_the_lock_of_a_killed_process_never_blocks(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    linreg_stopped_early(opro, out, steps=3)
    (out / ".lock").write_text("999999")  # a holder that died: the file is there, no lock
    result = opro("-q", "resume", str(out), "--trust-code", "--max-calls", "1000", "--no-report")
    assert result.returncode == 0, result.stderr
    assert summary_of(out)["status"] == "finished"


# -- what --out may hold -------------------------------------------------------------------


@pytest.mark.parametrize("stray", ["steps.jsonl", "summary.json"])
def test_an_out_holding_a_runs_remains_is_refused_untouched(
    opro: Callable[..., Ran], tmp_path: Path, stray: str
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / stray).write_text('{"step": 0}\n')
    result = opro("linreg", *WALKER, "--steps", "2", "--out", str(out))
    assert_one_line_error(result, f"holds {stray} but no config.json", "choose another --out")
    assert sorted(p.name for p in out.iterdir()) == [stray]


def test_an_empty_out_is_refused(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["linreg", *WALKER], ["sweep", "x.toml"], ["report", "r"]):
        result = opro(*command, "--out", "")
        assert_one_line_error(result, "--out", "an empty path")
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"] or not list(tmp_path.iterdir())


# -- hand-edited run dirs ------------------------------------------------------------------


def edit_steps(run: Path, edit: Callable[[list[str]], list[str]]) -> None:
    path = run / "steps.jsonl"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")


def with_step_99(lines: list[str]) -> list[str]:
    return [*lines, json.dumps(json.loads(lines[-1]) | {"step": 99})]


def with_a_solution_of_the_wrong_type(lines: list[str]) -> list[str]:
    last = json.loads(lines[-1])
    last["candidates"][0]["solution"] = "not a pair"
    return [*lines[:-1], json.dumps(last)]


EDITS: dict[str, tuple[Callable[[list[str]], list[str]], str]] = {
    "step-99-appended": (with_step_99, "line 3: step 99 where step 2 was expected"),
    "a-line-duplicated": (lambda ls: [*ls, ls[-1]], "line 3: step 1 where step 2"),
    "lines-reordered": (lambda ls: [ls[1], ls[0], *ls[2:]], "line 1: step 1 where step 0"),
    "a-json-array": (lambda ls: [*ls, "[1, 2]"], "line 3: not a JSON object"),
    "wrong-types": (lambda ls: [*ls, '{"step": 2, "candidates": 7}'], "'candidates' is 7: input"),
    "a-bad-solution": (with_a_solution_of_the_wrong_type, "step 1: candidate 0 is not a"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_a_hand_edited_steps_file_is_one_line_naming_the_file_and_line(
    opro: Callable[..., Ran], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "run"
    linreg_stopped_early(opro, out, steps=10)
    assert len(steps_of(out)) == 2  # 8 calls: step 0 and step 1
    edit, needle = EDITS[name]
    edit_steps(out, edit)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}
    result = opro("resume", str(out), "--trust-code", "--max-calls", "1000")
    assert_one_line_error(result, str(out / "steps.jsonl"), needle)
    assert result.returncode == 2
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}
    assert after == before


def test_a_truncated_last_line_stays_recoverable(opro: Callable[..., Ran], tmp_path: Path) -> None:
    out = tmp_path / "run"
    linreg_stopped_early(opro, out, steps=5)
    path = out / "steps.jsonl"
    path.write_bytes(path.read_bytes()[:-40])  # a kill in the middle of the last write
    result = opro("-q", "resume", str(out), "--trust-code", "--max-calls", "1000", "--no-report")
    assert result.returncode == 0, result.stderr
    assert [s["step"] for s in steps_of(out)] == list(range(6))


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2, 3]", '{"status": "finished", "usage": "lots"}', "\x00\xff", ""],
    ids=["not-json", "an-array", "wrong-types", "binary", "empty"],
)
def test_a_corrupt_summary_is_rebuilt_by_resume(
    opro: Callable[..., Ran], tmp_path: Path, content: str
) -> None:
    out = tmp_path / "run"
    linreg_stopped_early(opro, out, steps=4)
    (out / "summary.json").write_text(content, encoding="latin-1")
    report = opro("report", str(out))
    assert_one_line_error(report, "summary.json", "resume")
    result = opro("-q", "resume", str(out), "--trust-code", "--max-calls", "1000", "--no-report")
    assert result.returncode == 0, result.stderr
    summary = summary_of(out)
    assert (summary["status"], summary["steps_completed"]) == ("finished", 4)


SUMMARY_EDITS = {  # a kind's own fields and its final outcome's (before: exit 70, internal)
    "test_evaluation": ("oops", "'test_evaluation' is 'oops': input should be a valid list"),
    "best_test_score": ("x", "'best_test_score' is 'x': input should be a valid number"),
    "n_train": ([1], "'n_train' is [1]: input should be a valid integer"),
    "unknown": (1, "'unknown' is 1: extra inputs are not permitted"),
}


@pytest.mark.parametrize("field", list(SUMMARY_EDITS))
def test_a_hand_edited_kind_field_of_a_summary_is_one_line_then_rebuilt(
    opro: Callable[..., Ran], tmp_path: Path, field: str
) -> None:
    out = tmp_path / "run"
    made = opro("-q", *OPTIMIZE, "--steps", "1", "--out", str(out))
    assert made.returncode == 0, made.stderr
    value, needle = SUMMARY_EDITS[field]
    (out / "summary.json").write_text(json.dumps(summary_of(out) | {field: value}))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}
    for command in (["report", str(out)], ["export", str(out), "--out", str(tmp_path / "x")]):
        assert_one_line_error(opro(*command), str(out / "summary.json"), needle, "delete it")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"} == before
    assert not (tmp_path / "x").exists()
    result = opro("-q", "resume", str(out), "--trust-code", "--no-report")
    assert result.returncode == 0, result.stderr
    summary = summary_of(out)
    assert summary["status"] == "finished"
    assert isinstance(summary["test_evaluation"], list)
    assert "unknown" not in summary


def test_the_summary_counts_retries_and_failures_of_every_session(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-sessions")
    out = tmp_path / "run"
    outage = range(30, 10_000)  # step 0 is answered, then the server fails

    with StubServer(plan=lambda i: "500" if i in outage else "ok") as server:
        args = ["-q", "optimize", *BOOLEAN, "--scorer", "openai:stub", "--scorer-base-url",
                server.url, "--scorer-max-retries", "2", "--optimizer",
                "fake:tests.doubles:instruction_proposer", "--steps", "2", "--max-train", "10",
                "--max-test", "5", "--no-cache", "--no-report"]  # fmt: skip
        stopped = opro(*args, "--out", str(out))
        assert stopped.returncode == 4, stopped.stderr
        first = summary_of(out)["usage"]["scorer"]
        assert first["failures"] >= 1
        assert first["retries"] >= 2
        server.plan = lambda i: "ok"
        resumed = opro("-q", "resume", str(out), "--trust-code", "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    final = summary_of(out)["usage"]["scorer"]
    assert final["failures"] == first["failures"]  # kept across the resume
    assert final["retries"] == first["retries"]
    assert final["calls"] > first["calls"]
