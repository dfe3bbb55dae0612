"""Usage and cost per role, and the caps that stop a run cleanly.

One ``Budget`` is shared by every role of a run (scorer, optimizer...). Each call that
would reach a backend first ``acquire``s a claim, inside the role's concurrency bound: the
claim counts an estimate of the call (its prompt's length / 4 plus its ``max_tokens``, at
the role's price) against the token and dollar caps while it is in flight, so that a grid of
hundreds of calls stops within about one request's worth of every cap, not after all of
them. A call that would pass a cap only by the estimates of calls still in flight waits for
them to settle; one that would pass it by what was spent is refused with ``BudgetExceeded``
(the engine saves its state and stops; ``opro evaluate`` keeps what was answered). Cached
replays cost nothing and count apart. Usage can be restored from a run directory, so caps
hold across ``opro resume``. ``Caps`` is the validated, frozen value a user sets (and a run
dir keeps).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from opro.errors import BudgetExceeded, ConfigError, unknown_setting
from opro.llm.litellm_import import price_map
from opro.llm.registry import backends
from opro.record import RECORD, Count, JsonRecord
from opro.types import Usage


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1e6

    @classmethod
    def parse(cls, text: str) -> Price:
        """``"0.15,0.60"`` → Price(0.15, 0.60)."""
        try:
            a, b = (float(part) for part in text.split(","))
        except ValueError:
            raise ConfigError(
                f"price {text!r} is not IN,OUT in dollars per million tokens, e.g. 0.15,0.60"
            ) from None
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0:
            raise ConfigError(f"price {text!r} must be two finite, non-negative numbers")
        return cls(a, b)


FREE = Price(0.0, 0.0)
# List prices (USD / 1M tokens) of common hosted models; override with --*-price IN,OUT.
KNOWN_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4": Price(30.00, 60.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-3.5-turbo-instruct": Price(1.50, 2.00),
}


def known_price(spec: str) -> Price | None:
    """The price of a model spec when known: a free backend's (embedded, fake) is 0; others from
    LiteLLM's maintained price map when LiteLLM is installed, else from ``KNOWN_PRICES``."""
    prefix, _, name = spec.partition(":")
    info = backends().get(prefix)
    if info is not None and info.free:
        return FREE
    return litellm_price(name) or KNOWN_PRICES.get(name.rsplit("/", 1)[-1])


def litellm_price(name: str) -> Price | None:
    """``name`` (``gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``) in LiteLLM's price
    map, per million tokens; None without LiteLLM or without the model. The map is read
    without importing LiteLLM (``price_map``)."""
    table = price_map()
    for key in (name, name.rsplit("/", 1)[-1]):
        entry = table.get(key)
        if isinstance(entry, dict):
            given = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
            if all(isinstance(v, int | float) for v in given):
                return Price(float(given[0]) * 1e6, float(given[1]) * 1e6)  # type: ignore[arg-type]
    return None


class Caps(BaseModel):
    """What a run (or an evaluation) may spend at most; None: no cap. Reached, the work
    stops cleanly between calls and can be continued with a higher cap."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )

    max_calls: int | None = Field(default=None, ge=1)
    """LLM calls that reach a backend (cached replays are free)."""
    max_tokens_total: int | None = Field(default=None, ge=1)
    """Prompt and completion tokens, over all roles."""
    budget_usd: float | None = Field(default=None, gt=0)
    """US dollars, over all roles."""
    time_limit_s: float | None = Field(default=None, gt=0)
    """Seconds of run time, over all sessions of the run."""

    @model_validator(mode="before")
    @classmethod
    def _known_caps(cls, data: Any) -> Any:
        """A misspelled cap is a one-line error with a "did you mean"."""
        if isinstance(data, dict):
            for name in data:
                if name not in cls.model_fields:
                    raise unknown_setting(cls.__name__, name, cls.model_fields)
        return data


@pydantic_dataclass(frozen=True, config=RECORD)
class RoleUsage(JsonRecord):
    """One role's usage (optimizer, scorer, judge): what its calls spent."""

    calls: Count = 0
    """calls that reached a backend and succeeded"""
    cached_calls: Count = 0
    """calls answered from the cache (free)"""
    retries: Count = 0
    """retries of calls that failed (429, 5xx, timeouts)"""
    failures: Count = 0
    """calls that failed after their retries"""
    prompt_tokens: Count = 0
    """prompt tokens of the calls"""
    completion_tokens: Count = 0
    """completion tokens of the calls"""
    cost_usd: Annotated[float, Strict(), Field(ge=0)] | None = 0.0
    """US dollars spent; null when the price of the role's model is unknown"""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: RoleUsage) -> RoleUsage:
        """Both together; the cost is unknown (None) if either one's is."""
        cost = (
            None
            if self.cost_usd is None or other.cost_usd is None
            else (self.cost_usd + other.cost_usd)
        )
        return RoleUsage(
            self.calls + other.calls,
            self.cached_calls + other.cached_calls,
            self.retries + other.retries,
            self.failures + other.failures,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            cost,
        )


@dataclass(frozen=True)
class Claim:
    """One call in flight: what it is estimated to spend at most (see ``estimate``)."""

    tokens: int = 0
    cost_usd: float = 0.0


def estimate(prompt_chars: int, max_tokens: int, price: Price | None) -> Claim:
    """A call's cost before it is made: ~4 characters a prompt token, and every completion
    token it may generate, at the role's price (unknown: free)."""
    prompt_tokens = prompt_chars // 4 + 1
    cost = 0.0 if price is None else price.cost(Usage(prompt_tokens, max_tokens))
    return Claim(prompt_tokens + max_tokens, cost)


class Budget:
    """Caps over all roles plus running usage per role, and the calls in flight."""

    def __init__(self, caps: Caps | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.caps = caps or Caps()
        self._clock = clock
        self._started = clock()
        self._elapsed_before = 0.0
        self._usage: dict[str, RoleUsage] = {}
        self._in_flight = 0
        self._pending = Claim()
        self._waiters: list[asyncio.Future[None]] = []
        self.stopped: str | None = None
        """Why the first call was refused (a cap reached), once one was."""

    def restore(self, usage: dict[str, RoleUsage], elapsed_s: float) -> None:
        """Continue from a saved run: caps count what earlier sessions spent."""
        self._usage = dict(usage)
        self._elapsed_before = elapsed_s

    @property
    def elapsed_s(self) -> float:
        return self._elapsed_before + self._clock() - self._started

    def time_left(self) -> float | None:
        """Seconds until the time limit (0 once past it); None without one. Every request,
        backoff and Retry-After wait of a run is cut off there (``limits.call_with_retries``)."""
        limit = self.caps.time_limit_s
        return None if limit is None else max(0.0, limit - self.elapsed_s)

    def out_of_time(self, why: str = "", *, ahead: bool = False) -> NoReturn:
        """Stop at the time limit: ``BudgetExceeded``, saying ``why`` when given; ``ahead``:
        the limit would pass before the next try of a call."""
        limit = f"the time limit of {self.caps.time_limit_s:g} s"
        reason = f"{limit} would pass before the next try" if ahead else f"{limit} is reached"
        self._refuse(f"{reason} ({why})" if why else reason)

    def usage(self) -> dict[str, RoleUsage]:
        return dict(self._usage)

    def total(self) -> RoleUsage:
        out = RoleUsage()
        for u in tuple(self._usage.values()):  # one atomic copy: a display thread reads this
            out = out + u
        return out

    def exceeded(self, *, in_flight: bool = True) -> str | None:
        """Which cap is reached, if any, by what was spent (plus, with ``in_flight``, the
        calls now in flight at their estimates)."""
        caps, total = self.caps, self.total()
        calls = self._in_flight if in_flight else 0
        pending = self._pending if in_flight else Claim()
        if caps.max_calls is not None and total.calls + calls >= caps.max_calls:
            return f"the cap of {caps.max_calls} calls is reached"
        tokens = total.total_tokens + pending.tokens
        if caps.max_tokens_total is not None and tokens >= caps.max_tokens_total:
            return f"the cap of {caps.max_tokens_total} tokens is reached"
        spent = total.cost_usd or 0.0
        if caps.budget_usd is not None and spent + pending.cost_usd >= caps.budget_usd:
            return f"the budget of ${caps.budget_usd:g} is reached (spent ${spent:.4f})"
        if caps.time_limit_s is not None and self.elapsed_s >= caps.time_limit_s:
            return f"the time limit of {caps.time_limit_s:g} s is reached"
        return None

    def reserve(self, claim: Claim | None = None) -> Claim:
        """Claim one backend call now, or raise ``BudgetExceeded`` if a cap is reached
        (counting the calls in flight). Pair with ``release``."""
        claim = claim or Claim()
        reason = self.exceeded()
        if reason is not None:
            self._refuse(reason)
        self._admit(claim)
        return claim

    async def acquire(self, claim: Claim | None = None) -> Claim:
        """Claim one backend call, waiting while only the calls in flight (at their
        estimates) stand in the way; ``BudgetExceeded`` once what was spent reaches a cap.
        Pair with ``release``."""
        claim = claim or Claim()
        while True:
            spent = self.exceeded(in_flight=False)
            if spent is not None:
                self._refuse(spent)
            if self.exceeded() is None:
                self._admit(claim)
                return claim
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # woken when a call in flight settles
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, claim: Claim | None = None) -> None:
        """A claimed call settled: record its usage first (``record_call``), then release."""
        claim = claim or Claim()
        self._in_flight -= 1
        self._pending = Claim(
            self._pending.tokens - claim.tokens, self._pending.cost_usd - claim.cost_usd
        )
        if self._in_flight == 0:
            self._pending = Claim()  # no float drift left behind
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _admit(self, claim: Claim) -> None:
        self._in_flight += 1
        self._pending = Claim(
            self._pending.tokens + claim.tokens, self._pending.cost_usd + claim.cost_usd
        )

    def _refuse(self, reason: str) -> NoReturn:
        if self.stopped is None:
            self.stopped = reason
        raise BudgetExceeded(f"budget: {reason}; raise the cap to continue")

    def _update(self, role: str, **changes: Any) -> None:
        current = self._usage.get(role, RoleUsage())
        self._usage[role] = replace(
            current, **{k: getattr(current, k) + v for k, v in changes.items()}
        )

    def record_call(self, role: str, usage: Usage, price: Price | None) -> None:
        current = self._usage.get(role, RoleUsage())
        cost = (
            None
            if price is None or current.cost_usd is None
            else current.cost_usd + price.cost(usage)
        )
        self._usage[role] = replace(
            current,
            calls=current.calls + 1,
            prompt_tokens=current.prompt_tokens + usage.prompt_tokens,
            completion_tokens=current.completion_tokens + usage.completion_tokens,
            cost_usd=cost,
        )

    def record_cached(self, role: str) -> None:
        self._update(role, cached_calls=1)

    def record_retry(self, role: str) -> None:
        self._update(role, retries=1)

    def record_failure(self, role: str) -> None:
        self._update(role, failures=1)
