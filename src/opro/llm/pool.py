"""Several servers of one model as one backend: replicas spread by LiteLLM's Router.

A role that names several base URLs (``--scorer-base-url A --scorer-base-url B``: vLLM or
llama.cpp servers serving the same model) gets this backend instead of one server's:

- each request goes to the server with the fewest requests in flight (the Router's
  ``least-busy`` strategy), so a faster replica takes more;
- a failure (refused or dropped connection, timeout, 429, 5xx) puts that server in cooldown
  for ``COOLDOWN_S`` and the request is sent again at once to another one (the Router's
  retries: one per other server); only when every server fails does the error reach the
  stack, whose retries back off and send it again;
- the role's cache, budget and concurrency limit stay one (``stack`` wraps this backend like
  any other); the cache key names the model, not the server that answered.

Why LiteLLM's Router rather than balancing by hand: it is maintained, it already has least-busy
routing, cooldowns and failover across deployments, and it is already opro's ``litellm``
extra. Its cost, measured by ``benchmarks/scaling.py`` (docs/results/benchmarks.md): a slow first
import and a few milliseconds of CPU per request. One server keeps the plain OpenAI backend.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from typing import Any

import openai

from opro.errors import ConfigError, FatalLLMError, MissingDependency, TransientLLMError, redact
from opro.llm.base import LLM, BackendOptions
from opro.llm.limits import parse_retry_after
from opro.llm.litellm_import import import_litellm
from opro.llm.registry import split_spec
from opro.types import Completion, Request, Usage

log = logging.getLogger(__name__)
GROUP = "opro"
"""The Router's model group: every server of the pool."""
COOLDOWN_S = 10.0
"""Seconds a failing server is left out before it is tried again."""
NO_KEY = "no-key"  # local servers accept any key; the client insists on one
TRANSIENT_STATUS = frozenset({408, 409, 429})


def _router_class() -> Any:
    try:
        import_litellm()  # offline and quiet
        from litellm.router import Router
    except ImportError:
        raise MissingDependency(
            "several base URLs are balanced by LiteLLM's Router: pip install 'opro[litellm]' "
            "(or give one --*-base-url)"
        ) from None
    return Router


class PoolBackend(LLM):
    """``openai:MODEL`` or ``litellm:MODEL`` served by every URL of ``options.endpoints``."""

    def __init__(self, spec: str, options: BackendOptions) -> None:
        prefix, model = split_spec(spec)
        if prefix not in ("openai", "litellm") or len(options.endpoints) < 2:
            raise ConfigError(f"{spec}: a pool needs an openai: or litellm: model, 2 URLs or more")
        self.spec = spec
        self.api = "chat" if prefix == "litellm" else options.api or "chat"  # as LiteLLMBackend
        self.endpoints = options.endpoints
        self._key = self._api_key(prefix, options.api_key_env)
        if prefix == "litellm":
            routed = model
        else:
            routed = ("openai/" if self.api == "chat" else "text-completion-openai/") + model
        deployments = []
        for url in self.endpoints:
            params = {"model": routed, "api_base": url, "timeout": options.timeout_s}
            params |= {"max_retries": 0} | ({"api_key": self._key} if self._key else {})
            deployments.append({"model_name": GROUP, "litellm_params": params})
        self._router = _router_class()(
            model_list=deployments,
            routing_strategy="least-busy",
            num_retries=len(self.endpoints) - 1,
            retry_after=0,
            allowed_fails=0,
            cooldown_time=COOLDOWN_S,
        )
        self.served: Counter[str] = Counter()
        """Completions per server URL (logged at ``aclose``)."""
        self._connected_once = False

    @staticmethod
    def _api_key(prefix: str, key_env: str | None) -> str | None:
        if key_env:
            key = os.environ.get(key_env, "")
            if not key:
                raise ConfigError(
                    f"the variable {key_env} (named by --*-api-key-env) is not set: "
                    f"export {key_env}=YOUR_KEY"
                )
            return key
        if prefix == "litellm":
            return None  # LiteLLM reads the provider's usual variable
        return os.environ.get("OPENAI_API_KEY") or NO_KEY

    def identity(self) -> dict[str, Any]:
        """The model and API, not the servers: any replica's answer is the model's."""
        return {"spec": self.spec, "api": self.api, "servers": "pool"}

    def secrets(self) -> tuple[str, ...]:
        return (self._key,) if self._key and self._key != NO_KEY else ()

    async def complete(self, request: Request) -> Completion:
        params: dict[str, Any] = {
            "model": GROUP,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.derived_seed()
        if request.grammar is not None:
            params["extra_body"] = {"grammar": request.grammar}  # llama.cpp server
        try:
            if self.api == "chat":
                messages = [{"role": "system", "content": request.system}] if request.system else []
                messages.append({"role": "user", "content": request.prompt})
                response = await self._router.acompletion(messages=messages, **params)
                choice = response.choices[0]
                text = choice.message.content or ""
            else:
                prompt = request.prompt
                if request.system is not None:
                    prompt = request.system + "\n\n" + prompt
                response = await self._router.atext_completion(prompt=prompt, **params)
                choice = response.choices[0]
                text = choice.text or ""
        except Exception as exc:
            raise self._mapped(exc) from None
        self._connected_once = True
        hidden = getattr(response, "_hidden_params", None) or {}
        self.served[str(hidden.get("api_base") or "?")] += 1
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            finish_reason=choice.finish_reason,
            usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)
            if usage
            else Usage(),
            model=getattr(response, "model", "") or self.spec,
        )

    def _mapped(self, exc: Exception) -> Exception:
        """The Router's last error, once every server it tried failed, on the error tree."""
        detail = redact(" ".join(str(exc).split())[:300], self.secrets())
        status = getattr(exc, "status_code", None)
        if _unreachable(exc) and not self._connected_once:
            return FatalLLMError(
                f"cannot connect to any of {', '.join(self.endpoints)}: start the servers, "
                "or fix --*-base-url"
            )
        failed = TransientLLMError(f"{self.spec}: every server failed ({detail})")
        if _unreachable(exc) or isinstance(exc, openai.APIConnectionError):  # timeouts too
            return failed
        if not isinstance(exc, openai.APIError | ValueError) or not isinstance(status, int):
            return failed if isinstance(exc, openai.APIError) else exc  # else a bug: no retry
        if status in TRANSIENT_STATUS or status >= 500:
            cooldown = getattr(exc, "cooldown_time", None)  # every server is in cooldown
            retry_after = float(cooldown) if isinstance(cooldown, int | float) else None
            response = getattr(exc, "response", None)
            if retry_after is None and response is not None:
                retry_after = parse_retry_after(response.headers)
            return TransientLLMError(
                f"{self.spec}: HTTP {status} from every server ({detail})", retry_after=retry_after
            )
        return FatalLLMError(f"{self.spec}: the servers rejected the request ({status}): {detail}")

    async def aclose(self) -> None:
        for _ in range(3):  # let the Router's bookkeeping tasks (in-flight counts) settle
            await asyncio.sleep(0)
        if self.served:
            spread = ", ".join(f"{url} {n}" for url, n in sorted(self.served.items()))
            log.info("%s: completions per server: %s", self.spec, spread)


def _unreachable(exc: BaseException) -> bool:
    """Whether no server could be reached at all. LiteLLM reports a refused connection as a
    500 whose cause (when it kept it) is the OpenAI client's connection error, and whose text
    is that error's, ``Connection error``."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, openai.APITimeoutError):
            return False
        if isinstance(seen, openai.APIConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Connection error" in str(exc)
