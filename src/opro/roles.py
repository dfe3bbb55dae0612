"""Each role's model for a run: a backend built once per distinct model (two roles on one
embedded model share its weights and queue), wrapped per run in the managed stack (cache,
budget, retries: ``opro.llm.stack``)."""

from __future__ import annotations

from opro.llm.base import LLM, BackendOptions
from opro.llm.cache import open_cache
from opro.llm.registry import create_backend
from opro.llm.stack import ManagedLLM
from opro.llm.usage import Budget
from opro.problems.spec import RunSpec
from opro.runlog import CacheConfig
from opro.types import Api


class Models:
    """Each role's backend, built once per distinct model (two roles on one embedded model
    share its weights and queue), and a managed LLM per role for each run's budget."""

    def __init__(self, spec: RunSpec, cache: CacheConfig) -> None:
        self.roles = spec.roles()
        self.seed = spec.engine.seed
        self.cache = open_cache(cache.path or None, enabled=cache.enabled)
        self._backends: dict[tuple[str, BackendOptions], LLM] = {}
        self.bare: dict[str, LLM] = {}
        for role, config in self.roles.items():
            key = (config.spec, config.backend_options())
            if key not in self._backends:
                self._backends[key] = create_backend(config.spec, config.backend_options())
            self.bare[role] = self._backends[key]

    @property
    def apis(self) -> dict[str, Api]:
        return {role: llm.api for role, llm in self.bare.items()}

    def managed(self, budget: Budget) -> dict[str, ManagedLLM]:
        return {
            role: config.build(
                role, self.seed, cache=self.cache, budget=budget, backend=self.bare[role]
            )
            for role, config in self.roles.items()
        }

    async def __aenter__(self) -> Models:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for backend in self._backends.values():
            await backend.aclose()
