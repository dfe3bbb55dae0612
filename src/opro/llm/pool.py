"""Several servers of one model as one backend: replicas, least busy first.

A role that names several base URLs (``--scorer-base-url A --scorer-base-url B``: vLLM or
llama.cpp servers serving the same model) gets this backend instead of one server's. It
holds one plain backend per server (``openai:`` — opro's own HTTP client — or ``litellm:``)
and:

- sends each request to the server with the fewest requests in flight (ties in turn), so a
  faster replica takes more;
- on a failure worth retrying (refused or dropped connection, timeout, 429, 5xx, a
  malformed reply) puts that server in cooldown for ``COOLDOWN_S`` and sends the request
  again at once to another one; only when every server has failed (or is cooling down)
  does the error reach the stack, whose retries back off and send it again, after the
  first cooldown ends at the earliest;
- raises at once what no server can fix (a rejected key, an unknown model);
- keeps the role's cache, budget and concurrency limit one (``stack`` wraps this backend
  like any other); the cache key names the model, not the server that answered.

Why not LiteLLM's Router, which this used to be: its CPU cost per request capped a role at
about 25 requests/s however many servers it had (benchmarks/scaling.py,
docs/results/benchmarks.md); choosing a server here costs microseconds, so a pool costs
what opro's HTTP path costs per call.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping

from opro.errors import FatalLLMError, TransientLLMError, Unreachable
from opro.llm.base import LLM, Identity
from opro.types import Completion, Request

log = logging.getLogger(__name__)
COOLDOWN_S = 10.0
"""Seconds a failing server is left out before it is tried again."""


class PoolBackend(LLM):
    """One model served by every server of ``members`` (base URL → that server's backend,
    built by ``opro.llm.registry``)."""

    def __init__(self, spec: str, members: Mapping[str, LLM]) -> None:
        self.spec = spec
        self.endpoints = tuple(members)
        self.members = list(members.values())
        self.api = self.members[0].api
        self._busy = [0] * len(self.members)
        self._cool_until = [0.0] * len(self.members)
        self._turn = 0
        self._answered_once = False
        self.served: Counter[str] = Counter()
        """Completions per server URL (logged at ``aclose``)."""

    def identity(self) -> Identity:
        """The model and API, not the servers: any replica's answer is the model's."""
        return {"spec": self.spec, "api": self.api, "servers": "pool"}

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for member in self.members for s in member.secrets())

    async def complete(self, request: Request) -> Completion:
        tried: set[int] = set()
        last: FatalLLMError | TransientLLMError | None = None
        while (i := self._choose(tried)) is not None:
            tried.add(i)
            self._busy[i] += 1
            try:
                completion = await self.members[i].complete(request)
            except (TransientLLMError, Unreachable) as exc:
                self._cool_until[i] = time.monotonic() + COOLDOWN_S
                last = exc
                log.info("%s: %s failed, cooling down (%s)", self.spec, self.endpoints[i], exc)
                continue
            finally:
                self._busy[i] -= 1
            self._answered_once = True
            self.served[self.endpoints[i]] += 1
            return completion
        raise self._all_failed(last)

    def _choose(self, tried: set[int]) -> int | None:
        """The least busy server not yet tried for this request and not cooling down (ties:
        the next in turn); None when there is none."""
        now = time.monotonic()
        best: int | None = None
        n = len(self.members)
        for k in range(n):
            i = (self._turn + k) % n
            if i in tried or self._cool_until[i] > now:
                continue
            if best is None or self._busy[i] < self._busy[best]:
                best = i
        if best is not None:
            self._turn = (best + 1) % n
        return best

    def _all_failed(self, last: FatalLLMError | TransientLLMError | None) -> LLMFailure:
        if isinstance(last, Unreachable) and not self._answered_once:
            return Unreachable(
                f"cannot connect to any of {', '.join(self.endpoints)}: start the servers, "
                "or fix --*-base-url"
            )
        wait = max(0.0, min(self._cool_until) - time.monotonic())
        if last is None:  # every server was cooling down already
            return TransientLLMError(
                f"{self.spec}: every server is cooling down after failures", retry_after=wait
            )
        after = last.retry_after if isinstance(last, TransientLLMError) else None
        return TransientLLMError(
            f"{self.spec}: every server failed (last: {last})",
            retry_after=max(wait, after or 0.0) or None,
        )

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()
        if self.served:
            spread = ", ".join(f"{url} {n}" for url, n in sorted(self.served.items()))
            log.info("%s: completions per server: %s", self.spec, spread)


LLMFailure = FatalLLMError | TransientLLMError
