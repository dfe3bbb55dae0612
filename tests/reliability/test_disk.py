"""The run dir on a hostile disk: an unwritable --out is refused up front with one line and
nothing written; every write in ``opro.runlog`` is atomic (temp file + ``os.replace``) or an
fsynced append that is cut back when it fails; a full disk (ENOSPC, simulated by making
``os.fsync`` / ``os.write`` / the write probe fail) gives one line naming the problem and
leaves no partial file, and a run stopped by it resumes once there is room again.

A kill mid-append (a truncated last line of steps.jsonl, ignored on read and cut on resume)
is covered by ``tests/test_engine.py::test_truncated_last_line_is_ignored_and_cut`` and the
SIGKILL test beside it; not repeated here.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opro import LinregSpec, RunOptions, api, cli
from opro.errors import ConfigError
from opro.problems.records import StepRecord
from opro.runlog import RunConfig, RunDir, write_json_atomic
from tests.conftest import ROOT, SHARED_DATA, assert_one_line_error, run_cli
from tests.doubles import run_kind

FAKES = {"PYTHONPATH": str(ROOT)}
WALKER = "fake:tests.doubles:linreg_walker"
COMMANDS: dict[str, list[str]] = {
    "linreg": ["linreg", "--optimizer", WALKER, "--reps", "2", "--steps", "1"],
    "tsp": ["tsp", "--nodes", "5", "--optimizer", "fake:tests.doubles:tsp_shuffler"],
    "optimize": [
        "optimize",
        "--dataset",
        "bbh:boolean_expressions",
        "--data-dir",
        str(SHARED_DATA),
        "--scorer",
        "fake:tests.doubles:boolean_scorer",
        "--optimizer",
        "fake:tests.doubles:instruction_proposer",
        "--max-train",
        "5",
    ],
}


def no_space(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- (a) an unwritable --out ------------------------------------------------------------------


def unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    """``opro ARGS`` as ``run_cli`` runs it, but where root honours permission bits: for
    root, under ``setpriv`` without CAP_DAC_OVERRIDE (skips when that cannot be had)."""
    if os.geteuid() != 0:
        return run_cli(*args, env=FAKES)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    drop = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    return subprocess.run(
        [*drop, sys.executable, "-m", "opro.cli", *args],
        capture_output=True,
        text=True,
        env=env | FAKES,
        timeout=60,
    )


def test_a_read_only_parent_is_refused_up_front(tmp_path: Path) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        result = unprivileged(*COMMANDS["linreg"], "--out", str(parent / "run"))
        if "Operation not permitted" in result.stderr and "setpriv" in result.stderr:
            pytest.skip(f"setpriv cannot drop capabilities here: {result.stderr.strip()}")
        assert_one_line_error(result, f"cannot write the run directory {parent / 'run'}")
        assert_one_line_error(result, "Permission denied", "choose another --out")
        assert result.stdout == ""
        assert tree(parent) == []
    finally:
        parent.chmod(0o700)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_inside_a_regular_file_is_refused_up_front(tmp_path: Path, command: str) -> None:
    """Works as root too: no permission bit lets a path run through a file."""
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("keep me\n")
    result = run_cli(*COMMANDS[command], "--out", str(blocker / "run"), env=FAKES)
    assert_one_line_error(
        result, f"cannot write the run directory {blocker / 'run'}", "choose another --out"
    )
    assert result.stdout == ""
    assert blocker.read_text() == "keep me\n"
    assert tree(tmp_path) == ["blocker.txt"]  # not even the call cache: no call was made


def test_out_that_is_a_regular_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("keep me\n")
    result = run_cli(*COMMANDS["linreg"], "--out", str(target), env=FAKES)
    assert_one_line_error(result, f"cannot write the run directory {target}")
    assert target.read_text() == "keep me\n"


# -- (b) atomic writes ----------------------------------------------------------------------


def test_a_failed_rename_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"version": "old"})
    old = target.read_bytes()
    seen: list[Any] = []

    def replace_fails(src: str, dst: object) -> None:
        seen.append(json.loads(Path(src).read_text()))  # the temp file was fully written
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "replace", replace_fails)
    expected = f"cannot write {target} ({os.strerror(errno.EIO)}): choose another `out`"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        write_json_atomic(target, {"version": "new"})
    assert seen == [{"version": "new"}]
    assert target.read_bytes() == old
    assert os.listdir(tmp_path) == ["summary.json"]


def test_a_write_failing_half_way_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"version": "old"})
    old = target.read_bytes()
    with pytest.raises(TypeError):  # json.dump has written "{"version": "new", "x": " by then
        write_json_atomic(target, {"version": "new", "x": object()})
    assert target.read_bytes() == old
    assert os.listdir(tmp_path) == ["summary.json"]


# -- (c) a full disk --------------------------------------------------------------------------


def fail_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "write", lambda fd, data: no_space())


def fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", no_space)


@pytest.mark.parametrize("fail", [fail_lock, fail_fsync], ids=["lock-write", "config-fsync"])
def test_no_space_while_creating_leaves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fail: Callable[[pytest.MonkeyPatch], None],
) -> None:
    existing = tmp_path / "existing"  # the user's own (empty) folder: kept
    existing.mkdir()
    fail(monkeypatch)
    for out in (tmp_path / "new" / "nested" / "run", existing):
        with pytest.raises(ConfigError) as raised:
            RunDir.create(out, RunConfig(LinregSpec()))
        message = str(raised.value)
        assert "\n" not in message
        assert f"cannot write {out}" in message
        assert "no space left on the device: free some space, or choose another `out`" in message
    assert tree(tmp_path) == ["existing"]


def test_no_space_in_a_job_removes_the_runs_already_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """linreg --reps 3: the job's config and rep-0's are written, rep-1's fails."""
    real_fsync = os.fsync
    calls = []

    def third_fails(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            no_space()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", third_fails)
    with pytest.raises(ConfigError, match=r"rep-1/config\.json: no space left"):
        run_kind(LinregSpec, tmp_path / "job", optimizer=WALKER, reps=3, steps=1)
    assert len(calls) == 3
    assert tree(tmp_path) == []


def fail_write_half_way(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))  # a short write lands, then the disk is full
        no_space()
        return 0

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize(
    "fail", [fail_write_half_way, fail_fsync], ids=["half-written-line", "fsync"]
)
def test_no_space_while_appending_a_step_leaves_no_partial_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fail: Callable[[pytest.MonkeyPatch], None],
) -> None:
    run = RunDir.create(tmp_path / "run", RunConfig(LinregSpec()))
    first = StepRecord(0, 0.0, None, (), (), 0, 0, None, 0.0, 0.0)
    run.append_step(first)
    before = (run.path / "steps.jsonl").read_bytes()
    fail(monkeypatch)
    with pytest.raises(ConfigError) as raised:
        run.append_step(StepRecord(1, 1.0, "p", ("x",), (), 1, 0, None, 0.0, 0.0))
    monkeypatch.undo()
    assert str(raised.value) == (
        f"cannot write {run.path / 'steps.jsonl'}: no space left on the device: free some "
        "space, then continue the run with `opro resume`"
    )
    assert (run.path / "steps.jsonl").read_bytes() == before
    assert run.read_steps() == [first]


def test_no_space_mid_run_is_one_line_and_the_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through ``opro.cli.main`` in this process (the fault is a monkeypatch): the disk
    fills while step 2 is appended; freeing it and resuming finishes the run."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    steps_file = out / "steps.jsonl"
    real_write = os.write
    appended = []

    def write(fd: int, data: bytes) -> int:
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(steps_file.resolve()):
            appended.append(bytes(data))
            if len(appended) == 3:
                real_write(fd, bytes(data[:10]))
                no_space()
        return real_write(fd, data)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file a write goes to")
    monkeypatch.setattr(os, "write", write)
    args = ["-q", "linreg", "--optimizer", WALKER, "--reps", "1", "--steps", "4"]  # -q: no progress
    code = cli.main([*args, "--w-true", "40", "--b-true", "40", "--out", str(out), "--no-cache"])
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        f"opro: error: cannot write {steps_file}: no space left on the device: free some "
        "space, then continue the run with `opro resume`"
    ]
    lines = steps_file.read_bytes().split(b"\n")
    assert lines[-1] == b""  # no partial line
    assert [json.loads(x)["step"] for x in lines[:-1]] == [0, 1]

    result = api.resume(out, RunOptions(trust_code=True))
    assert not result.already_finished
    assert result.status == "finished"
    assert [json.loads(x)["step"] for x in steps_file.read_text().splitlines()] == [0, 1, 2, 3, 4]


def test_files_written_by_rename_get_the_mode_open_would_give(tmp_path: Path) -> None:
    """mkstemp makes 0600: config.json and summary.json must be readable by whoever reads
    a run dir on a shared filesystem, as any file under the user's umask."""
    target = tmp_path / "summary.json"
    old = os.umask(0o027)
    try:
        import opro.files

        opro.files._umask.cache_clear()
        write_json_atomic(target, {"a": 1})
    finally:
        os.umask(old)
        opro.files._umask.cache_clear()
    assert target.stat().st_mode & 0o777 == 0o640
