"""Model specs → backends: ``openai:gpt-4o-mini`` → ``OpenAIBackend("gpt-4o-mini", options)``.

A backend is registered by its prefix, an entry point of the ``opro.backends`` group (opro's
own are below, named in its pyproject.toml; a plugin's in its own: see ``opro.plugins``)
that names its ``BackendInfo``: what ``opro models`` shows and what is known before one is
built. Its class is imported only when a backend is built, so an absent extra costs
nothing and listing the backends imports none of them. An unknown prefix gets a "did you
mean" error listing what exists.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from opro.errors import ConfigError
from opro.llm.base import LLM, BackendOptions
from opro.plugins import BACKEND_GROUP, entries, every, loaded
from opro.types import Api


@dataclass(frozen=True)
class BackendInfo:
    """A backend as known before one is built: the object its entry point names."""

    prefix: str
    target: str
    """``module:Class`` of its ``LLM``, built as ``Class(model_name, options)``."""
    summary: str
    example: str
    concurrency: int = 8
    """Calls in flight per role when the role does not say."""
    pooled: bool = False
    """A role may name several base URLs: replicas of one model (``opro.llm.pool``)."""
    free: bool = False
    """Its calls cost nothing (computed here): no price is needed under a dollar cap."""
    preload: bool = False
    """Its module is light: a sweep's worker processes import it before they fork."""
    code_in_name: bool = False
    """A model name ``MODULE:FUNCTION`` is code it imports (resumed only when trusted)."""
    embedded: bool = False
    """It computes on this machine's CPU (a run's time can be told before it starts)."""


# Concurrency: the embedded model queues calls itself (and orders them to share its KV
# cache), servers take many, hosted APIs rate-limit.
OPENAI = BackendInfo(
    "openai",
    "opro.llm.openai:OpenAIBackend",
    "OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio); "
    "key from OPENAI_API_KEY, URL from --*-base-url or OPENAI_BASE_URL",
    "openai:gpt-4o-mini",
    concurrency=16,
    pooled=True,
    preload=True,
)
LITELLM = BackendInfo(
    "litellm",
    "opro.llm.litellm:LiteLLMBackend",
    "any provider LiteLLM supports (pip install 'opro[litellm]')",
    "litellm:anthropic/claude-3-5-haiku-latest",
    pooled=True,
)
LOCAL = BackendInfo(
    "local",
    "opro.llm.local:LocalBackend",
    "embedded llama.cpp model in this process, offline (pip install 'opro[local]')",
    "local:gemma3-270m",
    concurrency=64,
    free=True,
    embedded=True,
)
FAKE = BackendInfo(
    "fake",
    "opro.llm.fake:FakeLLM",
    "test double: fake:echo, or fake:MODULE:FUNCTION for a Python function",
    "fake:echo",
    concurrency=64,
    free=True,
    preload=True,
    code_in_name=True,
)


def backends() -> dict[str, BackendInfo]:
    """Every registered backend whose info loads, by prefix (a plugin's that does not is
    left out, said once)."""
    return every(BACKEND_GROUP, BackendInfo, "prefix")


def backend_info(prefix: str) -> BackendInfo:
    """The info of a registered backend (``split_spec`` checks a prefix first)."""
    return loaded(entries(BACKEND_GROUP)[prefix], BackendInfo, "prefix")


def split_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o"`` → ``("openai", "gpt-4o")``, with a clear error when malformed."""
    prefix, sep, name = spec.partition(":")
    registered = entries(BACKEND_GROUP)
    known = ", ".join(f"{p}:" for p in registered)
    if not sep or not prefix:
        raise ConfigError(
            f"model spec {spec!r} has no backend prefix: write e.g. local:gemma3-270m or "
            f"openai:gpt-4o-mini (backends: {known})"
        )
    if prefix not in registered:
        close = difflib.get_close_matches(prefix, list(registered), n=1)
        hint = f"did you mean {close[0]}:{name}? " if close else ""
        raise ConfigError(f"unknown backend {prefix!r} in {spec!r}: {hint}backends: {known}")
    if not name:
        raise ConfigError(
            f"model spec {spec!r} names no model: write e.g. {backend_info(prefix).example}"
        )
    return prefix, name


def create_backend(spec: str, options: BackendOptions | None = None) -> LLM:
    """Build the bare backend for ``spec`` (no cache, retries or limits: see ``stack``); with
    several ``options.endpoints``, one backend spreading requests over them."""
    prefix, name = split_spec(spec)
    options = options or BackendOptions()
    info = backend_info(prefix)
    if options.endpoints:  # replicas of one model: spread by opro.llm.pool
        if not info.pooled or len(options.endpoints) < 2:
            pooled = " or ".join(f"{p}:" for p, i in backends().items() if i.pooled)
            raise ConfigError(f"{spec}: a pool needs a {pooled} model and 2 URLs or more")
        from opro.llm.pool import PoolBackend

        one = [replace(options, base_url=url, endpoints=()) for url in options.endpoints]
        return PoolBackend(spec, {o.base_url or "": create_backend(spec, o) for o in one})
    entry = entries(BACKEND_GROUP)[prefix]
    backend: LLM = replace(entry, target=info.target).load()(name, options)
    return backend


async def probe_backend(spec: str, options: BackendOptions | None = None) -> Api:
    """Build (and so check) the backend for ``spec``, then close it; the prompt API it uses.

    A missing key, an unknown embedded model or a missing extra fail here, before a command
    writes anything. Loads no weights and makes no call."""
    backend = create_backend(spec, options)
    try:
        return backend.api
    finally:
        await backend.aclose()
