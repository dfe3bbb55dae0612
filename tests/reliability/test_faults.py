"""Faults are retried, counted, and never scored as wrong answers.

Both roles talk to a local OpenAI-compatible server (``opro.testing.stub_server``) that fails
30 % of requests: 429 with Retry-After, 500, dropped connections, and answers slower than the
client's timeout. The run completes with every example scored, every request sent for the
model configured for its role (no silent model switch), and the retries in the summary. When
failures outlast the retry bound the run stops with its state saved and a clear message, and
``opro resume`` finishes it with the same result as a run that never saw a fault.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from opro.testing.stub_server import FaultPlan, StubServer, random_plan
from tests.conftest import SHARED_DATA, run_cli
from tests.doubles import steps_of, summary_of

pytestmark = pytest.mark.slow


def reply(body: dict[str, Any]) -> str:
    """The optimizer proposes one instruction a sample; the scorer answers from the question."""
    prompt = body.get("prompt") or body["messages"][-1]["content"]
    if "<INS>" in prompt:
        rng = random.Random(f"{body.get('seed')}-{body.get('temperature')}")
        words = rng.sample(["check", "each", "step", "then", "answer", "carefully"], 3)
        return f"<INS>{' '.join(words)}.</INS>"
    question, _, instruction = prompt.partition("\n")  # Q_end: the question, then the instruction
    expression = question.removesuffix(" is").strip()
    try:
        truth = bool(eval(expression, {"__builtins__": {}}))  # True/False/not/and/or only
    except SyntaxError:
        truth = True
    right = random.Random(prompt).random() < 0.4 + 0.05 * len(instruction.split())
    return f"The answer is {truth if right else not truth}."


def optimize(server: StubServer, out: Path, *extra: str) -> Any:
    return run_cli(
        "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
        "--scorer", "openai:scorer-model", "--scorer-base-url", server.url,
        "--optimizer", "openai:optimizer-model", "--optimizer-base-url", server.url,
        "--position", "Q_end", "--steps", "3", "--candidates-per-step", "3",
        "--max-train", "12", "--max-test", "12", "--test-top", "2", "--json",
        "--scorer-timeout", "0.5", "--optimizer-timeout", "0.5", "--no-cache",
        "--out", str(out), *extra,
        env={"OPENAI_API_KEY": "sk-test"}, timeout=600,
    )  # fmt: skip


def outcome(run: Path) -> dict[str, Any]:
    summary = summary_of(run)
    steps = steps_of(run)
    return {
        "candidates": [
            (c["solution"], c["score"], c["details"]["marks"])
            for s in steps
            for c in s["candidates"]
        ],
        "best": (summary["best_instruction"], summary["best_test_score"]),
        "test": [(r["instruction"], r["marks"]) for r in summary["test_evaluation"]],
    }


def server(plan: FaultPlan) -> StubServer:
    return StubServer(plan=plan, reply=reply, retry_after="0.2", slow_s=1.5)


def test_thirty_percent_faults_are_retried_and_the_run_completes(tmp_path: Path) -> None:
    with server(lambda i: "ok") as clean:
        assert optimize(clean, tmp_path / "clean").returncode == 0
    with server(random_plan(0.3, seed=11)) as faulty:
        result = optimize(faulty, tmp_path / "faulty")
        bodies = list(faulty.requests)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert summary["retries"] >= 10
    assert summary["usage"]["scorer"]["retries"] > 0
    assert summary["usage"]["scorer"]["failures"] == 0
    assert {b["model"] for b in bodies} == {"scorer-model", "optimizer-model"}
    assert outcome(tmp_path / "faulty") == outcome(tmp_path / "clean")
    for candidate, _, marks in outcome(tmp_path / "faulty")["candidates"]:
        assert len(marks) == 12
        assert "x" not in marks, candidate


def test_failures_beyond_the_retry_bound_stop_the_run_and_resume_finishes_it(
    tmp_path: Path,
) -> None:
    with server(lambda i: "ok") as clean:
        assert optimize(clean, tmp_path / "clean").returncode == 0
    outage = range(60, 400)  # every request fails for a while, then the server recovers

    def plan(i: int) -> str:
        return "500" if i in outage else "ok"

    out = tmp_path / "run"
    with server(plan) as flaky:
        stopped = optimize(flaky, out, "--scorer-max-retries", "1", "--optimizer-max-retries", "1")
        assert stopped.returncode == 4, stopped.stderr
        assert "opro resume" in stopped.stderr
        assert re.search(r"raise --(scorer|optimizer)-max-retries", stopped.stderr)  # its flag
        summary = json.loads(stopped.stdout)
        assert summary["status"] == "stopped"
        assert summary["stop_reason"] == "llm_error"
        saved = len(steps_of(out))
        assert saved >= 1
        flaky.plan = lambda i: "ok"
        resumed = run_cli(
            "resume",
            str(out),
            "--json",
            "--trust-code",
            env={"OPENAI_API_KEY": "sk-test"},
            timeout=600,
        )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "finished"
    assert outcome(out) == outcome(tmp_path / "clean")
