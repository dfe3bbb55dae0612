"""Spec strings → backend classes, imported lazily so that an absent extra costs nothing.

``openai:gpt-4o-mini`` → ``OpenAIBackend("gpt-4o-mini", options)``. An unknown prefix gets
a "did you mean" error listing what exists.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from opro.errors import ConfigError
from opro.llm.base import LLM, BackendOptions
from opro.types import Api


@dataclass(frozen=True)
class BackendInfo:
    prefix: str
    target: str
    """``module:Class``, imported on first use."""
    summary: str
    example: str


BACKENDS: dict[str, BackendInfo] = {
    info.prefix: info
    for info in (
        BackendInfo(
            "openai",
            "opro.llm.openai:OpenAIBackend",
            "OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio); "
            "key from OPENAI_API_KEY, URL from --*-base-url or OPENAI_BASE_URL",
            "openai:gpt-4o-mini",
        ),
        BackendInfo(
            "litellm",
            "opro.llm.litellm:LiteLLMBackend",
            "any provider LiteLLM supports (pip install 'opro[litellm]')",
            "litellm:anthropic/claude-3-5-haiku-latest",
        ),
        BackendInfo(
            "local",
            "opro.llm.local:LocalBackend",
            "embedded llama.cpp model in this process, offline (pip install 'opro[local]')",
            "local:gemma3-270m",
        ),
        BackendInfo(
            "fake",
            "opro.llm.fake:FakeLLM",
            "test double: fake:echo, or fake:MODULE:FUNCTION for a Python function",
            "fake:echo",
        ),
    )
}


def split_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o"`` → ``("openai", "gpt-4o")``, with a clear error when malformed."""
    prefix, sep, name = spec.partition(":")
    known = ", ".join(f"{p}:" for p in BACKENDS)
    if not sep or not prefix:
        raise ConfigError(
            f"model spec {spec!r} has no backend prefix: write e.g. local:gemma3-270m or "
            f"openai:gpt-4o-mini (backends: {known})"
        )
    if prefix not in BACKENDS:
        close = difflib.get_close_matches(prefix, list(BACKENDS), n=1)
        hint = f"did you mean {close[0]}:{name}? " if close else ""
        raise ConfigError(f"unknown backend {prefix!r} in {spec!r}: {hint}backends: {known}")
    if not name:
        raise ConfigError(
            f"model spec {spec!r} names no model: write e.g. {BACKENDS[prefix].example}"
        )
    return prefix, name


def create_backend(spec: str, options: BackendOptions | None = None) -> LLM:
    """Build the bare backend for ``spec`` (no cache, retries or limits: see ``stack``); with
    several ``options.endpoints``, one backend spreading requests over them."""
    prefix, name = split_spec(spec)
    options = options or BackendOptions()
    if options.endpoints:  # replicas of one model: spread by opro.llm.pool
        from opro.llm.pool import PoolBackend

        return PoolBackend(spec, options)
    module_name, _, class_name = BACKENDS[prefix].target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    backend: LLM = cls(name, options)
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
