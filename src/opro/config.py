"""Validated configuration at the boundary: what a user may set, checked once, then frozen.

Pydantic models with ``extra="forbid"``; they turn into the frozen option values the inner
layers take (``BackendOptions``, ``StackOptions``, ``Caps``). A config never holds an API
key — only the *name* of the variable that holds it — so it can be written to a run dir.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opro.budget import Caps, Price
from opro.errors import ConfigError
from opro.llm.base import BackendOptions
from opro.llm.limits import RetryPolicy
from opro.llm.registry import split_spec
from opro.llm.stack import StackOptions

# Calls in flight per role when not set: the embedded model queues them itself (and orders
# them to share its KV cache), servers take many, hosted APIs rate-limit.
DEFAULT_CONCURRENCY = {"local": 64, "fake": 64, "openai": 16, "litellm": 8}

M = TypeVar("M", bound=BaseModel)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMConfig(_Frozen):
    """One role's model (scorer, optimizer...) and how to reach it."""

    spec: str
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api: Literal["chat", "completion"] | None = None
    concurrency: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0)
    price: tuple[float, float] | None = None
    """Dollars per million (input, output) tokens; overrides the known list price."""
    n_ctx: int = Field(default=2048, ge=128)

    @field_validator("spec")
    @classmethod
    def _known_backend(cls, spec: str) -> str:
        split_spec(spec)  # raises ConfigError with a "did you mean"
        return spec

    @property
    def backend(self) -> str:
        return split_spec(self.spec)[0]

    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            api=self.api,
            timeout_s=self.timeout_s,
            n_ctx=self.n_ctx,
        )

    def stack_options(self, role: str, seed: int = 0) -> StackOptions:
        return StackOptions(
            role=role,
            concurrency=self.concurrency or DEFAULT_CONCURRENCY.get(self.backend, 8),
            retry=RetryPolicy(max_retries=self.max_retries),
            price=Price(*self.price) if self.price else None,
            retry_seed=seed,
        )


class BudgetConfig(_Frozen):
    max_calls: int | None = Field(default=None, ge=1)
    max_tokens_total: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    time_limit_s: float | None = Field(default=None, gt=0)

    def caps(self) -> Caps:
        return Caps(self.max_calls, self.max_tokens_total, self.budget_usd, self.time_limit_s)


def validated(model: type[M], flags: dict[str, str] | None = None, **values: Any) -> M:
    """Build ``model`` or raise a one-line ``ConfigError`` naming the offending flag."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        flag = (flags or {}).get(field, field)
        raise ConfigError(f"{flag}: {first['msg']} (got {first.get('input')!r})") from None
