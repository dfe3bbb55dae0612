"""Bounded retries and bounded concurrency: the only place either happens.

A transient failure (429, 5xx, timeout, dropped connection) is retried with jittered
exponential backoff, waiting at least the server's Retry-After, re-sending the identical
``Request`` to the identical backend — never a different model. After ``max_retries``
the call raises ``RetriesExhausted``; fatal errors pass straight through.

Under a ``Deadline`` (the run's ``--time-limit``) every attempt is cut off when the time is
up, and no wait outlasts it: a retry that could only start after the deadline is not
waited for. Either way the call ends in ``BudgetExceeded`` (a clean budget stop, the run
resumable), never in an LLM error.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, Protocol, TypeVar

from opro.errors import RetriesExhausted, TransientLLMError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0
    """A Retry-After longer than this is not waited for: the call fails (state is saved)."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


class Deadline(Protocol):
    """The time a run has left (``Budget`` is one)."""

    def time_left(self) -> float | None:
        """Seconds until the deadline (0 once past it); None: no deadline."""

    def out_of_time(self, why: str = "", *, ahead: bool = False) -> NoReturn:
        """Raise ``BudgetExceeded``: the deadline is reached, or (``ahead``) would pass
        before the next try; ``why`` says what was cut off."""


async def within(
    call: Callable[[], Awaitable[T]],
    deadline: Deadline | None,
    why: str = "a request was still unanswered",
) -> T:
    """``call``, cut off at the deadline (``BudgetExceeded`` saying ``why``, not a timeout)."""
    left = None if deadline is None else deadline.time_left()
    if deadline is None or left is None:
        return await call()
    if left <= 0:
        deadline.out_of_time()
    scope = asyncio.timeout(left)
    try:
        async with scope:
            return await call()
    except TimeoutError:
        if scope.expired():
            deadline.out_of_time(why)
        raise


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    rng: random.Random,
    *,
    on_retry: Callable[[TransientLLMError], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    deadline: Deadline | None = None,
) -> T:
    """Run ``call`` until it succeeds, retrying transient errors within ``policy`` and
    within ``deadline`` (each try cut off there; a wait past it is not made)."""
    attempt = 0
    while True:
        try:
            return await within(call, deadline)
        except TransientLLMError as exc:
            attempt += 1
            if attempt > policy.max_retries:
                raise RetriesExhausted(
                    f"{exc} — still failing after {policy.max_retries} retries"
                ) from None
            delay = policy.backoff(attempt, rng)
            if exc.retry_after is not None:
                if exc.retry_after > policy.max_retry_after_s:
                    raise RetriesExhausted(
                        f"{exc} — the server asks to wait {exc.retry_after:.0f} s"
                    ) from None
                delay = max(delay, exc.retry_after)
            left = None if deadline is None else deadline.time_left()
            if deadline is not None and left is not None and delay >= left:
                asked = exc.retry_after is not None and exc.retry_after >= delay
                wait = f"the server asks to wait {delay:.0f} s" if asked else f"{delay:.1f} s"
                deadline.out_of_time(f"{wait}, {left:.1f} s are left; after: {exc}", ahead=True)
            if on_retry is not None:
                on_retry(exc)
            log.info("retry %d/%d in %.2fs after: %s", attempt, policy.max_retries, delay, exc)
            await sleep(delay)


class RateLimiter:
    """Paces one role's calls to a provider's rate limits: at most ``requests_per_minute``
    calls started and ``tokens_per_minute`` tokens (each call's estimate) over any minute.
    Hosted APIs limit by rate, not only by concurrency; a call waits here rather than being
    refused with a 429. A sliding window of the last minute's starts; thread-safe enough for
    one event loop (the only user)."""

    WINDOW_S = 60.0

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm, self.tpm = requests_per_minute, tokens_per_minute
        self._clock = clock
        self._starts: list[tuple[float, float]] = []  # (when, tokens)
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def delay(self, tokens: float) -> float:
        """Seconds to wait before a call of ``tokens`` may start (0: now)."""
        now = self._clock()
        self._starts = [(t, n) for t, n in self._starts if now - t < self.WINDOW_S]
        waits = [0.0]
        if self.rpm is not None and len(self._starts) >= self.rpm:
            oldest = self._starts[len(self._starts) - int(self.rpm)][0]
            waits.append(oldest + self.WINDOW_S - now)
        if self.tpm is not None:
            used = sum(n for _, n in self._starts)
            for when, spent in self._starts:  # wait until enough has left the window
                if used + tokens <= self.tpm:
                    break
                used -= spent
                waits.append(when + self.WINDOW_S - now)
        return max(waits)

    async def acquire(self, tokens: float) -> None:
        if not self.active:
            return
        async with self._lock:  # one caller at a time takes its slot, in arrival order
            while (wait := self.delay(tokens)) > 0:
                await asyncio.sleep(wait)
            self._starts.append((self._clock(), tokens))


def estimated_tokens(prompt: str, max_tokens: int) -> float:
    """A call's token cost before it is made: its prompt (about 4 characters a token) and
    all the tokens it may write."""
    return len(prompt) / 4 + max_tokens
