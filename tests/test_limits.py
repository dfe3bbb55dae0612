"""Retries: bounded, jittered, honouring Retry-After, re-sending the same call.

Fatal errors pass straight through."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opro.errors import FatalLLMError, RetriesExhausted, TransientLLMError
from opro.llm.limits import RetryPolicy, call_with_retries, parse_retry_after


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": future}) or 0) <= 31


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=10**6))
def test_backoff_is_bounded_and_jittered(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30)
    delay = policy.backoff(attempt, random.Random(seed))
    ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


class Flaky:
    """Fails with the given errors in turn, then answers 'ok'."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(
    flaky: Flaky, policy: RetryPolicy, retries: list[TransientLLMError]
) -> tuple[str, list[float]]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    result = asyncio.run(
        call_with_retries(
            flaky, policy, random.Random(0), on_retry=retries.append, sleep=fake_sleep
        )
    )
    return result, slept


def test_transient_errors_are_retried_and_retry_after_is_honoured() -> None:
    flaky = Flaky([TransientLLMError("429", retry_after=7.0), TransientLLMError("500")])
    seen: list[TransientLLMError] = []
    result, slept = run(flaky, RetryPolicy(base_delay_s=0.1), seen)
    assert result == "ok"
    assert flaky.calls == 3
    assert len(seen) == 2
    assert slept[0] >= 7.0
    assert slept[1] <= 0.2


def test_retries_are_bounded() -> None:
    flaky = Flaky([TransientLLMError("500") for _ in range(10)])
    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        run(flaky, RetryPolicy(max_retries=3, base_delay_s=0.01), [])
    assert flaky.calls == 4


def test_fatal_errors_are_not_retried() -> None:
    flaky = Flaky([FatalLLMError("401")])
    with pytest.raises(FatalLLMError):
        run(flaky, RetryPolicy(), [])
    assert flaky.calls == 1


def test_an_absurd_retry_after_fails_instead_of_hanging() -> None:
    flaky = Flaky([TransientLLMError("429", retry_after=86_400)])
    with pytest.raises(RetriesExhausted, match="asks to wait"):
        run(flaky, RetryPolicy(max_retry_after_s=60), [])
