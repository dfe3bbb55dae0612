"""The openai: backend against a local HTTP server that injects 429, 500, drops, slowness, 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from opro.errors import FatalLLMError, RetriesExhausted
from opro.llm.base import BackendOptions
from opro.llm.http import env_proxy
from opro.llm.limits import RetryPolicy
from opro.llm.openai import OpenAIBackend
from opro.llm.stack import ManagedLLM, StackOptions, build_llm
from opro.llm.usage import Budget
from opro.testing.stub_server import StubServer, plan_from, stub_process
from opro.types import Request
from tests.conftest import SENTINEL_KEY


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    return SENTINEL_KEY


def stack(
    server: StubServer, *, api: str = "chat", timeout: float = 5.0, retries: int = 4
) -> ManagedLLM:
    return build_llm(
        "openai:stub-model",
        BackendOptions(base_url=server.url, api=api, timeout_s=timeout),  # type: ignore[arg-type]
        StackOptions(retry=RetryPolicy(max_retries=retries, base_delay_s=0.05, max_delay_s=0.2)),
        budget=Budget(),
    )


def complete(llm: ManagedLLM, request: Request):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await llm.complete(request)
        finally:
            await llm.aclose()

    return asyncio.run(go())


@pytest.fixture
def server_factory() -> Iterator[list[StubServer]]:
    started: list[StubServer] = []
    yield started
    for server in started:
        server.stop()


def complete_then_close(backend: OpenAIBackend, request: Request) -> str:
    """One call in an event loop of its own, the backend closed after it."""

    async def go() -> str:
        try:
            return (await backend.complete(request)).text
        finally:
            await backend.aclose()

    return asyncio.run(go())


def serve(started: list[StubServer], **kwargs) -> StubServer:  # type: ignore[no-untyped-def]
    server = StubServer(**kwargs).start()
    started.append(server)
    return server


@pytest.mark.parametrize("api", ["chat", "completion"])
def test_transient_faults_are_retried_with_the_identical_request(server_factory, key, api) -> None:  # type: ignore[no-untyped-def]
    server = serve(server_factory, plan=plan_from(["429", "500", "drop", "503"]), retry_after="0.1")
    llm = stack(server, api=api)
    completion = complete(llm, Request("What is 2+2?", temperature=0.7, max_tokens=9, seed=3))
    assert completion.text.startswith("reply to")
    assert len(server.requests) == 5
    assert all(body == server.requests[0] for body in server.requests), (
        "a retry changed the request"
    )
    assert server.requests[0]["model"] == "stub-model"
    usage = llm.budget.usage()["llm"]
    assert (usage.calls, usage.retries, usage.failures) == (1, 4, 0)
    assert all(h["authorization"] == f"Bearer {key}" for h in server.headers_seen)


def test_retry_after_is_waited_for(server_factory, key) -> None:  # type: ignore[no-untyped-def]
    server = serve(server_factory, plan=plan_from(["429"]), retry_after="1")
    started = time.monotonic()
    complete(stack(server), Request("x"))
    assert time.monotonic() - started >= 1.0
    assert len(server.requests) == 2


def test_slow_responses_time_out_and_are_retried(server_factory, key) -> None:  # type: ignore[no-untyped-def]
    server = serve(server_factory, plan=plan_from(["slow"]), slow_s=3.0)
    started = time.monotonic()
    completion = complete(stack(server, timeout=0.4), Request("x"))
    assert completion.text
    assert time.monotonic() - started < 2.5
    assert len(server.requests) == 2


def test_failures_beyond_the_bound_raise_retries_exhausted(server_factory, key) -> None:  # type: ignore[no-untyped-def]
    server = serve(server_factory, plan=lambda i: "500")
    llm = stack(server, retries=2)
    with pytest.raises(RetriesExhausted, match="after 2 retries"):
        complete(llm, Request("x"))
    assert len(server.requests) == 3
    assert llm.budget.usage()["llm"].failures == 1


@pytest.mark.parametrize(
    ("status", "needle"),
    [("401", "refused the API key"), ("403", "permission denied"), ("404", "unknown model")],
)
def test_auth_and_not_found_fail_at_once_without_leaking_the_key(
    server_factory, key, status, needle
) -> None:  # type: ignore[no-untyped-def]
    server = serve(server_factory, plan=lambda i: status)
    with pytest.raises(FatalLLMError) as info:
        complete(stack(server), Request("x"))
    assert needle in str(info.value)
    assert SENTINEL_KEY not in str(info.value)
    assert len(server.requests) == 1


def test_unreachable_server_is_a_fatal_error_naming_the_url(key) -> None:  # type: ignore[no-untyped-def]
    llm = build_llm("openai:m", BackendOptions(base_url="http://127.0.0.1:9/v1"), budget=Budget())
    started = time.monotonic()
    with pytest.raises(FatalLLMError, match=r"cannot connect to http://127.0.0.1:9/v1"):
        complete(llm, Request("x"))
    assert time.monotonic() - started < 5


def test_local_servers_need_no_key(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve(server_factory)
    assert complete(stack(server), Request("x")).text


def test_a_stub_server_in_its_own_process_answers_then_ends() -> None:
    """The benchmarks' server (``stub_process``): a separate process, its URL, ended on exit."""
    with stub_process(0.0) as (proc, url):
        assert proc.poll() is None
        llm = build_llm("openai:stub", BackendOptions(base_url=url), budget=Budget())
        assert complete(llm, Request("x")).text
    assert proc.poll() is not None


@pytest.mark.parametrize("api", ["chat", "completion"])
def test_the_body_sent_is_the_one_the_sdks_create_sends(server_factory, key, api) -> None:  # type: ignore[no-untyped-def]
    """The backend posts its body through the SDK client without ``create``'s transform:
    the server sees exactly what ``create`` would have sent."""
    server = serve(server_factory)
    request = Request(
        "What is 2+2?", 9, 0.7, ("\n", "Q:"), seed=3, system="Be brief.", grammar='root ::= "4"'
    )

    async def both() -> None:
        backend = OpenAIBackend("stub-model", BackendOptions(base_url=server.url, api=api))
        try:
            await backend.complete(request)
        finally:
            await backend.aclose()
        sdk = openai.AsyncOpenAI(base_url=server.url, max_retries=0)
        common: dict[str, Any] = {
            "model": "stub-model",
            "max_tokens": 9,
            "temperature": 0.7,
            "stop": ["\n", "Q:"],
            "seed": request.derived_seed(),
            "extra_body": {"grammar": 'root ::= "4"'},
        }
        try:
            if api == "chat":
                messages: Any = [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is 2+2?"},
                ]
                await sdk.chat.completions.create(messages=messages, **common)
            else:
                await sdk.completions.create(prompt="Be brief.\n\nWhat is 2+2?", **common)
        finally:
            await sdk.close()

    asyncio.run(both())
    ours, sdks = server.requests
    assert ours == sdks
    assert server.headers_seen[0]["content-type"] == server.headers_seen[1]["content-type"]


def test_many_calls_in_flight_go_out_together_and_the_session_closes(server_factory, key) -> None:  # type: ignore[no-untyped-def]
    """256 calls in flight at once (the caller bounds them, not the transport's pool), all
    answered together; the session is closed at the end, and a new event loop gets a new
    one (a session belongs to the loop it was made in)."""
    n = 256
    server = serve(server_factory, latency_s=0.5)
    backend = OpenAIBackend("stub-model", BackendOptions(base_url=server.url))

    async def burst() -> list[str]:
        done = await asyncio.gather(*(backend.complete(Request(f"q{i}")) for i in range(n)))
        return [c.text for c in done]

    started = time.monotonic()
    texts = asyncio.run(burst())
    assert len(texts) == n
    assert all(texts)
    assert time.monotonic() - started < 4.0, "the calls were not in flight together"
    first = backend._http._session

    assert complete_then_close(backend, Request("again"))  # in a new event loop
    assert first is not None
    assert first.closed
    assert backend._http._session is None


def test_the_proxy_the_environment_names_carries_the_calls(  # type: ignore[no-untyped-def]
    server_factory, key, monkeypatch
) -> None:
    """As the SDK's client did: HTTP_PROXY carries the calls (here the stub server is the
    proxy, and the API's host does not exist), NO_PROXY exempts a host."""
    server = serve(server_factory)
    proxy = server.url.rsplit("/v1", 1)[0]
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "localhost")
    backend = OpenAIBackend("stub-model", BackendOptions(base_url="http://api.invalid/v1"))

    assert complete_then_close(backend, Request("q"))
    assert server.targets == ["http://api.invalid/v1/chat/completions"]
    assert env_proxy("http://api.invalid/v1") == proxy
    assert env_proxy("http://localhost:8000/v1") is None
    monkeypatch.setenv("no_proxy", "api.invalid")
    monkeypatch.setenv("NO_PROXY", "api.invalid")
    assert env_proxy("http://api.invalid/v1") is None
