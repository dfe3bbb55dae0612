"""One role's model (scorer, optimizer...) as a user configures it: validated, frozen, and
safe to write to a run dir (it names the environment variable holding the key, never the
key). Turns into the option values the LLM layer is built from (``BackendOptions``,
``StackOptions``).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opro.errors import ConfigError, unknown_setting
from opro.llm.base import LLM, BackendOptions
from opro.llm.cache import CallCache
from opro.llm.limits import RetryPolicy
from opro.llm.registry import backend_info, backends, split_spec
from opro.llm.stack import ManagedLLM, StackOptions, build_llm
from opro.llm.usage import Budget, Price

DEFAULT_MODEL = "local:gemma3-270m"
REDACTED = "***"
_SECRET_PARAM = re.compile(r"key|token|secret|pass|pwd|sig|auth|cred|session", re.IGNORECASE)
"""Query parameters whose values are taken for secrets (``api-key``, ``access_token``...)."""


def redact_url(url: str) -> str:
    """``url`` with its secrets replaced by ``***``: the user-info of ``user:pass@host`` and
    the values of secret-looking query parameters (``?api-key=...``). What a run dir, a
    cache key or a message may show of a base URL."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(_SECRET_PARAM.search(k) and v for k, v in query):
        pairs = [(k, REDACTED if _SECRET_PARAM.search(k) and v else v) for k, v in query]
        query_text = urllib.parse.urlencode(pairs, safe="*")
    else:
        query_text = parts.query
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query_text))


def url_secrets(url: str) -> tuple[str, ...]:
    """The secret parts of ``url`` that ``redact_url`` hides, for redacting messages."""
    parts = urllib.parse.urlsplit(url)
    found = [parts.netloc.rsplit("@", 1)[0]] if "@" in parts.netloc else []
    if parts.password:
        found.append(parts.password)
    for pair in parts.query.split("&"):  # as written (percent-encoded) and decoded
        name, _, value = pair.partition("=")
        if value and _SECRET_PARAM.search(urllib.parse.unquote_plus(name)):
            found += [value, urllib.parse.unquote_plus(value)]
    return tuple(dict.fromkeys(found))


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
    requests_per_minute: float | None = Field(
        None, gt=0, description="calls started per minute at most (a provider's rate limit)"
    )
    tokens_per_minute: float | None = Field(
        None, gt=0, description="prompt + answer tokens per minute at most (estimated)"
    )
    token_limit: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        None,
        description="the request field capping an answer: max_tokens, or "
        "max_completion_tokens (reasoning models; default: switched to when the server asks)",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_spec_string(cls, data: object) -> object:
        if isinstance(data, dict):  # a misspelled name: a one-line error, "did you mean"
            for name in data:
                if name == "api_key":  # a key would be written to the run dir
                    raise ConfigError(
                        "LLMConfig takes no key: keep it in an environment variable "
                        "(OPENAI_API_KEY by default) and name another with api_key_env"
                    )
                if name not in cls.model_fields:
                    raise unknown_setting(cls.__name__, name, cls.model_fields)
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
        if self.endpoints and not backend_info(self.backend).pooled:
            pooled = " or ".join(f"{p}:" for p, info in backends().items() if info.pooled)
            raise ValueError(f"several base URLs need a {pooled} model, not {self.spec!r}")
        return self

    @field_validator("price")
    @classmethod
    def _non_negative(cls, price: tuple[float, float] | None) -> tuple[float, float] | None:
        if price is not None and min(price) < 0:
            raise ValueError("a price must not be negative")
        return price

    def redacted(self) -> LLMConfig:
        """This config with the secrets of its base URL(s) replaced (see ``redact_url``)."""
        if self.base_url is None:
            return self
        if isinstance(self.base_url, tuple):
            urls = tuple(redact_url(url) for url in self.base_url)
            return self if urls == self.base_url else self.model_copy(update={"base_url": urls})
        if redact_url(self.base_url) == self.base_url:
            return self
        return self.model_copy(update={"base_url": redact_url(self.base_url)})

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
            token_limit=self.token_limit,
        )

    def stack_options(self, role: str, seed: int = 0) -> StackOptions:
        return StackOptions(
            role=role,
            concurrency=self.concurrency
            or backend_info(self.backend).concurrency * max(len(self.endpoints), 1),
            retry=RetryPolicy(max_retries=self.max_retries),
            price=Price(*self.price) if self.price else None,
            retry_seed=seed,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
        )

    def build(
        self,
        role: str,
        seed: int = 0,
        *,
        cache: CallCache | None = None,
        budget: Budget | None = None,
        backend: LLM | None = None,
    ) -> ManagedLLM:
        """This model as ``role``'s LLM stack (cache, budget, retries, limits: ``build_llm``):
        the one way the runner, the API and the CLI build one. ``backend``: one already
        built to share (two roles on one embedded model), which the caller closes."""
        return build_llm(
            self.spec,
            self.backend_options(),
            self.stack_options(role, seed),
            cache=cache,
            budget=budget,
            backend=backend,
        )
