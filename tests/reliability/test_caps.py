"""Every cap holds in every command that calls a model, within about one request's worth,
and keeps what was answered (issue #17, item 2).

Reproduced before: ``opro evaluate`` with ``--scorer-price 1000,1000 --budget-usd 0.001``
spent $3.50 on 250 calls and exited 0 (the budget was claimed before the concurrency bound,
so every call of the grid was admitted at once and only completed usage was counted);
``--max-calls 3`` threw the answered results away and advised ``opro resume``. Now a call's
estimate counts against the caps while it is in flight, and a stopped ``evaluate`` or
``complete`` prints what was answered, says why it stopped and exits 5.

The server is the loopback stub (``opro.testing.stub_server``): each answer costs 10 prompt
tokens plus its words, so one request's worth is known.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opro.testing.stub_server import StubServer
from tests.conftest import SHARED_DATA, Ran

BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
PRICE = ["--scorer-price", "1000,1000"]  # $0.001 a token: a call costs ~$0.016


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-caps")
    with StubServer(latency_s=0.05) as stub:
        yield stub


def evaluate(server: StubServer, *extra: str) -> list[str]:
    return ["-q", "evaluate", *BOOLEAN, "--scorer", "openai:stub", "--scorer-base-url", server.url,
            "--instruction", "Think.", "--instruction", "Be careful.", "--split", "all",
            "--scorer-concurrency", "64", "--json", *extra]  # fmt: skip


def one_call(server: StubServer) -> float:
    """The most one of the stub's answers costs at ``PRICE`` (dollars)."""
    words = max(len(_words(body)) for body in server.requests) if server.requests else 8
    return (10 + words) * 1000 / 1e6


def _words(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt") or body["messages"][-1]["content"]
    return f"reply to {len(str(prompt))} chars, t=0.0, seed=None".split()


def stopped_evaluation(result: Ran) -> dict[str, Any]:
    """A stopped evaluate: exit 5, its partial results on stdout, one notice on stderr
    naming the cap and the advice that applies (a higher cap; not ``opro resume``)."""
    assert result.returncode == 5, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "evaluate stopped" in lines[0]
    assert "rerun the same command with a higher cap" in lines[0]
    assert "opro resume" not in lines[0]
    data: dict[str, Any] = json.loads(result.stdout)
    assert "is reached" in data["stopped"]
    return data


def pairs(data: dict[str, Any], field: str) -> int:
    return sum(int(row.get(field, 0)) for row in data["instructions"])


def test_evaluate_budget_usd_stops_within_one_request(
    opro: Callable[..., Ran], server: StubServer
) -> None:
    data = stopped_evaluation(opro(*evaluate(server, *PRICE, "--budget-usd", "0.001")))
    spent = data["usage"]["cost_usd"]
    assert 0 < spent <= 0.001 + one_call(server), spent
    assert len(server.requests) == 1  # not 500: the first answer used the whole budget
    assert pairs(data, "stopped") == 2 * 250 - 1
    assert "$0.001" in data["stopped"]


def test_evaluate_token_cap_stops_within_one_request(
    opro: Callable[..., Ran], server: StubServer
) -> None:
    data = stopped_evaluation(opro(*evaluate(server, "--max-tokens-total", "200")))
    tokens = data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    assert 200 <= tokens <= 200 + 30, tokens  # one request is 10 + ~10 tokens
    asked = pairs(data, "correct") + pairs(data, "wrong") + pairs(data, "empty")
    assert asked == data["usage"]["calls"] == len(server.requests)


def test_evaluate_max_calls_keeps_the_answered_results(
    opro: Callable[..., Ran], server: StubServer
) -> None:
    data = stopped_evaluation(opro(*evaluate(server, "--max-calls", "3", "--examples")))
    assert len(server.requests) == 3
    statuses = [e["status"] for row in data["instructions"] for e in row["examples"]]
    assert len(statuses) == 500
    assert statuses.count("stopped") == 497
    answered = [s for s in statuses if s != "stopped"]
    assert len(answered) == 3
    assert set(answered) <= {"correct", "wrong", "empty"}
    # The accuracy is over the answered examples only, never over the stopped ones.
    for row in data["instructions"]:
        done = row["n"] - row["stopped"] - row["failed"]
        assert row["accuracy"] == (row["correct"] / done if done else None)


def test_evaluate_time_limit_stops_and_a_rerun_with_a_higher_cap_replays(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-caps")
    with StubServer(latency_s=0.2) as slow:
        args = evaluate(slow, "--scorer-concurrency", "8", "--max-examples", "100")
        data = stopped_evaluation(opro(*args, "--time-limit", "1"))
        first, answered = len(slow.requests), data["usage"]["calls"]
        assert 0 < answered <= first < 200  # ~5 rounds of 8 in 1 s
        assert first - answered <= 8  # the calls in flight at the limit are cut off (#26)
        assert "time limit of 1 s" in data["stopped"]
        again = opro(*args, "--time-limit", "60")
        assert again.returncode == 0, again.stderr
        full = json.loads(again.stdout)
        assert "stopped" not in full
        assert full["usage"]["cached_calls"] == answered  # the answered calls cost nothing again
        assert len(slow.requests) == 200 + first - answered


def test_evaluate_table_marks_the_stopped_pairs(
    opro: Callable[..., Ran], server: StubServer
) -> None:
    args = [a for a in evaluate(server, "--max-calls", "2") if a != "--json"]
    result = opro(*args)
    assert result.returncode == 5, result.stderr
    header = result.stdout.splitlines()[1].split()
    assert "stopped" in header
    assert "stopped: the cap of 2 calls is reached" in result.stdout


def test_complete_stops_at_a_cap_and_keeps_the_samples_drawn(
    opro: Callable[..., Ran], server: StubServer
) -> None:
    args = ["-q", "complete", "Say hi.", "--model", "openai:stub", "--base-url", server.url,
            "-n", "12", "--temperature", "1", "--price", "1000,1000"]  # fmt: skip
    result = opro(*args, "--budget-usd", "0.03", "--json")
    assert result.returncode == 5, result.stderr
    data = json.loads(result.stdout)
    assert 1 <= len(data["samples"]) < 12
    assert data["usage"]["cost_usd"] <= 0.03 + one_call(server)
    assert data["stopped"].startswith("the budget of $0.03 is reached")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "complete stopped" in result.stderr
    assert "higher cap" in result.stderr

    drawn = len(data["samples"])  # cached now: free, so a call cap of 4 draws 4 more
    calls = opro(*args, "--max-calls", "4")
    assert calls.returncode == 5
    assert calls.stdout.count("--- sample ") == drawn + 4
    assert calls.stdout.count("(cached)") == drawn


@pytest.mark.parametrize(
    ("cap", "value", "field"),
    [("--budget-usd", "0.2", "cost_usd"), ("--max-tokens-total", "300", "total_tokens")],
)
def test_optimize_caps_hold_within_one_request(
    opro: Callable[..., Ran], server: StubServer, tmp_path: Path, cap: str, value: str, field: str
) -> None:
    out = tmp_path / "run"
    result = opro("-q", "optimize", *BOOLEAN, "--scorer", "openai:stub", "--scorer-base-url",
                  server.url, "--position", "Q_begin", *PRICE,
                  "--optimizer", "fake:tests.doubles:instruction_proposer",
                  "--optimizer-price", "0,0", "--steps", "5", "--max-train", "30",
                  "--max-test", "10", "--scorer-concurrency", "64", "--no-report",
                  "--out", str(out), "--json", cap, value)  # fmt: skip
    assert result.returncode == 0, result.stderr  # a run stopped by a cap: resumable, exit 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert summary["stop_reason"] == "budget"
    used = summary["usage"]["scorer"]
    spent = used["cost_usd"] if field == "cost_usd" else used["prompt_tokens"] + used[
        "completion_tokens"]  # fmt: skip
    worth = one_call(server) if field == "cost_usd" else 30
    assert spent <= float(value) + worth, (spent, value)
