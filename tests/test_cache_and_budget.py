"""The call cache (keys, replay, single flight) and the budget caps, on engine doubles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from opro.errors import BudgetExceeded, ConfigError
from opro.llm.cache import CallCache, cache_key
from opro.llm.fake import FakeLLM
from opro.llm.stack import ManagedLLM, StackOptions
from opro.llm.usage import Budget, Caps, Price, known_price
from opro.types import Completion, Request, Usage


def test_cache_key_covers_the_whole_request_and_the_model() -> None:
    base = Request("p", max_tokens=5, temperature=1.0, stop=("\n",), sample=0, seed=1)
    ident = {"spec": "openai:m", "base_url": "http://a/v1", "api": "chat"}
    variants = [
        Request("q", 5, 1.0, ("\n",), 0, 1),
        Request("p", 6, 1.0, ("\n",), 0, 1),
        Request("p", 5, 0.5, ("\n",), 0, 1),
        Request("p", 5, 1.0, ("x",), 0, 1),
        Request("p", 5, 1.0, ("\n",), 1, 1),
        Request("p", 5, 1.0, ("\n",), 0, 2),
        Request("p", 5, 1.0, ("\n",), 0, 1, system="s"),
        Request("p", 5, 1.0, ("\n",), 0, 1, grammar='root ::= "a"'),
    ]
    keys = {cache_key(ident, r) for r in variants} | {cache_key(ident, base)}
    assert len(keys) == len(variants) + 1
    assert cache_key(ident | {"spec": "openai:other"}, base) != cache_key(ident, base)
    assert cache_key(ident | {"base_url": "http://b/v1"}, base) != cache_key(ident, base)
    assert cache_key(dict(ident), base) == cache_key(ident, base)


def test_cache_round_trip_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    cache.put("k", Completion("héllo ’", "stop", Usage(3, 4), "m"))
    cache.close()
    again = CallCache(path)
    hit = again.get("k")
    assert hit is not None
    assert (hit.text, hit.usage, hit.cached) == ("héllo ’", Usage(3, 4), True)
    assert again.get("missing") is None
    assert again.stats().entries == 1
    assert again.clear() == 1
    assert again.stats().entries == 0


def test_unwritable_cache_location_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="use_cache=False"):
        CallCache(blocker / "sub" / "c.sqlite")


def managed(
    fake: FakeLLM,
    cache: CallCache | None = None,
    caps: Caps | None = None,
    price: Price | None = None,
    concurrency: int = 8,
) -> ManagedLLM:
    return ManagedLLM(
        fake, StackOptions(concurrency=concurrency, price=price), cache=cache, budget=Budget(caps)
    )


def test_named_fake_replays_from_cache_across_instances(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    requests = [Request("p", temperature=1.0, sample=i) for i in range(4)]

    async def run(llm: ManagedLLM) -> list[Completion]:
        return list(await asyncio.gather(*(llm.complete(r) for r in requests)))

    first_fake = FakeLLM("echo")
    first = asyncio.run(run(managed(first_fake, cache)))
    second_fake = FakeLLM("echo")
    second_llm = managed(second_fake, cache)
    second = asyncio.run(run(second_llm))
    assert [c.text for c in first] == [c.text for c in second]
    assert len(first_fake.requests) == 4
    assert second_fake.requests == []
    assert second_llm.budget.usage()["llm"].cached_calls == 4


def test_identical_requests_in_flight_are_sent_once() -> None:
    calls: list[Request] = []

    def slow(request: Request) -> str:
        calls.append(request)
        return "answer"

    class Slow(FakeLLM):
        async def complete(self, request: Request) -> Completion:
            await asyncio.sleep(0.05)
            return await super().complete(request)

    llm = managed(Slow("slow", fn=slow))

    async def go() -> list[Completion]:
        same = Request("same")
        return list(await asyncio.gather(*(llm.complete(same) for _ in range(5))))

    results = asyncio.run(go())
    assert len(calls) == 1
    assert [r.text for r in results] == ["answer"] * 5
    assert sum(r.cached for r in results) == 4


def test_concurrency_is_bounded_per_role() -> None:
    state = {"now": 0, "peak": 0}

    class Counting(FakeLLM):
        async def complete(self, request: Request) -> Completion:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.01)
            state["now"] -= 1
            return await super().complete(request)

    llm = managed(Counting("echo"), concurrency=3)

    async def go() -> None:
        await asyncio.gather(*(llm.complete(Request(f"p{i}")) for i in range(20)))

    asyncio.run(go())
    assert state["peak"] == 3


def test_max_calls_stops_before_the_next_call_and_cache_hits_are_free(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    fake = FakeLLM("echo")
    llm = managed(fake, cache, Caps(max_calls=3))

    async def go() -> None:
        for i in range(3):
            await llm.complete(Request(f"p{i}"))
        for i in range(3):  # replays cost nothing
            assert (await llm.complete(Request(f"p{i}"))).cached
        with pytest.raises(BudgetExceeded, match="cap of 3 calls is reached"):
            await llm.complete(Request("p3"))

    asyncio.run(go())
    assert len(fake.requests) == 3


def test_concurrent_calls_never_overshoot_max_calls() -> None:
    fake = FakeLLM("echo")
    llm = managed(fake, caps=Caps(max_calls=5))

    async def go() -> list[object]:
        return list(
            await asyncio.gather(
                *(llm.complete(Request(f"p{i}")) for i in range(12)), return_exceptions=True
            )
        )

    results = asyncio.run(go())
    assert len(fake.requests) == 5
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 7


def test_cost_is_counted_and_budget_usd_stops_the_run() -> None:
    llm = managed(FakeLLM("echo"), caps=Caps(budget_usd=0.0001), price=Price(10.0, 10.0))

    async def go() -> tuple[int, BaseException]:
        done = 0
        while True:
            try:
                await llm.complete(Request("one two three four five", sample=done))
            except BudgetExceeded as exc:
                return done, exc
            done += 1

    done, stopped = asyncio.run(go())
    assert "budget of $0.0001 is reached" in str(stopped)
    usage = llm.budget.usage()["llm"]
    assert usage.cost_usd is not None
    assert usage.cost_usd >= 0.0001
    assert usage.cost_usd == pytest.approx(usage.total_tokens * 10 / 1e6)
    assert done == usage.calls


def test_budget_usd_with_an_unknown_price_is_refused_up_front() -> None:
    fake = FakeLLM("echo")
    fake.spec = "openai:my-own-model"
    with pytest.raises(ConfigError, match="set llm_price"):
        managed(fake, caps=Caps(budget_usd=1.0))


def test_known_prices() -> None:
    assert known_price("local:gemma3-270m") == Price(0, 0)
    assert known_price("openai:gpt-4o-mini") == Price(0.15, 0.60)
    assert known_price("litellm:openai/gpt-4o-mini") == Price(0.15, 0.60)
    assert known_price("openai:some-unknown-model") is None


def test_time_limit_and_restore_count_across_sessions() -> None:
    clock = {"t": 0.0}
    budget = Budget(Caps(time_limit_s=10, max_calls=4), clock=lambda: clock["t"])
    budget.reserve()
    budget.release()
    clock["t"] = 10.5
    with pytest.raises(BudgetExceeded, match="time limit of 10 s"):
        budget.reserve()
    resumed = Budget(Caps(max_calls=4), clock=lambda: 0.0)
    resumed.restore({"scorer": budget.usage().get("scorer") or _usage(calls=4)}, elapsed_s=10.5)
    assert resumed.elapsed_s == 10.5
    with pytest.raises(BudgetExceeded, match="cap of 4 calls"):
        resumed.reserve()


def _usage(calls: int):  # type: ignore[no-untyped-def]
    from opro.llm.usage import RoleUsage

    return RoleUsage(calls=calls)


def test_caps_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="max_calls"):
        Caps(max_calls=0)
    with pytest.raises(ValidationError, match="time_limit_s"):
        Caps(time_limit_s=-1)
    with pytest.raises(ValidationError, match="budget_usd"):
        Caps(budget_usd=float("nan"))  # a NaN cap would never stop anything
