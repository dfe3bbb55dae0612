"""A run's steps are tied to the spec they were scored under (issue #26, high 2).

Reproduced before: a run on bbh:boolean_expressions killed after step 1, the config.json of
a bbh:navigate run copied in, resumed: it finished, and its summary reported navigate with a
best instruction whose accuracy was measured on boolean_expressions. Now every step record
carries the fingerprint of config.json's spec (step 0 the spec itself): a resume or a report
against another spec is refused in one line naming what changed, leaving every file as it
was; what a resume may change (its caps, a base URL's secret) never changes the fingerprint,
and run dirs written before the fingerprint resume as they did.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from opro.fingerprint import fingerprint
from tests.conftest import SHARED_DATA, Ran, assert_one_line_error
from tests.doubles import steps_of, summary_of

WALKER = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1"]
OPTIMIZE = ["optimize", "--data-dir", str(SHARED_DATA), "--scorer",
            "fake:tests.doubles:boolean_scorer", "--optimizer",
            "fake:tests.doubles:instruction_proposer", "--max-train", "20", "--max-test", "5",
            "--steps", "3", "--no-report", "--no-cache"]  # fmt: skip


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def linreg(opro: Callable[..., Ran], out: Path, *extra: str) -> None:
    made = opro("-q", "linreg", *WALKER, "--steps", "6", "--max-calls", "8", "--no-cache",
                "--no-report", "--out", str(out), *extra)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert summary_of(out)["stop_reason"] == "budget"


def test_the_issues_swap_a_navigate_config_on_boolean_steps_is_refused(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    boolean, navigate = tmp_path / "boolean", tmp_path / "navigate"
    for out, task in ((boolean, "boolean_expressions"), (navigate, "navigate")):
        made = opro("-q", *OPTIMIZE, "--dataset", f"bbh:{task}", "--max-calls", "150",
                    "--out", str(out))  # fmt: skip
        assert made.returncode == 0, made.stderr
    assert len(steps_of(boolean)) >= 2
    shutil.copy(navigate / "config.json", boolean / "config.json")
    before = files(boolean)
    untrusted = opro("-q", "resume", str(boolean), "--max-calls", "1000", "--no-report")
    assert_one_line_error(untrusted, "has no signature of yours", "--trust-code")  # copied in
    result = opro("-q", "resume", str(boolean), "--trust-code", "--max-calls", "1000")
    assert_one_line_error(
        result,
        f"{boolean / 'config.json'} is not the config steps.jsonl was scored under",
        "dataset: bbh:navigate, the steps were scored under bbh:boolean_expressions",
        "put back this run's own config.json",
    )
    assert result.returncode == 2
    assert files(boolean) == before  # not even the lock was written
    report = opro("report", str(boolean))
    assert_one_line_error(report, "dataset: bbh:navigate, the steps were scored under")


def test_a_hand_edited_setting_is_named_with_the_others_that_changed(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    linreg(opro, out)
    config = json.loads((out / "config.json").read_text())
    config["spec"]["w_true"] = 20
    config["spec"]["engine"]["top_k"] = 3
    (out / "config.json").write_text(json.dumps(config, indent=2))
    before = files(out)
    result = opro("-q", "resume", str(out), "--trust-code", "--max-calls", "1000")
    assert_one_line_error(
        result, "--top-k: 3, the steps were scored under 20 (also changed: --w-true)"
    )
    assert files(out) == before


def test_every_step_names_its_spec_and_step_0_keeps_it(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    linreg(opro, out)
    spec = json.loads((out / "config.json").read_text())["spec"]
    steps = steps_of(out)
    assert {s["spec_sha256"] for s in steps} == {fingerprint(spec)}
    assert steps[0]["spec"] == spec
    assert all("spec" not in s for s in steps[1:])


def test_raising_a_cap_keeps_the_fingerprint_across_resumes(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    linreg(opro, out)
    for cap in ("16", "1000"):
        again = opro("-q", "resume", str(out), "--max-calls", cap, "--no-report")
        assert again.returncode == 0, again.stderr
    assert json.loads((out / "config.json").read_text())["caps"]["max_calls"] == 1000
    assert summary_of(out)["status"] == "finished"
    assert len({s["spec_sha256"] for s in steps_of(out)}) == 1


def test_a_run_dir_written_before_the_fingerprint_still_resumes(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    linreg(opro, out)
    lines = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    old = [{k: v for k, v in s.items() if k not in ("spec_sha256", "spec")} for s in lines]
    (out / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in old))
    result = opro("-q", "resume", str(out), "--max-calls", "1000", "--no-report")
    assert result.returncode == 0, result.stderr
    steps = steps_of(out)
    assert [s["step"] for s in steps] == list(range(7))
    assert "spec_sha256" not in steps[0]  # the old lines are left as they were
    assert steps[-1]["spec_sha256"] == fingerprint(
        json.loads((out / "config.json").read_text())["spec"]
    )


def test_a_jobs_runs_are_checked_before_any_is_resumed(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    job = tmp_path / "job"
    made = opro("-q", "linreg", "--optimizer", "fake:tests.doubles:linreg_walker", "--reps",
                "2", "--steps", "3", "--max-calls", "8", "--no-cache", "--no-report",
                "--out", str(job))  # fmt: skip
    assert made.returncode == 0, made.stderr
    other = tmp_path / "other"
    made = opro("-q", "linreg", *WALKER, "--steps", "3", "--seed", "1", "--w-true", "30",
                "--no-cache", "--no-report", "--out", str(other))  # fmt: skip
    assert made.returncode == 0, made.stderr
    shutil.copy(other / "steps.jsonl", job / "rep-1" / "steps.jsonl")  # another run's steps
    before = {name: files(job / name) for name in ("rep-0", "rep-1")}
    result = opro("-q", "resume", str(job), "--max-calls", "1000")
    assert_one_line_error(
        result,
        str(job / "rep-1" / "config.json"),
        "--w-true: 15, the steps were scored under 30",
    )
    assert {name: files(job / name) for name in ("rep-0", "rep-1")} == before


def test_a_job_naming_a_run_dir_outside_it_is_refused(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    job = tmp_path / "job"
    made = opro("-q", "linreg", "--optimizer", "fake:tests.doubles:linreg_walker", "--reps",
                "2", "--steps", "3", "--max-calls", "8", "--no-cache", "--no-report",
                "--out", str(job))  # fmt: skip
    assert made.returncode == 0, made.stderr
    victim = tmp_path / "victim"
    linreg(opro, victim)
    config = json.loads((job / "config.json").read_text())
    config["runs"] = ["rep-0", "../victim"]
    (job / "config.json").write_text(json.dumps(config))
    kept = files(victim)
    result = opro("-q", "resume", str(job), "--trust-code", "--max-calls", "1000")
    assert_one_line_error(result, "'../victim' is not the name of a folder inside the job")
    assert files(victim) == kept
