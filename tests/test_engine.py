"""The OPRO loop on engine doubles: run dirs, stop rules, parse failures, kill and resume."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from opro import Caps, LinregSpec, LLMConfig, RunOptions, TspSpec, api
from opro.errors import ConfigError
from opro.runlog import RunDir
from tests.conftest import PYTHONPATH, ROOT, assert_one_line_error, run_cli
from tests.doubles import kill_after_lines, run_kind, steps_of

GARBAGE = "fake:tests.doubles:garbage"
WALKER = "fake:tests.doubles:linreg_walker"
SHUFFLER = "fake:tests.doubles:tsp_shuffler"


def history_of(run: Path) -> list[tuple[int, tuple[int, int], float]]:
    return [
        (s["step"], tuple(c["solution"]), c["score"])
        for s in steps_of(run)
        for c in s["candidates"]
    ]


def test_garbage_optimizer_ends_after_its_steps_with_failures_recorded(tmp_path: Path) -> None:
    result = run_kind(LinregSpec, tmp_path / "g", optimizer=GARBAGE, reps=1, steps=4)
    assert result.status == "finished"
    records = steps_of(tmp_path / "g")
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert all(r["parse_failures"] == 8 and r["candidates"] == [] for r in records[1:])
    assert json.loads((tmp_path / "g" / "summary.json").read_text())["stop_reason"] == "max_steps"


def test_tsp_garbage_with_an_attempt_cap_never_spins(tmp_path: Path) -> None:
    result = run_kind(
        TspSpec, tmp_path / "t", optimizer=GARBAGE, nodes=6, steps=3, max_attempts_per_step=20
    )
    assert result.status == "finished"
    records = steps_of(tmp_path / "t")
    assert [len(r["outputs"]) for r in records[1:]] == [20, 20, 20]


def test_run_dir_contents_and_optimum_stop(tmp_path: Path) -> None:
    result = run_kind(TspSpec, tmp_path / "t", optimizer=SHUFFLER, nodes=5, steps=50)
    summary = result.summary.to_json()
    assert summary["stop_reason"] == "optimum"  # 12 distinct 5-cycles: random search finds it
    assert summary["first_optimal_step"] is not None
    assert summary["gap_percent"] == pytest.approx(0.0, abs=1e-9)
    assert summary["best_length"] == pytest.approx(summary["optimal_length"])
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["spec"]["optimizer"]["spec"] == SHUFFLER
    assert config["spec"]["engine"]["max_attempts_per_step"] == 24  # the TSP's default
    assert config["versions"]["opro"]
    record = steps_of(tmp_path / "t")[1]
    assert {"meta_prompt", "outputs", "candidates", "parse_failures", "usage", "best_score"} <= set(
        record
    )
    assert "<trace>" in record["meta_prompt"]
    seen = [c["text"] for r in steps_of(tmp_path / "t") for c in r["candidates"]]
    assert len(seen) == len(set(seen))


def test_patience_stops_a_stuck_run(tmp_path: Path) -> None:
    result = run_kind(LinregSpec, tmp_path / "p", optimizer=GARBAGE, reps=1, steps=100, patience=3)
    assert result.status == "finished"
    assert len(steps_of(tmp_path / "p")) == 4
    assert result.stop_reason == "patience"


def test_max_calls_stops_and_resume_with_a_higher_cap_finishes(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run_kind(LinregSpec, out, optimizer=WALKER, reps=1, steps=6, caps=Caps(max_calls=20))
    assert result.status == "stopped"
    assert result.stop_reason == "budget"
    rep = json.loads((out / "summary.json").read_text())
    assert rep["calls"] <= 20
    assert rep["steps_completed"] == 2  # 8 calls per step: the third step would pass 20
    resumed = api.resume(out, RunOptions(caps=Caps(max_calls=100), trust_code=True))
    assert not resumed.already_finished
    assert resumed.status == "finished"
    assert [r["step"] for r in steps_of(out)] == list(range(7))
    again = api.resume(out, RunOptions(trust_code=True))
    assert again.already_finished
    assert again.status == "finished"


def test_a_job_of_repetitions_stops_and_resumes_each_run(tmp_path: Path) -> None:
    out = tmp_path / "job"
    result = run_kind(LinregSpec, out, optimizer=WALKER, reps=3, steps=3, caps=Caps(max_calls=20))
    assert result.status == "stopped"  # the first repetition hit its cap
    assert [r.status for r in result.reps] == ["stopped"]
    config = json.loads((out / "config.json").read_text())
    assert config["runs"] == ["rep-0", "rep-1", "rep-2"]
    seeds = [json.loads((out / r / "config.json").read_text())["spec"]["engine"]["seed"]
             for r in config["runs"]]  # fmt: skip
    assert seeds == [0, 1, 2]
    done = api.resume(out, RunOptions(caps=Caps(max_calls=100), trust_code=True))
    assert done.status == "finished"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reps_finished"] == 3
    assert summary["unique_pairs_explored"]["n"] == 3
    assert api.resume(out, RunOptions(trust_code=True)).already_finished


def test_resume_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an opro run directory"):
        api.resume(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": 999}))
    with pytest.raises(ConfigError, match="incompatible"):
        api.resume(tmp_path)


def test_an_existing_run_dir_is_not_overwritten(tmp_path: Path) -> None:
    first = run_kind(LinregSpec, tmp_path / "x", optimizer=GARBAGE, reps=1, steps=1)
    again = run_kind(LinregSpec, tmp_path / "x", optimizer=GARBAGE, reps=1, steps=1)
    assert again.already_finished  # the same spec: that run, as it is
    assert again.summary == first.summary
    with pytest.raises(ConfigError, match=r"another spec \(engine.steps differ\)"):
        run_kind(LinregSpec, tmp_path / "x", optimizer=GARBAGE, reps=1, steps=2)


def test_truncated_last_line_is_ignored_and_cut(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run_kind(LinregSpec, run, optimizer=WALKER, reps=1, steps=2, caps=Caps(max_calls=8))
    with (run / "steps.jsonl").open("a") as f:
        f.write('{"step": 2, "candid')
    assert len(RunDir.open(run).read_steps()) == 2
    result = api.resume(run, RunOptions(caps=Caps(max_calls=50), trust_code=True))
    assert result.status == "finished"
    assert [r["step"] for r in steps_of(run)] == [0, 1, 2]


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    seed = random.randrange(10**6)
    print(f"kill-moment seed: {seed}")
    rng = random.Random(seed)
    args = [
        "linreg",
        "--optimizer",
        WALKER,
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
    steps_file = out / "steps.jsonl"
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    start = [sys.executable, "-m", "opro.cli", *args, "--out", str(out), "--no-cache"]
    resume = [sys.executable, "-m", "opro.cli", "resume", str(out), "--trust-code"]
    kill_points = sorted(rng.sample(range(1, 25), 5))  # after this many complete steps
    statuses = [
        kill_after_lines(start if i == 0 else resume, steps_file, k, env)
        for i, k in enumerate(kill_points)
    ]
    assert statuses == [-signal.SIGKILL] * 5, f"seed {seed}: kills at {kill_points}: {statuses}"
    final = run_cli("resume", str(out), "--trust-code", env={"PYTHONPATH": str(ROOT)}, timeout=120)
    assert final.returncode == 0, final.stderr
    steps = [r["step"] for r in steps_of(out)]
    assert steps == list(range(26)), f"seed {seed}: steps {steps}"
    assert history_of(out) == history_of(tmp_path / "ref"), f"seed {seed}"


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


@pytest.mark.embedded
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
    run = tmp_path / "run"
    records = steps_of(run)
    assert [r["step"] for r in records] == [0, 1, 2]
    for record in records[1:]:
        assert len(record["outputs"]) == 8
        assert len(record["candidates"]) + record["parse_failures"] + record["duplicates"] == 8
    summary = json.loads((run / "summary.json").read_text())
    assert summary["usage"]["optimizer"]["calls"] >= 8
    assert summary["status"] == "finished"
    # The model stopped at the end of its answer (the stop text is not returned), and the
    # answers parsed all the same.
    end = "]" if problem == "linreg" else "</trace>"
    assert not any(end in o for r in records[1:] for o in r["outputs"])
    if problem == "linreg":  # the grammar makes every pair valid; a 270M model's tours rarely are
        assert sum(len(r["candidates"]) for r in records[1:]) > 0
    else:
        assert all(o.startswith("<trace>") for r in records[1:] for o in r["outputs"])


def test_llm_config_round_trips_through_the_run_dir(tmp_path: Path) -> None:
    config = LLMConfig(spec=GARBAGE, concurrency=3, max_retries=2)
    spec = LinregSpec(optimizer=config, reps=1, engine={"steps": 1})
    api.start(spec, RunOptions(out=tmp_path / "c"))
    stored = json.loads((tmp_path / "c" / "config.json").read_text())["spec"]["optimizer"]
    assert LLMConfig(**stored) == config


def test_public_python_api_sync_and_async(tmp_path: Path) -> None:
    import asyncio

    import opro

    spec = opro.TspSpec(optimizer=SHUFFLER, nodes=7, engine={"steps": 2, "samples_per_step": 4})
    result = opro.start(spec, opro.RunOptions(out=tmp_path / "sync"))
    assert isinstance(result, opro.RunResult)
    assert isinstance(result.summary, opro.RunSummary)
    assert result.summary.steps_completed == 2
    again = asyncio.run(opro.astart(spec, opro.RunOptions(out=tmp_path / "async")))
    assert again.summary.best_score == result.summary.best_score  # same seed, same proposals
    jobs = opro.LinregSpec(optimizer=GARBAGE, reps=2, engine={"steps": 2})
    job = asyncio.run(opro.astart(jobs, opro.RunOptions(out=tmp_path / "lr")))
    assert isinstance(job.summary, opro.JobSummary)
    assert job.summary.reps_finished == 2


def test_the_sync_api_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    import asyncio

    import opro

    spec = opro.LinregSpec(optimizer=WALKER, reps=1, engine={"steps": 2})

    async def notebook_cell() -> opro.RunResult:
        return opro.start(spec, opro.RunOptions(out=tmp_path / "nb"))  # a loop is running

    assert asyncio.run(notebook_cell()).status == "finished"


def test_tsp_defaults_are_the_same_from_the_cli_and_from_python(tmp_path: Path) -> None:
    cli = run_cli("tsp", "--optimizer", GARBAGE, "--nodes", "5", "--steps", "1", "--out",
                  str(tmp_path / "cli"), "-q")  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    api.start(TspSpec(optimizer=GARBAGE, nodes=5, engine={"steps": 1}), RunOptions(tmp_path / "py"))
    from_cli = json.loads((tmp_path / "cli" / "config.json").read_text())["spec"]
    from_python = json.loads((tmp_path / "py" / "config.json").read_text())["spec"]
    assert from_cli == from_python
    assert from_cli["engine"]["top_k"] == 10  # the paper's TSP settings, once, in TspEngine
    assert from_cli["engine"]["max_attempts_per_step"] == 24


def test_number_of_starting_solutions_is_configurable(tmp_path: Path) -> None:
    result = run_kind(TspSpec, tmp_path / "t", optimizer=GARBAGE, nodes=9, num_initial=12, steps=1)
    assert len(steps_of(tmp_path / "t")[0]["candidates"]) == 12
    assert result.summary.to_json()["solutions_evaluated"] == 12
    assert_one_line_error(
        run_cli("linreg", "--num-initial", "0", "--out", str(tmp_path / "x")), "--num-initial"
    )
