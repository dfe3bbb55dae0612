"""A malformed 200 reply is a transient failure (issue #17, item 3).

Reproduced before: a 200 with empty ``choices``, invalid JSON, an HTML body or a choice
without ``message`` ended ``opro evaluate`` with ``opro: internal error`` (IndexError,
JSONDecodeError, AttributeError), exit 70, every result lost, and left ``optimize`` with
status "running"; ``content: null`` was scored as an ``empty`` answer and cached, so a
rerun replayed it. Now each is retried like a 500, then ``failed``: never scored, never
cached, never an internal error; a run it stops says so.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from opro.errors import RetriesExhausted
from opro.llm.base import BackendOptions
from opro.llm.cache import CallCache
from opro.llm.limits import RetryPolicy
from opro.llm.stack import StackOptions, build_llm
from opro.llm.usage import Budget
from opro.testing.stub_server import MALFORMED, StubServer, plan_from
from opro.types import Request
from tests.conftest import SHARED_DATA, Ran

BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-malformed")


def rows(cache: Path) -> list[str]:
    if not cache.exists():
        return []
    with sqlite3.connect(cache) as db:
        return [json.loads(v)["text"] for (v,) in db.execute("SELECT value FROM calls")]


@pytest.mark.parametrize("api", ["chat", "completion"])
@pytest.mark.parametrize("fault", MALFORMED)
def test_a_malformed_reply_is_retried_and_never_cached(
    fault: str, api: str, tmp_path: Path
) -> None:
    budget = Budget()
    cache = tmp_path / "calls.sqlite"
    with StubServer(plan=plan_from([fault, fault])) as server:
        llm = build_llm(
            "openai:stub",
            BackendOptions(base_url=server.url, api=api),  # type: ignore[arg-type]
            StackOptions(retry=RetryPolicy(max_retries=2, base_delay_s=0.01)),
            cache=CallCache(cache),
            budget=budget,
        )
        completion = asyncio.run(llm.complete(Request("What is 2+2?", 16, 0.0)))
        assert len(server.requests) == 3
    assert completion.text.startswith("reply to ")
    assert budget.total().retries == 2
    assert rows(cache) == [completion.text]  # only the good answer


@pytest.mark.parametrize("fault", MALFORMED)
def test_malformed_replies_past_the_retries_fail_and_raise_retries_exhausted(
    fault: str, tmp_path: Path
) -> None:
    with StubServer(plan=lambda i: fault) as server:
        llm = build_llm(
            "openai:stub",
            BackendOptions(base_url=server.url),
            StackOptions(role="scorer", retry=RetryPolicy(max_retries=1, base_delay_s=0.01)),
            cache=CallCache(tmp_path / "calls.sqlite"),
        )
        with pytest.raises(RetriesExhausted, match=r"malformed reply.*`scorer_max_retries`"):
            asyncio.run(llm.complete(Request("hi", 8, 0.0)))
    assert rows(tmp_path / "calls.sqlite") == []


def test_evaluate_keeps_going_past_malformed_replies_and_a_rerun_asks_again(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    cache = tmp_path / "calls.sqlite"
    args = ["-q", "evaluate", *BOOLEAN, "--scorer", "openai:stub", "--instruction", "Think.",
            "--max-examples", "10", "--scorer-max-retries", "0", "--cache", str(cache),
            "--json"]  # fmt: skip
    faults = [MALFORMED[i % len(MALFORMED)] for i in range(5)]
    with StubServer(plan=plan_from(faults)) as server:
        first = opro(*args, "--scorer-base-url", server.url, "--scorer-concurrency", "1")
        assert first.returncode == 4, first.stderr
        assert "internal error" not in first.stderr
        assert len(first.stderr.strip().splitlines()) == 1
        [data] = json.loads(first.stdout)["instructions"]
        assert (data["failed"], data["n"]) == (5, 10)
        assert data["accuracy"] is not None  # over the 5 answered
        assert len(rows(cache)) == 5  # the failed five are not cached

        again = opro(*args, "--scorer-base-url", server.url)
    assert again.returncode == 0, again.stderr
    whole = json.loads(again.stdout)
    [data] = whole["instructions"]
    assert (data["failed"], data["empty"]) == (0, 0)
    assert whole["usage"]["cached_calls"] == 5
    assert whole["usage"]["calls"] == 5


def test_a_run_stopped_by_malformed_replies_says_so(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    plan = plan_from(["ok"] * 10)  # step 0's ten answers, then HTML pages
    with StubServer(plan=lambda i: plan(i) if i < 10 else "html") as server:
        result = opro("-q", "optimize", *BOOLEAN, "--scorer", "openai:stub",
                      "--scorer-base-url", server.url, "--scorer-max-retries", "1",
                      "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "3",
                      "--max-train", "10", "--max-test", "5", "--no-cache", "--no-report",
                      "--out", str(out))  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "internal error" not in result.stderr
    assert "malformed reply (not JSON)" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"]) == ("stopped", "llm_error")
    assert summary["steps_completed"] == 0
    assert summary["usage"]["scorer"]["failures"] >= 1
