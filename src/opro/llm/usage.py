"""Usage and cost per role, and the caps that stop a run cleanly.

One ``Budget`` is shared by every role of a run (scorer, optimizer...). Before each call
that would reach a backend, ``reserve`` checks the caps and raises ``BudgetExceeded`` if
one is reached; the engine catches it, saves its state and stops. Cached replays cost
nothing and count apart. Usage can be restored from a run directory, so caps hold across
``opro resume``. ``Caps`` is the validated, frozen value a user sets (and a run dir keeps).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opro.errors import BudgetExceeded, ConfigError
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
    """The price of a model spec when known: embedded and fake models are free; others from
    LiteLLM's maintained price map when LiteLLM is installed, else from ``KNOWN_PRICES``."""
    prefix, _, name = spec.partition(":")
    if prefix in ("local", "fake"):
        return FREE
    return litellm_price(name) or KNOWN_PRICES.get(name.rsplit("/", 1)[-1])


def litellm_price(name: str) -> Price | None:
    """``name`` (``gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``) in LiteLLM's price
    map, per million tokens; None without LiteLLM or without the model."""
    try:
        import litellm
    except ImportError:
        return None
    table = getattr(litellm, "model_cost", None)
    if not isinstance(table, dict):
        return None
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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_calls: int | None = Field(default=None, ge=1)
    """LLM calls that reach a backend (cached replays are free)."""
    max_tokens_total: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    time_limit_s: float | None = Field(default=None, gt=0)


@dataclass(frozen=True)
class RoleUsage:
    calls: int = 0
    """Calls that reached a backend and succeeded."""
    cached_calls: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    """None when the price of the role's model is unknown."""

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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoleUsage:
        return cls(**data)


class Budget:
    """Caps over all roles plus running usage per role."""

    def __init__(self, caps: Caps | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.caps = caps or Caps()
        self._clock = clock
        self._started = clock()
        self._elapsed_before = 0.0
        self._usage: dict[str, RoleUsage] = {}
        self._in_flight = 0

    def restore(self, usage: dict[str, RoleUsage], elapsed_s: float) -> None:
        """Continue from a saved run: caps count what earlier sessions spent."""
        self._usage = dict(usage)
        self._elapsed_before = elapsed_s

    @property
    def elapsed_s(self) -> float:
        return self._elapsed_before + self._clock() - self._started

    def usage(self) -> dict[str, RoleUsage]:
        return dict(self._usage)

    def total(self) -> RoleUsage:
        out = RoleUsage()
        for u in tuple(self._usage.values()):  # one atomic copy: a display thread reads this
            out = out + u
        return out

    def exceeded(self) -> str | None:
        """Which cap is reached, if any (counting calls now in flight)."""
        caps, total = self.caps, self.total()
        if caps.max_calls is not None and total.calls + self._in_flight >= caps.max_calls:
            return f"the cap of {caps.max_calls} calls is reached"
        if caps.max_tokens_total is not None and total.total_tokens >= caps.max_tokens_total:
            return f"the cap of {caps.max_tokens_total} tokens is reached"
        if caps.budget_usd is not None and (total.cost_usd or 0.0) >= caps.budget_usd:
            spent = total.cost_usd or 0.0
            return f"the budget of ${caps.budget_usd:g} is reached (spent ${spent:.4f})"
        if caps.time_limit_s is not None and self.elapsed_s >= caps.time_limit_s:
            return f"the time limit of {caps.time_limit_s:g} s is reached"
        return None

    def reserve(self) -> None:
        """Claim one backend call, or raise ``BudgetExceeded``. Pair with ``release``."""
        reason = self.exceeded()
        if reason is not None:
            raise BudgetExceeded(f"budget: {reason}; raise the cap to continue")
        self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1

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
