"""One role's model (scorer, optimizer...) as a user configures it: validated, frozen, and
safe to write to a run dir (it names the environment variable holding the key, never the
key). Turns into the option values the LLM layer is built from (``BackendOptions``,
``StackOptions``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opro.llm.base import BackendOptions
from opro.llm.limits import RetryPolicy
from opro.llm.registry import split_spec
from opro.llm.stack import StackOptions
from opro.llm.usage import Price

# Calls in flight per role when not set: the embedded model queues them itself (and orders
# them to share its KV cache), servers take many, hosted APIs rate-limit.
DEFAULT_CONCURRENCY = {"local": 64, "fake": 64, "openai": 16, "litellm": 8}
DEFAULT_MODEL = "local:gemma3-270m"
POOLED = ("openai", "litellm")
"""The backends whose role may name several base URLs (``opro.llm.pool``)."""


class LLMConfig(BaseModel):
    """One role's model and how to reach it. A bare spec string is accepted where an
    ``LLMConfig`` is expected (``"openai:gpt-4o-mini"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    spec: str = Field(
        DEFAULT_MODEL,
        description="openai:MODEL, litellm:MODEL, local:gemma3-270m, local:smollm2, "
        "local:FILE.gguf",
    )
    base_url: str | tuple[str, ...] | None = Field(
        None,
        description="OpenAI-compatible server URL (default $OPENAI_BASE_URL); several: replicas "
        "of one model, each request to the least busy",
    )
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the API key (default OPENAI_API_KEY)",
    )
    api: Literal["chat", "completion"] | None = Field(
        None, description="chat (default for hosted and instruct models) or plain completion"
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        description="calls in flight at once (default: 16 servers, 8 litellm, 64 local; times "
        "the number of base URLs)",
    )
    timeout_s: float = Field(120.0, gt=0, description="seconds per request before it is retried")
    max_retries: int = Field(6, ge=0, description="retries of a 429/5xx/timeout before giving up")
    price: tuple[float, float] | None = Field(
        None, description="dollars per million input,output tokens (overrides the known price)"
    )
    n_ctx: int = Field(2048, ge=128, description="context window of an embedded model")

    @model_validator(mode="before")
    @classmethod
    def _from_spec_string(cls, data: object) -> object:
        return {"spec": data} if isinstance(data, str) else data

    @field_validator("spec")
    @classmethod
    def _known_backend(cls, spec: str) -> str:
        split_spec(spec)  # raises ConfigError with a "did you mean"
        return spec

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_or_several_urls(cls, value: object) -> object:
        """One URL stays a string; a list of them (a repeated flag) a tuple of distinct
        http(s) URLs, or one string when it holds only one."""
        if not isinstance(value, list | tuple):
            return value
        urls = [str(url).rstrip("/") for url in value]
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} must start with http:// or https://")
        if len(set(urls)) != len(urls):
            raise ValueError("a base URL is repeated: give each server once")
        return urls[0] if len(urls) == 1 else tuple(urls)

    @model_validator(mode="after")
    def _several_urls_need_a_server_backend(self) -> LLMConfig:
        if self.endpoints and self.backend not in POOLED:
            raise ValueError(
                f"several base URLs need an openai: or litellm: model, not {self.spec!r}"
            )
        return self

    @field_validator("price")
    @classmethod
    def _non_negative(cls, price: tuple[float, float] | None) -> tuple[float, float] | None:
        if price is not None and min(price) < 0:
            raise ValueError("a price must not be negative")
        return price

    @property
    def backend(self) -> str:
        return split_spec(self.spec)[0]

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The servers a role's requests are spread over; empty for one (or none)."""
        return self.base_url if isinstance(self.base_url, tuple) else ()

    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            base_url=self.base_url if isinstance(self.base_url, str) else None,
            endpoints=self.endpoints,
            api_key_env=self.api_key_env,
            api=self.api,
            timeout_s=self.timeout_s,
            n_ctx=self.n_ctx,
        )

    def stack_options(self, role: str, seed: int = 0) -> StackOptions:
        return StackOptions(
            role=role,
            concurrency=self.concurrency
            or DEFAULT_CONCURRENCY.get(self.backend, 8) * max(len(self.endpoints), 1),
            retry=RetryPolicy(max_retries=self.max_retries),
            price=Price(*self.price) if self.price else None,
            retry_seed=seed,
        )
