"""A role over several servers of one model (``--scorer-base-url`` repeated): opro's pool
spreads the requests (least busy first), a server killed mid-evaluation loses nothing, the
cache does not care which server answered; and how the settings are given and checked."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from opro import api
from opro.cli import build_parser, main
from opro.cli.options import given, spec_from
from opro.errors import FatalLLMError, TransientLLMError
from opro.llm.cache import CallCache
from opro.llm.config import LLMConfig
from opro.llm.pool import COOLDOWN_S
from opro.llm.registry import create_backend
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.registry import parse_spec
from opro.sweep import plan_from_dict
from opro.testing.stub_server import StubServer, plan_from
from opro.types import Request

N = 40
INSTRUCTIONS = ["Answer.", "Think, then answer."]


def dataset(tmp_path: Path) -> str:
    rows = [{"question": f"Item {i}: {i % 3 == 0} and True is", "answer": str(i % 3 == 0)}
            for i in range(N)]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


def task(data: str, config: LLMConfig) -> InstructionsSpec:
    return InstructionsSpec(dataset=data, scorer=config)


def knows(body: dict[str, Any]) -> str:
    """A scorer that answers every question right: a wrong mark can only come from opro."""
    item = int(re.findall(r"Item (\d+):", body["prompt"])[-1])
    return f" The answer is {item % 3 == 0}."


def servers(n: int, latency_s: float = 0.05) -> list[StubServer]:
    return [StubServer(latency_s=latency_s, reply=knows).start() for _ in range(n)]


def scorer(urls: list[str], **fields: Any) -> LLMConfig:
    return LLMConfig(spec="openai:stub", base_url=tuple(urls), api="completion", **fields)


def test_a_server_killed_mid_evaluation_loses_nothing_and_the_load_is_spread(
    tmp_path: Path,
) -> None:
    pool = servers(3)
    try:
        victim = pool[0]
        killer = threading.Thread(target=lambda: kill_after(victim, 8), daemon=True)
        killer.start()
        # No retry in the stack: a request every server refused would be a failed example.
        config = scorer([s.url for s in pool], concurrency=6, max_retries=0)
        result = api.evaluate(task(dataset(tmp_path), config), INSTRUCTIONS, split="all")
        killer.join(5)
    finally:
        for server in pool:
            server.stop()
    assert not victim_alive(victim)
    for scored in result.results:
        assert (scored.n, scored.count("correct"), scored.count("failed")) == (N, N, 0)
    assert (result.usage.calls, result.usage.failures) == (2 * N, 0)  # each pair sent once
    load = [len(s.requests) for s in pool]
    assert 8 <= load[0] < N  # it served until it died
    assert min(load[1:]) >= 2 * N // 4  # the survivors shared the rest
    assert sum(load) >= 2 * N  # what died in flight was sent again elsewhere


def kill_after(server: StubServer, requests: int) -> None:
    while len(server.requests) < requests:
        time.sleep(0.005)
    server.stop()


def victim_alive(server: StubServer) -> bool:
    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_cache_does_not_care_which_server_answered(tmp_path: Path) -> None:
    pool = servers(3, latency_s=0.0)
    cache = CallCache(tmp_path / "calls.sqlite")
    data = dataset(tmp_path)
    try:
        first = api.evaluate(
            task(data, scorer([pool[0].url, pool[1].url])), INSTRUCTIONS, split="all", cache=cache
        )
        again = api.evaluate(
            task(data, scorer([pool[2].url, pool[0].url])), INSTRUCTIONS, split="all", cache=cache
        )
    finally:
        for server in pool:
            server.stop()
    assert first.usage.calls == 2 * N
    assert (again.usage.calls, again.usage.cached_calls) == (0, 2 * N)
    assert len(pool[2].requests) == 0
    a = create_backend("openai:stub", scorer(["http://a/v1", "http://b/v1"]).backend_options())
    b = create_backend("openai:stub", scorer(["http://c/v1", "http://a/v1"]).backend_options())
    assert a.identity() == b.identity()


def test_no_server_reachable_is_one_fatal_line(capsys: pytest.CaptureFixture[str]) -> None:
    urls = ["http://127.0.0.1:9/v1", "http://127.0.0.1:11/v1"]
    with pytest.raises(FatalLLMError, match=r"cannot connect to any of http://127\.0\.0\.1:9/v1"):
        api.complete(scorer(urls, max_retries=0), "hi")
    args = ["complete", "hi", "--model", "openai:stub", "--no-cache"]
    assert main([*args, "--base-url", urls[0], "--base-url", urls[1]]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("opro: error: cannot connect to any of")


def test_several_base_urls_from_a_repeated_flag_or_a_list() -> None:
    base = ["optimize", "--dataset", "bbh:navigate", "--scorer", "openai:m"]
    args = build_parser().parse_args([*base, "--scorer-base-url", "http://a/v1/"])
    assert (
        spec_from(InstructionsSpec, given(args, InstructionsSpec)).scorer.base_url == "http://a/v1"
    )
    flags = [*base, "--scorer-base-url", "http://a/v1", "--scorer-base-url", "http://b/v1"]
    args = build_parser().parse_args(flags)
    spec = spec_from(InstructionsSpec, given(args, InstructionsSpec))
    assert spec.scorer.base_url == ("http://a/v1", "http://b/v1")
    assert spec.scorer.stack_options("scorer").concurrency == 2 * 16  # per server
    config = spec.scorer.backend_options()
    assert (config.base_url, config.endpoints) == (None, ("http://a/v1", "http://b/v1"))
    stored = json.loads(json.dumps(spec.model_dump(mode="json")))  # config.json
    assert parse_spec(stored, "config.json") == spec
    plan = plan_from_dict(
        {"command": "optimize", "base": {"dataset": "bbh:navigate", "scorer": "openai:m"},
         "axes": {"scorer-base-url": [["http://a/v1", "http://b/v1"], "http://c/v1"]}}
    )  # fmt: skip
    assert [run.spec.scorer.base_url for run in plan.runs(Path("out"))] == [  # type: ignore[attr-defined]
        ("http://a/v1", "http://b/v1"),
        "http://c/v1",
    ]


@pytest.mark.parametrize(
    ("fields", "fix"),
    [
        ({"spec": "fake:echo", "base_url": ["http://a/v1", "http://b/v1"]}, "litellm: or openai:"),
        ({"spec": "openai:m", "base_url": ["http://a/v1", "http://a/v1/"]}, "is repeated"),
        ({"spec": "openai:m", "base_url": ["http://a/v1", "b:8000"]}, "must start with http"),
    ],
)
def test_bad_base_urls_are_refused_with_the_fix(fields: dict[str, Any], fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        LLMConfig.model_validate(fields)


def test_a_pool_of_openai_servers_needs_no_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool is opro's own (it was LiteLLM's Router, whose CPU capped it at ~25 calls/s)."""
    monkeypatch.setitem(sys.modules, "litellm", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "litellm.router", None)
    pool = create_backend("openai:m", scorer(["http://a/v1", "http://b/v1"]).backend_options())
    assert [m.base_url for m in pool.members] == ["http://a/v1", "http://b/v1"]  # type: ignore[attr-defined]


def _pool(urls: list[str]) -> Any:
    return create_backend("openai:stub", scorer(urls).backend_options())


def test_the_least_busy_server_takes_the_next_request() -> None:
    """A slow server keeps its requests in flight, so the fast one takes the rest."""
    slow, fast = StubServer(latency_s=0.6).start(), StubServer(latency_s=0.0).start()
    pool = _pool([slow.url, fast.url])

    async def go() -> None:
        try:
            await asyncio.gather(
                *(pool.complete(Request(prompt=f"q{i}", max_tokens=4)) for i in range(2))
            )  # one each: the first goes to the slow one, the second to the idle fast one
            slow_one = asyncio.ensure_future(pool.complete(Request(prompt="s", max_tokens=4)))
            await asyncio.sleep(0.1)  # the slow server is busy with it now
            for i in range(6):
                await pool.complete(Request(prompt=f"f{i}", max_tokens=4))
            await slow_one
        finally:
            await pool.aclose()

    try:
        asyncio.run(go())
    finally:
        slow.stop()
        fast.stop()
    assert (len(slow.requests), len(fast.requests)) == (2, 7)


def test_a_failing_server_cools_down_and_the_request_goes_elsewhere() -> None:
    failing = StubServer(plan=plan_from(["429"])).start()
    good = StubServer().start()
    pool = _pool([failing.url, good.url])

    async def go() -> list[str]:
        try:
            return [
                (await pool.complete(Request(prompt=f"q{i}", max_tokens=4))).text
                for i in range(4)
            ]
        finally:
            await pool.aclose()

    try:
        texts = asyncio.run(go())
    finally:
        failing.stop()
        good.stop()
    assert len(texts) == 4
    assert len(failing.requests) == 1  # then left out for its cooldown
    assert len(good.requests) == 4  # the refused request was sent again here, at once


def test_a_rejected_request_is_not_sent_to_another_server() -> None:
    """A bad key is bad everywhere: raised at once, the other server never asked."""
    rejecting = StubServer(plan=plan_from(["401"])).start()
    other = StubServer().start()
    pool = _pool([rejecting.url, other.url])

    async def go() -> None:
        try:
            await pool.complete(Request(prompt="q", max_tokens=4))
        finally:
            await pool.aclose()

    try:
        with pytest.raises(FatalLLMError, match="401"):
            asyncio.run(go())
    finally:
        rejecting.stop()
        other.stop()
    assert len(other.requests) == 0


def test_every_server_failing_is_a_transient_error_with_a_wait() -> None:
    servers_ = [StubServer(plan=plan_from(["500"])).start() for _ in range(2)]
    pool = _pool([s.url for s in servers_])

    async def go() -> list[TransientLLMError]:
        errors = []
        try:
            for _ in range(2):
                with pytest.raises(TransientLLMError) as caught:
                    await pool.complete(Request(prompt="q", max_tokens=4))
                errors.append(caught.value)
        finally:
            await pool.aclose()
        return errors

    try:
        first, second = asyncio.run(go())
    finally:
        for s in servers_:
            s.stop()
    assert "every server failed" in str(first)
    assert "cooling down" in str(second)  # no server was asked again during the cooldown
    assert second.retry_after is not None
    assert 0 < second.retry_after <= COOLDOWN_S
    assert [len(s.requests) for s in servers_] == [1, 1]
