"""One deadline (#26 medium 3): ``--time-limit`` cuts off every request (whatever its own
timeout), every backoff and every Retry-After wait, so that a run or an evaluation ends as a
clean budget stop (the run saved and resumable) within about a second of the limit —
against a server that never answers, with the default request timeout (120 s), and against a
429 asking to wait 60 s. Before, ``--time-limit 8`` ended after 75 s in an LLM error. A
Retry-After too long to wait for is named in the command's one line (#26 low).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from opro.errors import BudgetExceeded, TransientLLMError
from opro.llm.limits import RetryPolicy, call_with_retries
from opro.llm.usage import Budget, Caps
from opro.testing.stub_server import StubServer
from tests.conftest import SHARED_DATA, Ran
from tests.doubles import steps_of, summary_of

Opro = Callable[..., Ran]
DATA = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA), "--no-cache"]
OPTIMIZE = ["optimize", *DATA, "--optimizer", "fake:tests.doubles:instruction_proposer",
            "--steps", "2", "--candidates-per-step", "2", "--max-train", "4", "--max-test", "4",
            "--json"]  # fmt: skip
EVALUATE = ["-q", "evaluate", *DATA, "--split", "train", "--max-examples", "3",
            "--instruction", "Check."]  # fmt: skip


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def scorer(server: StubServer) -> list[str]:
    return ["--scorer", "openai:stub", "--scorer-base-url", server.url]


def timed(opro: Opro, *args: str) -> tuple[Ran, float]:
    started = time.monotonic()
    ran = opro(*args)
    return ran, time.monotonic() - started


def test_a_server_that_never_answers_stops_the_run_at_its_time_limit(
    opro: Opro, tmp_path: Path
) -> None:
    stalled = {"on": True}
    server = StubServer(plan=lambda i: "slow" if stalled["on"] else "ok", slow_s=600)
    with server:
        out = tmp_path / "run"
        ran, took = timed(opro, *OPTIMIZE, *scorer(server), "--out", str(out), "--time-limit", "3")
        assert ran.returncode == 0, ran.stderr  # a budget stop is what was asked
        assert took < 5.0, took  # was: the request's own timeout (120 s), retried 6 times
        summary = json.loads(ran.stdout)
        assert (summary["status"], summary["stop_reason"]) == ("stopped", "budget")
        assert "time limit of 3 s is reached (a request was still unanswered)" in ran.stderr
        assert f"opro resume {out}" in ran.stderr
        assert summary_of(out)["stop_reason"] == "budget"

        stalled["on"] = False  # the server is back: the run resumes and finishes
        resumed = opro("resume", str(out), "--json", "--time-limit", "60")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "finished"
    assert [s["step"] for s in steps_of(out)] == [0, 1, 2]


def test_a_retry_after_past_the_time_limit_is_not_waited_for(opro: Opro, tmp_path: Path) -> None:
    with StubServer(plan=lambda i: "429", retry_after="60") as server:
        out = tmp_path / "run"
        ran, took = timed(opro, *OPTIMIZE, *scorer(server), "--out", str(out), "--time-limit", "3")
        assert ran.returncode == 0, ran.stderr
        assert took < 5.0, took  # was: 187 s, in an LLM error
        summary = json.loads(ran.stdout)
        assert (summary["status"], summary["stop_reason"]) == ("stopped", "budget")
        notice = ran.stderr.strip().splitlines()[-1]
        assert "time limit of 3 s would pass before the next try" in notice
        assert "the server asks to wait 60 s" in notice
        assert f"opro resume {out}" in notice

        evaluated, took = timed(opro, *EVALUATE, *scorer(server), "--time-limit", "3")
    assert took < 5.0, took
    assert evaluated.returncode == BudgetExceeded.exit_code, evaluated.stderr
    lines = evaluated.stderr.strip().splitlines()
    assert len(lines) == 1, evaluated.stderr  # the one line names the wait asked for
    assert lines[0].startswith("opro: evaluate stopped: ")
    assert "the server asks to wait 60 s" in lines[0]


def test_a_retry_after_too_long_to_wait_is_named_in_the_one_line(opro: Opro) -> None:
    with StubServer(plan=lambda i: "429", retry_after="3600") as server:
        ran, took = timed(opro, *EVALUATE, *scorer(server))
    assert took < 5.0, took
    assert ran.returncode != 0
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert "3 example(s) failed after retries" in lines[0]
    assert "the server asks to wait 3600 s" in lines[0]  # was: only in --json --examples


def test_the_deadline_cuts_off_a_try_and_a_backoff() -> None:
    """The retry loop itself: a try past the deadline, and a backoff longer than the time
    left, each end in ``BudgetExceeded`` at once (never a sleep past the deadline)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def hang() -> str:
        await asyncio.sleep(600)
        return "never"

    async def busy() -> str:
        raise TransientLLMError("HTTP 503")

    async def go(call: Callable[[], Awaitable[str]], limit: float, policy: RetryPolicy) -> float:
        budget = Budget(Caps(time_limit_s=limit))
        started = time.monotonic()
        with pytest.raises(BudgetExceeded, match="time limit"):
            await call_with_retries(call, policy, random.Random(0), sleep=sleep, deadline=budget)
        assert budget.stopped is not None
        assert "time limit" in budget.stopped
        return time.monotonic() - started

    assert asyncio.run(go(hang, 0.3, RetryPolicy())) < 1.0
    assert asyncio.run(go(busy, 0.3, RetryPolicy(base_delay_s=20, max_delay_s=20))) < 0.2
    assert slept == []  # the 10-20 s backoff was never slept
