"""The one contract every LLM backend implements, and the options a backend is built from.

A backend turns a ``Request`` into a ``Completion`` with one async method and nothing
else: caching, retries, concurrency limits and usage accounting are wrappers that live
in their own modules (``cache``, ``limits``, ``budget``) and are stacked by ``stack``.
A backend signals failures with ``TransientLLMError`` (worth retrying) or
``FatalLLMError`` (not), and never retries by itself.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import JsonValue

from opro.types import Api, Completion, Request

T = TypeVar("T")

Identity = dict[str, JsonValue]
"""What, besides the request, determines a backend's answers (``LLM.identity``): JSON, the
cache key's other half."""
TokenLimit = Literal["max_tokens", "max_completion_tokens"]
"""The request field that caps an answer's length (OpenAI-compatible servers)."""


@dataclass(frozen=True)
class BackendOptions:
    """What a backend may need besides its model name; each backend reads its own fields.

    ``api_key_env`` names the environment variable holding the key: the key itself is
    never stored in an options object, a config file or the run directory.
    """

    base_url: str | None = None
    endpoints: tuple[str, ...] = ()
    """Several base URLs serving one model (replicas): requests are spread over them
    (``opro.llm.pool``); empty for one server, whose URL is ``base_url``."""
    api_key_env: str | None = None
    api: Api | None = None
    timeout_s: float = 120.0
    n_ctx: int = 2048
    n_threads: int | None = None
    token_limit: TokenLimit | None = None
    """The request field that caps the answer's length (OpenAI-compatible servers):
    ``max_tokens``, or ``max_completion_tokens`` (reasoning models); None: ``max_tokens``,
    switched to ``max_completion_tokens`` when the server asks for it."""


class LLM(abc.ABC):
    """An LLM reachable through ``complete``. ``spec`` is how the user named it."""

    spec: str
    api: Api = "chat"
    """How prompts reach the model: one user turn of a chat, or raw text to continue (a
    pre-trained model). Prompt builders read it, e.g. the scorer's Q/A pattern."""

    @abc.abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Answer one request, or raise an ``LLMError``."""

    def identity(self) -> Identity:
        """What, besides the request, determines the answer: the cache key's other half.

        Never includes a secret. Backends add their base URL, API style, model file...
        """
        return {"spec": self.spec}

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be written anywhere (API keys), for redaction."""
        return ()

    async def aclose(self) -> None:
        """Release connections, models, threads."""
        return None


async def gather_or_cancel(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """All results in order; on the first error cancel the rest and raise that error."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
