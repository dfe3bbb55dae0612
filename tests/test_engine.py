"""The OPRO loop on engine doubles: run dirs, stop rules, parse failures, kill and resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opro import api
from opro.config import BudgetConfig, LLMConfig
from opro.errors import ConfigError
from opro.optimizer import EngineConfig
from opro.runlog import RunDir
from tests.conftest import ROOT, assert_one_line_error, run_cli


def steps_of(run: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


def history_of(run: Path) -> list[tuple[int, tuple[int, int], float]]:
    return [
        (s["step"], tuple(c["solution"]), c["score"])
        for s in steps_of(run)
        for c in s["candidates"]
    ]


def test_garbage_optimizer_ends_after_its_steps_with_failures_recorded(tmp_path: Path) -> None:
    summary = api.run_linreg(
        "fake:tests.doubles:garbage", reps=1, out=tmp_path / "g", engine=EngineConfig(steps=4)
    )
    assert summary["status"] == "finished"
    run = tmp_path / "g" / "rep-0"
    records = steps_of(run)
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert all(r["parse_failures"] == 8 and r["candidates"] == [] for r in records[1:])
    assert json.loads((run / "summary.json").read_text())["stop_reason"] == "max_steps"


def test_tsp_garbage_with_an_attempt_cap_never_spins(tmp_path: Path) -> None:
    result = api.run_tsp(
        "fake:tests.doubles:garbage",
        nodes=6,
        out=tmp_path / "t",
        engine=EngineConfig(steps=3, max_attempts_per_step=20),
    )
    assert result.status == "finished"
    records = steps_of(tmp_path / "t")
    assert [len(r["outputs"]) for r in records[1:]] == [20, 20, 20]


def test_run_dir_contents_and_optimum_stop(tmp_path: Path) -> None:
    result = api.run_tsp(
        "fake:tests.doubles:tsp_shuffler",
        nodes=5,
        out=tmp_path / "t",
        engine=EngineConfig(steps=50, max_attempts_per_step=24),
    )
    summary = result.summary
    assert summary["stop_reason"] == "optimum"  # 12 distinct 5-cycles: random search finds it
    assert summary["first_optimal_step"] is not None
    assert summary["gap_percent"] == pytest.approx(0.0, abs=1e-9)
    assert summary["best_length"] == pytest.approx(summary["optimal_length"])
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["optimizer"]["spec"] == "fake:tests.doubles:tsp_shuffler"
    assert config["versions"]["opro"]
    record = steps_of(tmp_path / "t")[1]
    assert {"meta_prompt", "outputs", "candidates", "parse_failures", "usage", "best_score"} <= set(
        record
    )
    assert "<trace>" in record["meta_prompt"]
    seen = [c["text"] for r in steps_of(tmp_path / "t") for c in r["candidates"]]
    assert len(seen) == len(set(seen))


def test_patience_stops_a_stuck_run(tmp_path: Path) -> None:
    summary = api.run_linreg(
        "fake:tests.doubles:garbage",
        reps=1,
        out=tmp_path / "p",
        engine=EngineConfig(steps=100, patience=3),
    )
    assert summary["per_rep"][0]["status"] == "finished"
    assert len(steps_of(tmp_path / "p" / "rep-0")) == 4
    rep = json.loads((tmp_path / "p" / "rep-0" / "summary.json").read_text())
    assert rep["stop_reason"] == "patience"


def test_max_calls_stops_and_resume_with_a_higher_cap_finishes(tmp_path: Path) -> None:
    out = tmp_path / "b"
    engine = EngineConfig(steps=6)
    summary = api.run_linreg(
        "fake:tests.doubles:linreg_walker",
        reps=1,
        out=out,
        engine=engine,
        budget=BudgetConfig(max_calls=20),
    )
    assert summary["status"] == "stopped"
    rep = json.loads((out / "rep-0" / "summary.json").read_text())
    assert rep["stop_reason"] == "budget"
    assert rep["calls"] <= 20
    assert rep["steps_completed"] == 2  # 8 calls per step: the third step would pass 20
    resumed, already = api.resume(out, BudgetConfig(max_calls=100))
    assert not already
    assert resumed["status"] == "finished"
    assert [r["step"] for r in steps_of(out / "rep-0")] == list(range(7))
    again, already = api.resume(out)
    assert already
    assert again["status"] == "finished"


def test_resume_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an opro run directory"):
        api.resume(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": 999}))
    with pytest.raises(ConfigError, match="incompatible"):
        api.resume(tmp_path)


def test_an_existing_run_dir_is_not_overwritten(tmp_path: Path) -> None:
    api.run_linreg(
        "fake:tests.doubles:garbage", reps=1, out=tmp_path / "x", engine=EngineConfig(steps=1)
    )
    with pytest.raises(ConfigError, match="opro resume"):
        api.run_linreg("fake:tests.doubles:garbage", reps=1, out=tmp_path / "x")


def test_truncated_last_line_is_ignored_and_cut(tmp_path: Path) -> None:
    api.run_linreg(
        "fake:tests.doubles:linreg_walker",
        reps=1,
        out=tmp_path / "r",
        engine=EngineConfig(steps=2),
        budget=BudgetConfig(max_calls=8),
    )
    steps_file = tmp_path / "r" / "rep-0" / "steps.jsonl"
    with steps_file.open("a") as f:
        f.write('{"step": 2, "candid')
    assert len(RunDir.open(tmp_path / "r" / "rep-0").read_steps()) == 2
    summary, _ = api.resume(tmp_path / "r", BudgetConfig(max_calls=50))
    assert summary["status"] == "finished"
    assert [r["step"] for r in steps_of(tmp_path / "r" / "rep-0")] == [0, 1, 2]


def _kill_after(command: list[str], steps_file: Path, lines: int, env: dict[str, str]) -> int:
    """Start ``command``, SIGKILL it once ``steps_file`` holds ``lines`` lines (mid-run);
    returns its exit status (-9 when the kill landed, 0 if it finished first)."""
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if steps_file.exists() and steps_file.read_bytes().count(b"\n") >= lines:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    return proc.wait(60)


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    seed = random.randrange(10**6)
    print(f"kill-moment seed: {seed}")
    rng = random.Random(seed)
    args = [
        "linreg",
        "--optimizer",
        "fake:tests.doubles:linreg_walker",
        "--reps",
        "1",
        "--steps",
        "25",
        "--w-true",
        "40",
        "--b-true",
        "40",
    ]
    reference = run_cli(*args, "--out", str(tmp_path / "ref"), "--no-cache", timeout=120)
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    steps_file = out / "rep-0" / "steps.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = [sys.executable, "-m", "opro.cli", *args, "--out", str(out), "--no-cache"]
    resume = [sys.executable, "-m", "opro.cli", "resume", str(out)]
    kill_points = sorted(rng.sample(range(1, 25), 5))  # after this many complete steps
    statuses = [
        _kill_after(start if i == 0 else resume, steps_file, k, env)
        for i, k in enumerate(kill_points)
    ]
    assert statuses == [-signal.SIGKILL] * 5, f"seed {seed}: kills at {kill_points}: {statuses}"
    final = run_cli("resume", str(out), env={"PYTHONPATH": str(ROOT)}, timeout=120)
    assert final.returncode == 0, final.stderr
    steps = [r["step"] for r in steps_of(out / "rep-0")]
    assert steps == list(range(26)), f"seed {seed}: steps {steps}"
    assert history_of(out / "rep-0") == history_of(tmp_path / "ref" / "rep-0"), f"seed {seed}"


def test_cli_engine_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("linreg", "--steps", "0", "--out", str(tmp_path / "a")), "--steps"
    )
    assert_one_line_error(run_cli("linreg", "--samples-per-step", "-1"), "--samples-per-step")
    assert_one_line_error(run_cli("resume", str(tmp_path)), "not an opro run directory")
    bad = tmp_path / "bad.json"
    for content, needle in [
        ('{"points": [[0, 0], [1, 1], [0, 0]]}', "duplicate point"),
        ('{"points": [[0, 0], [1, "a"], [2, 2]]}', "not a pair of numbers"),
        ('{"points": [[0, 0], [1, 1]]}', "at least 3 points"),
        ("{not json", "not valid JSON"),
        ('{"pts": []}', '{"points"'),
    ]:
        bad.write_text(content)
        assert_one_line_error(
            run_cli("tsp", "--instance", str(bad), "--optimizer", "fake:echo"), needle
        )
        assert not (tmp_path / "runs").exists()


def test_tsp_baselines_json(tmp_path: Path) -> None:
    instance = tmp_path / "i.json"
    instance.write_text(json.dumps({"points": [[0, 0], [10, 0], [10, 10], [0, 10], [5, 3]]}))
    result = run_cli("tsp", "baselines", "--instance", str(instance), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {
        "optimal_length",
        "optimal_tour",
        "nearest_neighbor_length",
        "farthest_insertion_length",
    } <= set(data)
    assert data["optimal_length"] <= data["nearest_neighbor_length"] + 1e-9
    assert data["optimal_length"] <= data["farthest_insertion_length"] + 1e-9
    assert sorted(data["optimal_tour"]) == [0, 1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["linreg", "tsp"])
def test_two_steps_on_the_embedded_model(tmp_path: Path, problem: str) -> None:
    extra = (
        ["--reps", "1"] if problem == "linreg" else ["--nodes", "6", "--max-attempts-per-step", "8"]
    )
    result = run_cli(
        problem,
        "--optimizer",
        "local:gemma3-270m",
        "--steps",
        "2",
        "--constrained",
        "--max-tokens",
        "40",
        "--out",
        str(tmp_path / "run"),
        *extra,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run" / ("rep-0" if problem == "linreg" else "")
    records = steps_of(run)
    assert [r["step"] for r in records] == [0, 1, 2]
    for record in records[1:]:
        assert len(record["outputs"]) == 8
        assert len(record["candidates"]) + record["parse_failures"] + record["duplicates"] == 8
    summary = json.loads((run / "summary.json").read_text())
    assert summary["usage"]["optimizer"]["calls"] >= 8
    assert summary["status"] == "finished"


def test_llm_config_round_trips_through_the_run_dir(tmp_path: Path) -> None:
    config = LLMConfig(spec="fake:tests.doubles:garbage", concurrency=3, max_retries=2)
    api.run_linreg(config, reps=1, out=tmp_path / "c", engine=EngineConfig(steps=1))
    stored = json.loads((tmp_path / "c" / "rep-0" / "config.json").read_text())["optimizer"]
    assert LLMConfig(**stored) == config


def test_public_python_api_sync_and_async(tmp_path: Path) -> None:
    import asyncio

    import opro

    engine = opro.EngineConfig(steps=2, samples_per_step=4)
    result = opro.run_tsp(
        "fake:tests.doubles:tsp_shuffler", nodes=7, engine=engine, out=tmp_path / "sync"
    )
    assert isinstance(result, opro.RunResult)
    assert result.steps_completed == 2
    again = asyncio.run(
        opro.arun_tsp(
            "fake:tests.doubles:tsp_shuffler", nodes=7, engine=engine, out=tmp_path / "async"
        )
    )
    assert again.best_score == result.best_score  # same seed, same proposals
    summary = asyncio.run(
        opro.arun_linreg("fake:tests.doubles:garbage", reps=2, engine=engine, out=tmp_path / "lr")
    )
    assert summary["reps_finished"] == 2


def test_number_of_starting_solutions_is_configurable(tmp_path: Path) -> None:
    result = api.run_tsp(
        "fake:tests.doubles:garbage",
        nodes=9,
        num_initial=12,
        engine=EngineConfig(steps=1),
        out=tmp_path / "t",
    )
    assert len(steps_of(tmp_path / "t")[0]["candidates"]) == 12
    assert result.summary["solutions_evaluated"] == 12
    assert_one_line_error(
        run_cli("linreg", "--num-initial", "0", "--out", str(tmp_path / "x")), "--num-initial"
    )
