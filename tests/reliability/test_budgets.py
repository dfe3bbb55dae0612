"""Budgets stop a run within one step of the cap, with its state saved; raising the cap and
resuming continues where it stopped and ends as an uninterrupted run would.

Caps: calls (``--max-calls``), dollars (``--budget-usd``, at the prices given per role) and
wall-clock time (``--time-limit``, against a server with a fixed latency).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opro.testing.stub_server import StubServer
from tests.conftest import ROOT, SHARED_DATA, run_cli
from tests.doubles import steps_of

ENV = {"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test"}
COMMON = [
    "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
    "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "6",
    "--candidates-per-step", "4", "--max-train", "10", "--max-test", "10", "--no-cache",
    "--optimizer-price", "1,1", "--scorer-price", "1,1", "--json",
]  # fmt: skip


def history(run: Path) -> list[Any]:
    return [(s["step"], s["candidates"]) for s in steps_of(run)]


def step_usage(run: Path, field: str) -> list[float]:
    """Cumulative usage (all roles) after each step."""
    return [sum(float(u[field] or 0) for u in s["usage"].values()) for s in steps_of(run)]


@pytest.mark.parametrize(
    ("flag", "field", "fraction"),
    [("--max-calls", "calls", 0.45), ("--budget-usd", "cost_usd", 0.6)],
)
def test_cap_stops_within_one_step_and_resume_continues(
    tmp_path: Path, flag: str, field: str, fraction: float
) -> None:
    scorer = ["--scorer", "fake:tests.doubles:boolean_scorer"]
    ref = run_cli(*COMMON, *scorer, "--out", str(tmp_path / "ref"), env=ENV)
    assert ref.returncode == 0, ref.stderr
    per_step = step_usage(tmp_path / "ref", field)
    cap = per_step[-1] * fraction
    value = str(int(cap)) if field == "calls" else f"{cap:.6f}"
    out = tmp_path / "run"
    cut = run_cli(*COMMON, *scorer, "--out", str(out), flag, value, env=ENV)
    assert cut.returncode == 0, cut.stderr  # a budget stop is what was asked: exit 0
    summary = json.loads(cut.stdout)
    assert summary["status"] == "stopped"
    assert summary["stop_reason"] == "budget"
    assert f"opro resume {out}" in cut.stderr
    done = len(steps_of(out))
    # Within one step: the steps kept fit under the cap, one more would not have.
    assert per_step[done - 1] <= cap < per_step[done], (per_step, cap, done)
    assert history(out) == history(tmp_path / "ref")[:done]

    higher = per_step[-1] * 10
    raised = run_cli(
        "resume",
        str(out),
        "--json",
        "--trust-code",
        flag,
        str(int(higher) if field == "calls" else higher),
        env=ENV,
    )
    assert raised.returncode == 0, raised.stderr
    assert json.loads(raised.stdout)["status"] == "finished"
    assert history(out) == history(tmp_path / "ref")
    final = json.loads((out / "summary.json").read_text())
    reference = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert final["best_test_score"] == reference["best_test_score"]
    cap_key = {"calls": "max_calls", "cost_usd": "budget_usd"}[field]
    caps = json.loads((out / "config.json").read_text())["caps"]
    assert caps[cap_key] == higher  # kept for later resumes


def test_time_limit_stops_within_one_step_and_resume_continues(tmp_path: Path) -> None:
    with StubServer(latency_s=0.3) as server:
        scorer = ["--scorer", "openai:stub", "--scorer-base-url", server.url, "--position"]
        scorer += ["Q_begin", "--scorer-concurrency", "64"]
        out = tmp_path / "run"
        cut = run_cli(*COMMON, *scorer, "--out", str(out), "--time-limit", "1.5", env=ENV)
        assert cut.returncode == 0, cut.stderr
        summary = json.loads(cut.stdout)
        assert summary["stop_reason"] == "budget"
        steps = steps_of(out)
        assert 1 <= len(steps) < 7
        # Each step takes about one server round trip (0.3 s) per call in sequence: scoring
        # 4 candidates x 10 examples is one round at concurrency 64.
        assert summary["elapsed_s"] <= 1.5 + 1.0
        resumed = run_cli(
            "resume", str(out), "--json", "--trust-code", "--time-limit", "120", env=ENV
        )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "finished"
    assert [s["step"] for s in steps_of(out)] == list(range(7))
