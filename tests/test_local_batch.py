"""Batched decoding in the embedded backend: real model, real prompts, no doubles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import pytest

from opro.errors import FatalLLMError
from opro.llm.base import BackendOptions
from opro.llm.local import LocalBackend
from opro.problems.tsp import trace_shape
from opro.types import Completion, Request
from tests.conftest import SHARED_DATA

T = TypeVar("T")
STOP = ("\nQ:", "\n\n")


def scoring_prompts(n: int) -> list[str]:
    """What the scorer sends for bbh:boolean_expressions (Q_begin, step-by-step)."""
    path = SHARED_DATA / "BIG-Bench-Hard-data" / "boolean_expressions.json"
    examples = json.loads(path.read_text())["examples"]
    fold = sorted(np.random.RandomState(0).choice(250, 50, replace=False))[:n]
    return [f"Q: Let's think step by step.\n{examples[int(i)]['input']}\n\nA:" for i in fold]


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(make())


def complete_all(llm: LocalBackend, requests: list[Request]) -> list[Completion]:
    async def go() -> list[Completion]:
        return list(await asyncio.gather(*(llm.complete(r) for r in requests)))

    return run(go)


@pytest.fixture(scope="module")
def batched() -> Iterator[LocalBackend]:
    backend = LocalBackend("gemma3-270m", BackendOptions(n_threads=2), max_batch=16)
    yield backend
    asyncio.run(backend.aclose())


def test_batched_text_matches_llama_cpp_one_at_a_time(batched: LocalBackend) -> None:
    requests = [Request(p, max_tokens=24, stop=STOP) for p in scoring_prompts(12)]
    ours = complete_all(batched, requests)

    def reference(request: Request) -> Completion:
        """``Llama.create_completion`` (the one-at-a-time path) on an empty KV cache."""
        batched._load().reset()
        return batched._generate(request)

    # A prompt is read alone, exactly as llama.cpp reads it for one sequence, so the first
    # token always agrees; the batched decode steps run other CPU kernels, which round
    # differently, so a continuation may part from the reference at a near-tie later on.
    firsts = complete_all(batched, [Request(r.prompt, max_tokens=1) for r in requests])
    first_refs = [reference(Request(r.prompt, max_tokens=1)) for r in requests]
    assert [c.text for c in firsts] == [c.text for c in first_refs]
    refs = [reference(r) for r in requests]
    same = sum(a.text == b.text for a, b in zip(ours, refs, strict=True))
    assert same >= 9, [(a.text, b.text) for a, b in zip(ours, refs, strict=True)]
    for a, b in zip(ours, refs, strict=True):
        if a.text == b.text:
            assert (a.finish_reason, a.usage) == (b.finish_reason, b.usage)


def test_a_request_gets_the_same_text_alone_or_in_a_batch(batched: LocalBackend) -> None:
    prompts = scoring_prompts(9)
    greedy = [Request(p, max_tokens=48, stop=STOP) for p in prompts]
    sampled = [Request(p, max_tokens=24, temperature=1.0, sample=3, seed=7) for p in prompts]
    for requests in (greedy, sampled):
        alone = [complete_all(batched, [r])[0] for r in requests[:3]]
        together = complete_all(batched, requests[::-1])[::-1]  # each among 8 others
        assert [c.text for c in together[:3]] == [c.text for c in alone]
        assert [c.usage for c in together[:3]] == [c.usage for c in alone]


def step_prompts(questions: int) -> list[str]:
    """A step's scoring on bbh:date_understanding at A_begin: each question under several
    instructions, so that prompts begin alike (100-200 tokens of question in common)."""
    path = SHARED_DATA / "BIG-Bench-Hard-data" / "date_understanding.json"
    examples = json.loads(path.read_text())["examples"][:questions]
    instructions = ["", "Let's think step by step.", "Take a deep breath.", "Solve it."]
    return [f"Q: {e['input']}\n\nA: {i}".rstrip() for e in examples for i in instructions]


def test_prompts_beginning_alike_read_their_start_once_and_keep_their_text(
    batched: LocalBackend,
) -> None:
    """The second of each question's prompts copies the first's KV cells for the question
    and reads only its own end; its text is the one it gets alone, and its first token is
    the one llama-cpp-python's own whole read of the prompt gives."""
    prompts = step_prompts(3)
    greedy = [Request(p, max_tokens=40, stop=STOP) for p in prompts]
    sampled = [Request(p, max_tokens=20, temperature=1.0, sample=1, seed=3) for p in prompts]
    for requests in (greedy, sampled):
        alone = [complete_all(batched, [r])[0] for r in requests]
        copied_before = batched._engine.copied  # type: ignore[union-attr]
        together = complete_all(batched, requests)
        copied = batched._engine.copied - copied_before  # type: ignore[union-attr]
        assert [c.text for c in together] == [c.text for c in alone]
        assert [c.usage for c in together] == [c.usage for c in alone]
        # Prompts took a donor's cells (how many depends on which donors are still seated
        # when each is seated: timing, so a speed figure for benchmarks/embedded_scoring.py,
        # not this test; with every later prompt copying, 1,188 of the 1,684 tokens).
        assert copied > 0
    firsts = complete_all(batched, [Request(p, max_tokens=1) for p in prompts])
    batched._load().reset()
    refs = [batched._generate(Request(p, max_tokens=1)) for p in prompts]
    assert [c.text for c in firsts] == [c.text for c in refs]


def test_stop_strings_cut_the_text_and_lengths_are_reported(batched: LocalBackend) -> None:
    prompt = "Counting: 1, 2, 3, 4, 5,"
    (free,) = complete_all(batched, [Request(prompt, max_tokens=12)])
    assert free.finish_reason == "length"
    assert free.usage.prompt_tokens > 5
    assert free.usage.completion_tokens == 12
    stop = free.text[len(free.text) // 2 :][:2]
    assert stop.strip(), free.text
    (cut,) = complete_all(batched, [Request(prompt, max_tokens=12, stop=("@@", stop))])
    assert cut.text == free.text[: free.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert 0 < cut.usage.completion_tokens <= 12
    (comma,) = complete_all(batched, [Request(prompt, max_tokens=30, stop=(",",))])
    assert "," not in comma.text
    assert comma.finish_reason == "stop"


def test_a_prompt_that_fills_the_window_fails_alone_and_max_tokens_is_cut_to_fit(
    batched: LocalBackend,
) -> None:
    assert batched.n_ctx == 2048
    tight = "Q: " + "True and " * 1000 + "True is\nA:"
    room = batched.n_ctx - len(batched._load().tokenize(tight.encode()))
    assert 1 <= room <= 64, room  # the prompt leaves a little room
    requests = [
        Request("Q: not True is\nA:", max_tokens=8),
        Request("Q: " + "True and " * 1200 + "True is\nA:", max_tokens=8),
        Request("Q: 2 + 2 is\nA:", max_tokens=8),
        Request(tight, max_tokens=500),  # as llama-cpp-python: cut to the room left
    ]

    async def go() -> list[Completion | BaseException]:
        return list(
            await asyncio.gather(*(batched.complete(r) for r in requests), return_exceptions=True)
        )

    ok1, too_long, ok2, cut = run(go)
    assert isinstance(too_long, FatalLLMError)
    assert "`n_ctx`" in str(too_long)  # a setting; the CLI shows its flags
    assert "\n" not in str(too_long)
    for ok in (ok1, ok2):
        assert isinstance(ok, Completion)
        assert ok.usage.completion_tokens >= 1
    assert isinstance(cut, Completion)
    assert 1 <= cut.usage.completion_tokens <= room
    assert cut.usage.prompt_tokens + cut.usage.completion_tokens <= batched.n_ctx


def test_cancelled_callers_do_not_hold_up_the_others(batched: LocalBackend) -> None:
    requests = [Request(p, max_tokens=32, stop=STOP) for p in scoring_prompts(6)]
    expected = [c.text for c in complete_all(batched, requests)]

    async def go() -> tuple[list[Completion | BaseException], Completion]:
        tasks = [asyncio.create_task(batched.complete(r)) for r in requests]
        while not batched._in_flight:  # the batch is being decoded
            await asyncio.sleep(0.01)
        tasks[0].cancel()  # the caller driving the model
        tasks[3].cancel()
        outs = await asyncio.gather(*tasks, return_exceptions=True)
        after = await batched.complete(Request("Q: True and True is\nA:", max_tokens=4))
        return outs, after

    outs, after = run(go)
    assert isinstance(outs[0], asyncio.CancelledError)
    assert isinstance(outs[3], asyncio.CancelledError)
    for i in (1, 2, 4, 5):
        got = outs[i]
        assert isinstance(got, Completion)
        assert got.text == expected[i]
    assert after.usage.completion_tokens >= 1
    assert not batched._in_flight
    assert batched._engine.sequences() == []


def test_batch_size_is_checked() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        LocalBackend("gemma3-270m", BackendOptions(), max_batch=6)


def test_a_sample_stops_once_no_continuation_can_take_its_answer_shape(
    batched: LocalBackend,
) -> None:
    shape = trace_shape(8)
    shots = ["6,2,7,4,5,1,0,3", "2,4,3,6,5,0,1,7", "3,2,1,7,6,0,5,4"]
    prompt = "".join(
        f"<trace> {t} </trace>\nlength: {900 - 50 * i}\n\n" for i, t in enumerate(shots)
    )
    free = [Request(prompt, 48, 1.0, sample=i, seed=11) for i in range(8)]
    shaped = complete_all(batched, [replace(r, shape=shape) for r in free])
    unshaped = complete_all(batched, free)
    hopeless = [c for c in shaped if c.finish_reason == "hopeless"]
    assert hopeless, [c.text for c in shaped]
    for cut, whole in zip(shaped, unshaped, strict=True):
        assert whole.text.startswith(cut.text)
        if cut.finish_reason == "hopeless":
            assert shape.hopeless(cut.text)
            assert shape.parse(whole.text) is None
            assert cut.usage.completion_tokens < whole.usage.completion_tokens
        else:
            assert (cut.text, cut.finish_reason) == (whole.text, whole.finish_reason)
