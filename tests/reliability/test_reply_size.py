"""A reply's size is capped on the wire and decompressed (issue #26, finding 4).

Reproduced before: a 1 MB gzip body that inflated to 1 GB took one call to 2.1 GB of memory,
a 300 MB body without Content-Length to 734 MB, and a valid 50 MB answer was scored and
cached; 1 MB optimizer replies grew steps.jsonl by megabytes a step. Now a reply is counted
as it is read and inflated and dropped past ``$OPRO_MAX_REPLY_MB`` (8 MB by default): a failed
call, retried like a malformed reply, never scored, never cached. An optimizer output is kept
in steps.jsonl up to 64,000 characters, then cut with a mark.
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
from opro.llm.http import max_reply_bytes
from opro.llm.limits import RetryPolicy
from opro.llm.stack import StackOptions, build_llm
from opro.optimizer import MAX_STORED_OUTPUT, stored_output
from opro.testing.stub_server import OVERSIZED, StubServer, plan_from
from opro.types import Request
from tests.conftest import SHARED_DATA, Ran

BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]


@pytest.fixture(autouse=True)
def _small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-reply-size")
    monkeypatch.setenv("OPRO_MAX_REPLY_MB", "0.5")


def rows(cache: Path) -> list[str]:
    if not cache.exists():
        return []
    with sqlite3.connect(cache) as db:
        return [json.loads(v)["text"] for (v,) in db.execute("SELECT value FROM calls")]


def test_the_cap_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max_reply_bytes() == 500_000
    monkeypatch.delenv("OPRO_MAX_REPLY_MB")
    assert max_reply_bytes() == 8_000_000
    monkeypatch.setenv("OPRO_MAX_REPLY_MB", "lots")
    assert max_reply_bytes() == 8_000_000


@pytest.mark.parametrize("fault", OVERSIZED)
def test_an_oversized_reply_is_retried_and_never_cached(fault: str, tmp_path: Path) -> None:
    cache = tmp_path / "calls.sqlite"
    with StubServer(plan=plan_from([fault]), big_bytes=5_000_000) as server:
        llm = build_llm(
            "openai:stub",
            BackendOptions(base_url=server.url),
            StackOptions(retry=RetryPolicy(max_retries=1, base_delay_s=0.01)),
            cache=CallCache(cache),
        )
        completion = asyncio.run(llm.complete(Request("What is 2+2?", 16, 0.0)))
        assert len(server.requests) == 2
    assert completion.text.startswith("reply to ")
    assert rows(cache) == [completion.text]  # only the good answer


@pytest.mark.parametrize("fault", OVERSIZED)
def test_oversized_replies_past_the_retries_fail(fault: str, tmp_path: Path) -> None:
    with StubServer(plan=lambda i: fault, big_bytes=5_000_000) as server:
        llm = build_llm(
            "openai:stub",
            BackendOptions(base_url=server.url),
            StackOptions(role="scorer", retry=RetryPolicy(max_retries=1, base_delay_s=0.01)),
            cache=CallCache(tmp_path / "calls.sqlite"),
        )
        with pytest.raises(RetriesExhausted, match=r"over the 0.5 MB cap"):
            asyncio.run(llm.complete(Request("hi", 8, 0.0)))
    assert rows(tmp_path / "calls.sqlite") == []


def test_a_reply_under_the_cap_is_kept(tmp_path: Path) -> None:
    with StubServer(reply=lambda body: "y" * 300_000) as server:
        llm = build_llm("openai:stub", BackendOptions(base_url=server.url), StackOptions())
        assert asyncio.run(llm.complete(Request("hi", 8, 0.0))).text == "y" * 300_000


def test_evaluate_counts_oversized_answers_as_failed_not_wrong(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    cache = tmp_path / "calls.sqlite"
    with StubServer(plan=plan_from(["gzip_bomb", "huge"]), big_bytes=5_000_000) as server:
        result = opro("-q", "evaluate", *BOOLEAN, "--scorer", "openai:stub",
                      "--scorer-base-url", server.url, "--instruction", "Think.",
                      "--max-examples", "4", "--scorer-max-retries", "0",
                      "--scorer-concurrency", "1", "--cache", str(cache), "--json")  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "internal error" not in result.stderr
    data = json.loads(result.stdout)["instructions"][0]
    assert (data["failed"], data["n"]) == (2, 4)
    assert len(rows(cache)) == 2


def test_a_long_optimizer_output_is_stored_cut_with_a_mark() -> None:
    short = "x" * MAX_STORED_OUTPUT
    assert stored_output(short) == short
    cut = stored_output("y" * (MAX_STORED_OUTPUT + 123))
    assert cut.startswith("y" * MAX_STORED_OUTPUT)
    assert cut.endswith("[opro: output truncated, 123 more characters]")


def test_steps_jsonl_holds_a_long_optimizer_reply_cut(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    long = "Think step by step. " * 10_000  # 200,000 characters, under the 0.5 MB cap
    with StubServer(reply=lambda body: long) as server:
        result = opro("-q", "optimize", *BOOLEAN, "--scorer", "fake:tests.doubles:boolean_scorer",
                      "--optimizer", "openai:stub", "--optimizer-base-url", server.url,
                      "--steps", "1", "--max-train", "3", "--max-test", "2", "--no-cache",
                      "--no-report", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    outputs = [o for s in steps for o in s["outputs"]]
    assert outputs, steps
    for output in outputs:
        assert len(output) < MAX_STORED_OUTPUT + 100
        assert output.endswith("more characters]")
    assert (out / "steps.jsonl").stat().st_size < 2_000_000
