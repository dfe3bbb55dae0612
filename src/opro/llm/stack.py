"""A backend wrapped for real use: cache → budget → concurrency limit → retries → backend.

``build_llm`` is what the rest of opro calls. The order matters and is fixed here:
a cache hit costs nothing and takes no concurrency slot; identical requests in flight at
once are sent once (single flight); the semaphore bounds calls per role; inside it the
budget claims the call (its estimate counts against the caps while it is in flight);
retries re-send the very same request.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, replace

from opro.errors import ConfigError, LLMError, RetriesExhausted, redact
from opro.llm.base import LLM, BackendOptions, Identity
from opro.llm.cache import CallCache, cache_key
from opro.llm.limits import (
    RateLimiter,
    RetryPolicy,
    call_with_retries,
    estimated_tokens,
    within,
)
from opro.llm.registry import create_backend
from opro.llm.usage import Budget, Price, estimate, known_price
from opro.types import Completion, Request


@dataclass(frozen=True)
class StackOptions:
    role: str = "llm"
    concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    price: Price | None = None
    """Overrides the known list price of the model."""
    retry_seed: int = 0
    """Seeds the backoff jitter, so that tests replay."""
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1 (got {self.concurrency})")


class ManagedLLM(LLM):
    """An ``LLM`` with caching, single flight, budget, bounded concurrency and retries."""

    def __init__(
        self,
        backend: LLM,
        options: StackOptions,
        *,
        cache: CallCache | None,
        budget: Budget,
    ) -> None:
        self.backend = backend
        self.spec = backend.spec
        self.api = backend.api
        self.role = options.role
        self.options = options
        self.cache = cache
        self.budget = budget
        self.price = options.price if options.price is not None else known_price(backend.spec)
        if budget.caps.budget_usd is not None and self.price is None:
            raise ConfigError(
                f"no price is known for {backend.spec}, so budget_usd cannot be enforced: set "
                f"{self.role}_price (dollars per million input,output tokens)"
            )
        self._rng = random.Random(options.retry_seed)
        self._rate = RateLimiter(options.requests_per_minute, options.tokens_per_minute)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._in_flight: dict[str, asyncio.Future[Completion]] = {}

    def identity(self) -> Identity:
        return self.backend.identity()

    def secrets(self) -> tuple[str, ...]:
        return self.backend.secrets()

    def _bind_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.options.concurrency)
            self._in_flight = {}
        return self._semaphore

    async def complete(self, request: Request) -> Completion:
        semaphore = self._bind_loop()
        key = cache_key(self.identity(), request)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.budget.record_cached(self.role)
                return hit
        pending = self._in_flight.get(key)
        if pending is not None:
            try:
                completion = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
            else:
                self.budget.record_cached(self.role)
                return replace(completion, cached=True)
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            completion = await self._call(request, semaphore)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
        future.set_result(completion)
        if self.cache is not None:
            self.cache.put(key, completion)
        return completion

    async def _call(self, request: Request, semaphore: asyncio.Semaphore) -> Completion:
        # The budget is claimed inside the concurrency bound, so that a grid of N requests
        # does not claim N calls at once: only the calls really in flight count against the
        # caps at their estimates, and a cap stops the grid within about one call's worth.
        async with semaphore:
            prompt_chars = len(request.prompt) + len(request.system or "")
            claim = await self.budget.acquire(
                estimate(prompt_chars, request.max_tokens, self.price)
            )
            try:
                text = request.prompt + (request.system or "")
                tokens = estimated_tokens(text, request.max_tokens)
                await within(
                    lambda: self._rate.acquire(tokens), self.budget, "waiting for a rate limit"
                )
                started = time.perf_counter()
                completion = await call_with_retries(
                    lambda: self.backend.complete(request),
                    self.options.retry,
                    self._rng,
                    on_retry=lambda _exc: self.budget.record_retry(self.role),
                    deadline=self.budget,  # --time-limit cuts off every try and every wait
                )
                # A key the server echoed back is kept in no file: not cached, not recorded.
                text = redact(completion.text, self.secrets())
                completion = replace(completion, text=text, latency_s=time.perf_counter() - started)
            except RetriesExhausted as exc:
                self.budget.record_failure(self.role)
                fix = f"try again later, or raise `{self._retries_setting}`"
                raise RetriesExhausted(f"{exc}: {fix}") from None
            except LLMError:
                self.budget.record_failure(self.role)
                raise
            else:
                self.budget.record_call(self.role, completion.usage, self.price)
            finally:
                self.budget.release(claim)  # after recording: waiters see what it spent
        return completion

    @property
    def _retries_setting(self) -> str:
        """The setting raising this role's retry bound (``opro complete``'s has no prefix)."""
        return "max_retries" if self.role == "llm" else f"{self.role}_max_retries"

    async def aclose(self) -> None:
        await self.backend.aclose()


def build_llm(
    spec: str,
    backend_options: BackendOptions | None = None,
    stack_options: StackOptions | None = None,
    *,
    cache: CallCache | None = None,
    budget: Budget | None = None,
    backend: LLM | None = None,
) -> ManagedLLM:
    """The LLM for ``spec``, ready for a run: see the module docstring for the layers.

    ``backend`` shares an existing backend (two roles on one embedded model: one copy of
    the weights, one queue); the caller then closes that backend itself."""
    backend = backend or create_backend(spec, backend_options)
    return ManagedLLM(
        backend, stack_options or StackOptions(), cache=cache, budget=budget or Budget()
    )
