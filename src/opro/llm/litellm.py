"""``litellm:MODEL`` — every provider LiteLLM speaks to (Anthropic, Bedrock, Vertex...).

An optional extra: ``pip install 'opro[litellm]'``. LiteLLM's own retries are off; its
exceptions subclass the OpenAI SDK's, so they map onto the error tree as in ``openai``.
Keys come from the provider's usual variables (LiteLLM reads them), or from the variable
named by ``--*-api-key-env``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Required, TypedDict

import openai

from opro.errors import ConfigError, FatalLLMError, MissingDependency, TransientLLMError, redact
from opro.llm.base import LLM, BackendOptions, Identity
from opro.llm.config import redact_url
from opro.llm.limits import parse_retry_after
from opro.llm.litellm_import import import_litellm
from opro.types import Completion, Request, Usage

if TYPE_CHECKING:
    from opro.llm.openai import ChatMessage


class _Params(TypedDict, total=False):
    """``litellm.acompletion``'s keyword arguments, as sent."""

    model: Required[str]
    messages: Required[list[ChatMessage]]
    max_tokens: int
    temperature: float
    timeout: float
    num_retries: int
    stop: list[str]
    seed: int
    api_base: str
    api_key: str


class LiteLLMBackend(LLM):
    def __init__(self, model: str, options: BackendOptions) -> None:
        try:
            litellm = import_litellm()
        except ImportError:
            raise MissingDependency(
                "litellm: models need LiteLLM: pip install 'opro[litellm]'"
            ) from None
        self._litellm = litellm
        self.spec = f"litellm:{model}"
        self.model = model
        self.base_url = options.base_url
        self.timeout_s = options.timeout_s
        self._key: str | None = None
        if options.api_key_env:
            self._key = os.environ.get(options.api_key_env) or None
            if self._key is None:
                raise ConfigError(
                    f"the variable {options.api_key_env} (named by --*-api-key-env) is not set: "
                    f"export {options.api_key_env}=YOUR_KEY"
                )

    def identity(self) -> Identity:
        return {"spec": self.spec, "base_url": self.base_url}

    def secrets(self) -> tuple[str, ...]:
        return (self._key,) if self._key else ()

    async def complete(self, request: Request) -> Completion:
        messages: list[ChatMessage] = []
        if request.system is not None:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        params: _Params = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": self.timeout_s,
            "num_retries": 0,
        }
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.derived_seed()
        if self.base_url:
            params["api_base"] = self.base_url
        if self._key:
            params["api_key"] = self._key
        try:
            response = await self._litellm.acompletion(**params)
        except Exception as exc:  # LiteLLM's every failure: one line
            raise self._error(exc) from None
        # A malformed reply (no choices, no message, a null content) is worth retrying, as
        # a 500 is, and is never cached (see opro.llm.openai).
        choices = getattr(response, "choices", None)
        choice = choices[0] if isinstance(choices, list) and choices else None
        text = getattr(getattr(choice, "message", None), "content", None)
        if not isinstance(text, str):
            raise TransientLLMError(f"{self.spec}: a malformed reply (no answer text)")
        usage = getattr(response, "usage", None)
        tokens = [getattr(usage, n, None) for n in ("prompt_tokens", "completion_tokens")]
        finish = getattr(choice, "finish_reason", None)
        return Completion(
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            usage=Usage(*(t if isinstance(t, int) and t >= 0 else 0 for t in tokens)),
            model=getattr(response, "model", "") or self.model,
        )

    def _error(self, exc: Exception) -> TransientLLMError | FatalLLMError:
        """LiteLLM's exception as opro's: one line with its cause, never its traceback.
        LiteLLM reports a refused connection and a missing key as an HTTP 500 (retried
        in vain): told apart by the exceptions it wraps."""
        detail = self._detail(exc)
        chain = _chain(exc)
        where = redact_url(self.base_url) if self.base_url else "the provider"
        refused = next((e for e in reversed(chain) if isinstance(e, OSError)), None)
        if isinstance(exc, openai.APITimeoutError):
            return TransientLLMError(f"{self.spec}: {detail}")
        if refused is not None or any(isinstance(e, openai.APIConnectionError) for e in chain):
            cause = detail if refused is None else self._detail(refused)
            if refused is not None and refused.errno:  # "Connection refused", not asyncio's
                cause = os.strerror(refused.errno)
            return TransientLLMError(f"{self.spec}: cannot connect to {where} ({cause})")
        if any(type(e) is openai.OpenAIError and "credential" in str(e) for e in chain):
            return FatalLLMError(
                f"{self.spec}: no API key for {where}: set the provider's variable (e.g. "
                "OPENAI_API_KEY) or name one with --*-api-key-env"
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in (408, 409, 429) or status >= 500:
                return TransientLLMError(
                    f"{self.spec}: HTTP {status} ({detail})",
                    retry_after=parse_retry_after(exc.response.headers),
                )
            return FatalLLMError(f"{self.spec}: HTTP {status}: {detail}")
        return FatalLLMError(f"{self.spec}: {type(exc).__name__}: {detail}")

    def _detail(self, exc: BaseException) -> str:
        """``exc``'s message on one line, cut before any traceback LiteLLM put in it."""
        text = str(exc).split("Traceback (most recent call last)", 1)[0]
        return redact(" ".join(text.split())[:300], self.secrets()) or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 20:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found
