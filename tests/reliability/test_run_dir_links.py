"""Nothing inside a run dir is followed on write or trusted on read (issue #26, high 1).

Reproduced before: ``RunDir.lock`` opened ``DIR/.lock`` with ``O_RDWR|O_CREAT`` (following a
symbolic link), truncated it and wrote its PID — and ``opro resume`` took the lock before the
``--trust-code`` check, so even a refused resume destroyed the file ``.lock`` pointed to;
``opro linreg --out DIR`` did the same to a ``.lock`` planted in a shared folder. A
``steps.jsonl`` link was followed too: the partial-line repair cut the target's last line,
and a dangling link made the append create a file outside the run dir. Now every file of a
run dir is opened ``O_NOFOLLOW`` and must be a regular file: a link, FIFO or device in its
place is refused in one line before anything is written, and its target is never touched.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from opro import LinregSpec
from opro.errors import ConfigError
from opro.problems.records import StepRecord
from opro.runlog import RunConfig, RunDir
from tests.conftest import Ran, assert_one_line_error

WALKER = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1"]
VICTIM = b"the user's own file\nits last line, no newline"
LINK = "is a symbolic link: opro follows no link inside a run dir"


def stopped_run(opro: Callable[..., Ran], out: Path) -> None:
    """A linreg run stopped by its cap after step 1 (steps to go, a summary, a lock)."""
    made = opro("-q", "linreg", *WALKER, "--steps", "5", "--max-calls", "8", "--no-cache",
                "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (out / "report.html").is_file()


def snapshot(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry of ``folder`` (not followed): a link as its target, a file as its bytes."""
    found = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            found[entry.name] = ("link", os.readlink(entry).encode())
        elif entry.is_file():
            found[entry.name] = ("file", entry.read_bytes())
        else:
            found[entry.name] = ("other", b"")
    return found


def plant(out: Path, name: str, target: Path) -> None:
    """``out/name`` replaced by a link to ``target``."""
    (out / name).unlink(missing_ok=True)
    (out / name).symlink_to(target)


def resume(opro: Callable[..., Ran], out: Path) -> Ran:
    return opro("-q", "resume", str(out), "--trust-code", "--max-calls", "1000")


# -- a planted link: refused, its target untouched, the run dir as it was --------------------


@pytest.mark.parametrize(
    "name", [".lock", "steps.jsonl", "summary.json", "config.json", "report.html", ".signature"]
)
def test_resume_refuses_a_planted_link_and_touches_neither_it_nor_its_target(
    opro: Callable[..., Ran], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "run"
    stopped_run(opro, out)
    victim = tmp_path / "victim"
    victim.write_bytes((out / name).read_bytes() if name != ".lock" else VICTIM)
    plant(out, name, victim)
    before, kept = snapshot(out), victim.read_bytes()
    result = resume(opro, out)
    assert_one_line_error(result, str(out / name), LINK, "remove it")
    assert result.returncode == 2
    assert victim.read_bytes() == kept
    assert snapshot(out) == before


@pytest.mark.parametrize("name", ["steps.jsonl", "summary.json", "config.json", "report.html"])
def test_report_refuses_a_planted_link_and_leaves_its_target(
    opro: Callable[..., Ran], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "run"
    stopped_run(opro, out)
    victim = tmp_path / "victim"
    victim.write_bytes((out / name).read_bytes())
    plant(out, name, victim)
    before, kept = snapshot(out), victim.read_bytes()
    result = opro("report", str(out))
    assert_one_line_error(result, str(out / name), LINK)
    assert victim.read_bytes() == kept
    assert snapshot(out) == before


def test_a_report_never_writes_through_a_link_given_as_out(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    stopped_run(opro, out)
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    (tmp_path / "shared.html").symlink_to(victim)
    result = opro("report", str(out), "--out", str(tmp_path / "shared.html"))
    assert_one_line_error(result, str(tmp_path / "shared.html"), "is a symbolic link")
    assert victim.read_bytes() == VICTIM


def test_a_dangling_steps_link_creates_nothing_outside(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    stopped_run(opro, out)
    elsewhere = tmp_path / "elsewhere" / "steps.jsonl"
    elsewhere.parent.mkdir()
    plant(out, "steps.jsonl", elsewhere)  # dangling: the target does not exist
    result = resume(opro, out)
    assert_one_line_error(result, str(out / "steps.jsonl"), LINK)
    assert not elsewhere.exists()


@pytest.mark.parametrize("name", [".lock", "steps.jsonl", "config.json", "summary.json"])
def test_a_new_run_into_an_out_with_a_planted_link_is_refused(
    opro: Callable[..., Ran], tmp_path: Path, name: str
) -> None:
    """``opro linreg --out DIR`` where DIR is a shared folder someone planted a link in."""
    out = tmp_path / "shared"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    plant(out, name, victim)
    result = opro("-q", "linreg", *WALKER, "--steps", "2", "--no-cache", "--out", str(out))
    assert_one_line_error(result, str(out / name), LINK)
    assert victim.read_bytes() == VICTIM
    assert snapshot(out) == {name: ("link", str(victim).encode())}


# -- the library's writes, one by one ----------------------------------------------------------


def new_run(tmp_path: Path) -> RunDir:
    run = RunDir.create(tmp_path / "run", RunConfig(LinregSpec()))
    run.append_step(StepRecord(0, 0.0, None, (), (), 0, 0, None, 0.0, 0.0))
    return run


def test_append_and_repair_never_follow_a_link(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    victim, dangling = tmp_path / "victim", tmp_path / "nowhere.jsonl"
    victim.write_bytes(VICTIM)  # a last line with no newline: what the repair would cut
    step = StepRecord(1, 1.0, "p", ("x",), (), 1, 0, None, 0.0, 0.0)
    for target in (victim, dangling):
        plant(run.path, "steps.jsonl", target)
        with pytest.raises(ConfigError, match=LINK):
            run.truncate_partial()
        with pytest.raises(ConfigError, match=LINK):
            run.append_step(step)
        with pytest.raises(ConfigError, match=LINK):
            run.read_steps()
    assert victim.read_bytes() == VICTIM
    assert not dangling.exists()
    run.release()


def test_a_steps_file_with_another_hard_link_is_not_appended_to(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    other = tmp_path / "other-name"
    os.link(run.path / "steps.jsonl", other)
    kept = other.read_bytes()
    with pytest.raises(ConfigError, match="has another hard link"):
        run.append_step(StepRecord(1, 1.0, "p", ("x",), (), 1, 0, None, 0.0, 0.0))
    assert other.read_bytes() == kept
    run.release()


def test_a_lock_file_with_another_hard_link_is_locked_but_never_truncated(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    """The lock is non-destructive: only a lock file this user owns alone gets a PID."""
    out = tmp_path / "run"
    stopped_run(opro, out)
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    (out / ".lock").unlink()
    os.link(victim, out / ".lock")  # where the kernel allows it (protected_hardlinks)
    result = opro("-q", "resume", str(out), "--max-calls", "1000", "--no-report")
    assert result.returncode == 0, result.stderr
    assert victim.read_bytes() == VICTIM


@pytest.mark.parametrize("name", [".lock", "steps.jsonl", "summary.json"])
def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(
    opro: Callable[..., Ran], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "run"
    stopped_run(opro, out)
    (out / name).unlink()
    os.mkfifo(out / name)
    done: list[Ran] = []
    worker = threading.Thread(target=lambda: done.append(resume(opro, out)), daemon=True)
    worker.start()
    worker.join(60)
    assert done, f"resume blocked on a FIFO {name}"
    assert_one_line_error(done[0], str(out / name), "is not a regular file")
