"""The truth about a run: when its proposals never parse, only repeat what was scored, or
never beat the start, the CLI's summary, the report, the Python result and a notice during
the run say so, with counts and the likely fix (issue 24, point 1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from opro import LinregSpec, NoProgress
from opro.problems.records import ProposalCounts
from opro.runlog import RunDir
from tests.conftest import Ran
from tests.doubles import run_kind, summary_of

GARBAGE = "fake:tests.doubles:garbage"
REPEATER = "fake:tests.doubles:linreg_repeater"
FAR_OFF = "fake:tests.doubles:linreg_far_off"
SHUFFLER = "fake:tests.doubles:tsp_shuffler"


class Heard(NoProgress):
    """A progress that keeps the run's notices."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def notice(self, text: str) -> None:
        self.notices.append(text)


def linreg(out: Path, optimizer: str, steps: int = 3) -> list[str]:
    return ["linreg", "--optimizer", optimizer, "--reps", "1", "--steps", str(steps),
            "--no-cache", "--out", str(out)]  # fmt: skip


def test_a_run_whose_proposals_never_parse_says_so_on_the_cli_and_in_the_report(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    out = tmp_path / "g"
    ran = opro(*linreg(out, GARBAGE))
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "finished (max_steps) after 3 steps: no valid proposals"
    assert lines[1] == (
        "proposals: 24 drawn, 0 parsed (24 parse failures), 0 duplicates, 0 scored, "
        "0 better than the start"
    )
    assert lines[2].startswith("no valid proposals: none of the 24 optimizer outputs held a ")
    fix = "likely fix: a chat (instruction-tuned) or larger optimizer model (--optimizer)"
    assert fix in lines[2]
    assert "(--constrained: embedded models and llama.cpp servers)" in lines[2]
    # During the run: one notice, once (not at each of the 3 steps), naming flags.
    notices = [line for line in ran.stderr.splitlines() if "held a solution" in line]
    assert notices == [
        "opro: step 1: none of the 8 optimizer outputs held a solution (parse failures); if "
        "this goes on, try a chat (instruction-tuned) or larger optimizer model (--optimizer), "
        "or proposals held to the expected form (--constrained: embedded models and llama.cpp "
        "servers)"
    ]
    summary = summary_of(out)
    assert (summary["status"], summary["verdict"]) == ("finished", "no_valid_proposals")
    assert summary["proposals"] == {"drawn": 24, "parsed": 0, "parse_failures": 24,
                                    "duplicates": 0, "scored": 0, "improvements": 0}  # fmt: skip
    report = (out / "report.html").read_text()
    assert '<span class="status verdict">no valid proposals</span>' in report
    assert "none of the 24 optimizer outputs held a solution" in report
    assert "24 drawn, 0 parsed (24 parse failures)" in report
    # --json: the same counts and verdict.
    again = opro(*linreg(tmp_path / "j", GARBAGE), "--json", "--no-report")
    data = json.loads(again.stdout)
    assert (data["verdict"], data["proposals"]["parse_failures"]) == ("no_valid_proposals", 24)


def test_the_python_result_states_the_verdict_with_counts_and_setting_names(
    tmp_path: Path,
) -> None:
    heard = Heard()
    result = run_kind(LinregSpec, tmp_path / "g", optimizer=GARBAGE, reps=1, steps=3,
                      progress=heard)  # fmt: skip
    assert result.status == "finished"
    assert result.verdict == "no_valid_proposals"
    assert result.summary.proposals == ProposalCounts(24, 0, 24, 0, 0, 0)
    assert result.advice is not None
    assert result.advice.startswith("no valid proposals: none of the 24 optimizer outputs")
    assert "(`optimizer`)" in result.advice
    assert "(`constrained`:" in result.advice
    assert len(heard.notices) == 1
    assert "(`constrained`:" in heard.notices[0]
    # Constrained already: the fix no longer suggests it.
    constrained = run_kind(LinregSpec, tmp_path / "c", optimizer=GARBAGE, reps=1, steps=1,
                           constrained=True)  # fmt: skip
    assert constrained.advice is not None
    assert "constrained" not in constrained.advice


def test_repeats_no_improvement_and_improvement_are_told_apart(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    heard = Heard()
    repeats = run_kind(LinregSpec, tmp_path / "r", optimizer=REPEATER, reps=1, steps=2,
                       progress=heard)  # fmt: skip
    assert repeats.verdict == "all_duplicates"
    assert repeats.summary.proposals == ProposalCounts(16, 16, 0, 16, 0, 0)
    assert repeats.advice is not None
    assert "a higher `temperature`" in repeats.advice
    assert heard.notices == [
        "opro: step 1: all 8 parsed proposals repeated solutions already scored; if this goes "
        "on, try a higher `temperature`, more `samples_per_step`, or a larger optimizer model "
        "(`optimizer`)"
    ]
    far = run_kind(LinregSpec, tmp_path / "f", optimizer=FAR_OFF, reps=1, steps=2)
    assert far.verdict == "no_improvement"
    assert far.summary.proposals == ProposalCounts(16, 16, 0, 15, 1, 0)
    assert far.advice is not None
    assert far.advice.startswith("no improvement on the start: 1 new solution scored, none better")
    ran = opro("tsp", "--optimizer", SHUFFLER, "--nodes", "5", "--steps", "50", "--no-cache",
               "--out", str(tmp_path / "t"))  # fmt: skip
    head, counts = ran.stdout.splitlines()[:2]
    assert head.startswith("finished (optimum) after ")
    assert ":" not in head  # a plain success
    assert counts.startswith("proposals: ")
    assert counts.endswith(" 3 better than the start")
    found = RunDir(tmp_path / "t").summary()
    assert found is not None
    assert found.verdict == "improved"
    assert "held a solution" not in ran.stderr
    assert "repeated" not in ran.stderr


def test_a_summary_from_before_the_counts_still_reads_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "old"
    run_kind(LinregSpec, out, optimizer=GARBAGE, reps=1, steps=2)
    data = summary_of(out)
    del data["proposals"], data["verdict"]
    (out / "summary.json").write_text(json.dumps(data))
    summary = RunDir(out).summary()
    assert summary is not None
    assert (summary.proposals, summary.verdict) == (None, None)
    assert "verdict" not in summary.details
    assert "proposals" not in summary.details
    from opro.report import write_report

    report = write_report([out]).read_text()  # counted from the steps instead
    assert "none of the 16 optimizer outputs held a solution" in report


def test_a_job_names_its_runs_that_did_not_improve(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    args = linreg(tmp_path / "job", GARBAGE, steps=1)
    ran = opro(*args[:3], "--reps", "2", *args[5:], "--no-report")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[2] == (
        "2 of 2 runs did not improve on their start: rep-0 (no valid proposals), rep-1 (no "
        "valid proposals); likely fix: a chat (instruction-tuned) or larger optimizer model "
        "(--optimizer), or proposals held to the expected form (--constrained: embedded models "
        "and llama.cpp servers)"
    )
