"""The embedded llama.cpp backend: real model, seeded sampling, grammar, prefix ordering, memory."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from opro.llm.base import BackendOptions
from opro.llm.cache import CallCache
from opro.llm.local import LocalBackend, _Job
from opro.llm.stack import ManagedLLM, StackOptions
from opro.llm.usage import Budget
from opro.types import Completion, Request

QUESTION = "Q: Tom has 3 apples and buys 4 more. How many apples does he have?\nA:"


@pytest.fixture(scope="module")
def gemma() -> LocalBackend:
    return LocalBackend("gemma3-270m", BackendOptions())


def run_all(llm: ManagedLLM | LocalBackend, requests: list[Request]) -> list[Completion]:
    async def go() -> list[Completion]:
        return list(await asyncio.gather(*(llm.complete(r) for r in requests)))

    return asyncio.run(go())


def test_cache_gives_8_different_samples_and_replays_them(
    gemma: LocalBackend, tmp_path: Path
) -> None:
    requests = [Request(QUESTION, max_tokens=16, temperature=1.0, sample=i) for i in range(8)]
    cache_path = tmp_path / "calls.sqlite"
    first_llm = ManagedLLM(
        gemma, StackOptions(concurrency=8), cache=CallCache(cache_path), budget=Budget()
    )
    first = run_all(first_llm, requests)
    assert len({c.text for c in first}) == 8, [c.text for c in first]
    assert first_llm.budget.usage()["llm"].calls == 8

    # A rerun (new cache connection, new stack) pays nothing and gets the same 8 samples.
    rerun_llm = ManagedLLM(gemma, StackOptions(), cache=CallCache(cache_path), budget=Budget())
    again = run_all(rerun_llm, requests)
    assert [c.text for c in again] == [c.text for c in first]
    assert all(c.cached for c in again)
    usage = rerun_llm.budget.usage()["llm"]
    assert (usage.calls, usage.cached_calls) == (0, 8)


def test_sampling_is_seeded_per_request(gemma: LocalBackend) -> None:
    request = Request(QUESTION, max_tokens=12, temperature=1.0, sample=5, seed=11)
    a, b = run_all(gemma, [request, request])
    assert a.text == b.text
    other = run_all(gemma, [Request(QUESTION, max_tokens=12, temperature=1.0, sample=5, seed=12)])[
        0
    ]
    assert other.text != a.text


def test_greedy_decoding_is_deterministic_and_reports_usage(gemma: LocalBackend) -> None:
    a, b = run_all(
        gemma, [Request(QUESTION, max_tokens=8), Request(QUESTION, max_tokens=8, sample=3)]
    )
    assert a.text == b.text
    assert a.usage.prompt_tokens > 10
    assert 1 <= a.usage.completion_tokens <= 8
    assert a.model == "gemma3-270m"


def test_grammar_constrains_a_tiny_model(gemma: LocalBackend) -> None:
    grammar = 'root ::= "[" [0-9] [0-9]? ", " [0-9] [0-9]? "]"'
    outs = run_all(
        gemma,
        [
            Request(
                "Propose a pair [w, b]:", max_tokens=16, temperature=1.0, sample=i, grammar=grammar
            )
            for i in range(4)
        ],
    )
    for out in outs:
        w, b = json.loads(out.text)
        assert isinstance(w, int)
        assert isinstance(b, int)


def test_stop_sequences_end_the_output(gemma: LocalBackend) -> None:
    (out,) = run_all(gemma, [Request("1, 2, 3, 4, 5,", max_tokens=30, stop=(",",))])
    assert "," not in out.text


def test_pending_work_is_ordered_by_shared_prefix() -> None:
    backend = LocalBackend.__new__(LocalBackend)
    loop = asyncio.new_event_loop()
    try:
        jobs = [
            _Job(Request(t), t, loop.create_future())
            for t in ("B: other", "A: shared prefix, q2", "A: shared prefix, q3")
        ]
        backend._pending = list(jobs)
        backend._last_text = "A: shared prefix, q1"
        assert backend._pick(list(backend._pending)) is jobs[1]
        backend._last_text = "B: other thing"
        assert backend._pick(list(backend._pending)) is jobs[0]
        assert backend._pending == [jobs[2]]
    finally:
        loop.close()


def test_chat_api_on_the_instruct_model() -> None:
    smol = LocalBackend("smollm2", BackendOptions())
    assert smol.api == "chat"
    (out,) = run_all(smol, [Request("Say hello.", max_tokens=12, system="You are brief.")])
    assert out.text.strip()
    assert out.usage.completion_tokens >= 1


def test_peak_memory_of_an_embedded_run_is_under_1_5_gb() -> None:
    script = (
        "import asyncio, resource\n"
        "from opro.llm.stack import build_llm\n"
        "from opro.types import Request\n"
        "llm = build_llm('local:gemma3-270m')\n"
        "async def go():\n"
        "    await asyncio.gather(*(llm.complete(Request('Q: %d + %d?\\nA:' % (i, i),"
        " max_tokens=24, temperature=1.0, sample=i)) for i in range(24)))\n"
        "asyncio.run(go())\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    peak_kb = int(out.stdout.strip().splitlines()[-1])
    # 0.6 GB alone; 1.26 GB was seen once inside the full suite on a loaded 2-core machine
    # (README, "Models"): the bound catches a leak or a second copy of the weights.
    assert peak_kb < 1.5 * 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
