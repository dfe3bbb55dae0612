"""The Python API: the same jobs as the CLI, as functions returning typed values.

Each job has an async form (``a``-prefixed) and a sync wrapper that calls ``asyncio.run``
once. The CLI is a thin layer over these functions.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from opro.budget import Budget, RoleUsage
from opro.config import BudgetConfig, LLMConfig
from opro.llm.cache import CallCache, default_cache_path
from opro.llm.stack import build_llm
from opro.types import Completion, Request


@dataclass(frozen=True)
class Samples:
    """``n`` samples of one prompt, and what they cost."""

    spec: str
    completions: tuple[Completion, ...]
    usage: RoleUsage

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.completions]


def open_cache(cache: Path | str | None, *, enabled: bool = True) -> CallCache | None:
    """The call cache at ``cache`` (default: the user cache dir), or None when disabled."""
    if not enabled:
        return None
    return CallCache(Path(cache) if cache is not None else default_cache_path())


async def acomplete(
    llm: LLMConfig | str,
    prompt: str,
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 256,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
    system: str | None = None,
    grammar: str | None = None,
    cache: CallCache | None = None,
    budget: BudgetConfig | None = None,
) -> Samples:
    """Draw ``n`` samples (sample indices 0..n-1) of ``prompt`` concurrently."""
    config = llm if isinstance(llm, LLMConfig) else LLMConfig(spec=llm)
    shared_budget = Budget((budget or BudgetConfig()).caps())
    model = build_llm(
        config.spec,
        config.backend_options(),
        config.stack_options("llm"),
        cache=cache,
        budget=shared_budget,
    )
    try:
        requests = [
            Request(prompt, max_tokens, temperature, stop, i, seed, system, grammar)
            for i in range(n)
        ]
        completions = await asyncio.gather(*(model.complete(r) for r in requests))
    finally:
        await model.aclose()
    return Samples(config.spec, tuple(completions), shared_budget.total())


def complete(
    llm: LLMConfig | str,
    prompt: str,
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 256,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
    system: str | None = None,
    grammar: str | None = None,
    cache: CallCache | None = None,
    budget: BudgetConfig | None = None,
) -> Samples:
    """Sync form of ``acomplete``."""
    return asyncio.run(
        acomplete(
            llm,
            prompt,
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
            system=system,
            grammar=grammar,
            cache=cache,
            budget=budget,
        )
    )
