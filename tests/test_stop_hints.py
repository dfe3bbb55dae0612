"""The command a stopped run's notice prints works as printed (issue #24, point 4).

Reproduced before: after a cap stop the notice said ``opro: run stopped (budget): budget: the
cap of 8 calls is reached; raise the cap to continue — continue with `opro resume DIR```:
"budget:" twice, and the command as printed stopped again at once (its cap not raised); a
run stopped right after step 0 said "after 0 steps" and, for instructions, "start — %"
although step 0 had scored the start. Now the command names each cap that stopped the run
with a concrete, larger value (``--max-calls 24``), ``--trust-code`` only where it is needed,
and the summary says how far the run got.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from opro.cli.hints import resume_command
from tests.conftest import SHARED_DATA, Ran
from tests.doubles import steps_of, summary_of

WALKER = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1"]


def notice(result: Ran) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("opro: run stopped")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def printed_command(line: str) -> list[str]:
    """The command in the notice's backticks, as a shell would split it."""
    found = re.search(r"continue with `([^`]+)`$", line)
    assert found is not None, line
    return shlex.split(found.group(1))


@pytest.mark.parametrize(
    ("cap", "flag", "stopped_by"),
    [
        (["--max-calls", "8"], "--max-calls 24", "the cap of 8 calls is reached"),
        (["--max-tokens-total", "1500"], "--max-tokens-total ", "the cap of 1500 tokens"),
        (["--budget-usd", "0.01", "--optimizer-price", "10,10"], "--budget-usd ",
         "the budget of $0.01 is reached"),
        (["--time-limit", "0.2"], "--time-limit ", "the time limit of 0.2 s is reached"),
    ],
    ids=["calls", "tokens", "usd", "time"],
)  # fmt: skip
def test_a_cap_stops_with_the_command_that_raises_it_and_goes_on(
    opro: Callable[..., Ran], tmp_path: Path, cap: list[str], flag: str, stopped_by: str
) -> None:
    out = tmp_path / "run"
    made = opro("linreg", *WALKER, "--steps", "30", "--no-cache", "--no-report",
                "--out", str(out), *cap)  # fmt: skip
    assert made.returncode == 0, made.stderr
    line = notice(made)
    assert line.startswith(f"opro: run stopped (budget): {stopped_by}"), line
    assert "budget: budget" not in made.stderr
    assert "raise the cap to continue" not in line  # the command says how
    command = printed_command(line)
    assert command[:3] == ["opro", "resume", str(out)]
    assert " ".join(command[3:]).startswith(flag)
    assert "--trust-code" not in command  # this user's own run dir
    raised = float(command[4])
    assert raised > float(cap[1])
    steps = len(steps_of(out))
    again = opro(*command[1:], "--no-report")  # as printed
    assert again.returncode == 0, again.stderr
    assert len(steps_of(out)) > steps  # it went on: the cap did not stop it at once


def test_the_notice_reads_once_for_a_calls_cap(opro: Callable[..., Ran], tmp_path: Path) -> None:
    out = tmp_path / "run"
    made = opro("linreg", *WALKER, "--steps", "30", "--max-calls", "8", "--no-cache",
                "--no-report", "--out", str(out))  # fmt: skip
    assert notice(made) == (
        f"opro: run stopped (budget): the cap of 8 calls is reached — continue with "
        f"`opro resume {out} --max-calls 24`"
    )


def test_a_run_dir_from_elsewhere_is_told_to_add_trust_code(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run dir"  # a space: quoted in the printed command
    made = opro("-q", "linreg", *WALKER, "--steps", "5", "--max-calls", "8", "--no-cache",
                "--no-report", "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    message = summary_of(out)["message"]
    assert resume_command(out, "budget", message) == (f"opro resume '{out}' --max-calls 24")
    monkeypatch.setenv("OPRO_CONFIG_DIR", str(tmp_path / "another-user"))
    assert resume_command(out, "budget", message) == (
        f"opro resume '{out}' --trust-code --max-calls 24"
    )


def test_a_run_stopped_after_step_0_says_so(opro: Callable[..., Ran], tmp_path: Path) -> None:
    out = tmp_path / "run"
    made = opro("-q", "linreg", *WALKER, "--steps", "5", "--max-calls", "1", "--no-cache",
                "--no-report", "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert [s["step"] for s in steps_of(out)] == [0]
    first = made.stdout.splitlines()[0]
    assert first.startswith("stopped (budget) after step 0 (the starting solutions"), first
    assert "after 0 steps" not in made.stdout


def test_an_instruction_run_stopped_after_step_0_shows_its_start(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    made = opro("-q", "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir",
                str(SHARED_DATA), "--scorer", "fake:tests.doubles:boolean_scorer",
                "--optimizer", "fake:tests.doubles:instruction_proposer", "--max-train", "20",
                "--max-test", "5", "--steps", "3", "--max-calls", "21", "--no-cache",
                "--no-report", "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert [s["step"] for s in steps_of(out)] == [0]
    start = steps_of(out)[0]["candidates"][0]["score"]
    assert "after step 0" in made.stdout.splitlines()[0]
    assert "start — %" not in made.stdout
    assert f"(start {start:.1f} % on 20 questions)" in made.stdout
    assert summary_of(out)["initial_train_score"] == start
