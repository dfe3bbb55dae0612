"""``fake:`` doubles for unit tests of the engine — never for judging real behaviour.

- ``fake:echo`` answers with the prompt itself.
- ``fake:MODULE:FUNCTION`` answers with ``FUNCTION(request)`` (a ``str``), e.g.
  ``fake:tests.doubles:garbage``, so that CLI-level tests can script an optimizer.
- In Python: ``FakeLLM.scripted(["a", "b"])`` answers in turn (cycling), and
  ``FakeLLM.from_function(fn)`` wraps any ``Request -> str`` function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from opro.errors import ConfigError
from opro.llm.base import LLM, BackendOptions, Identity
from opro.types import Completion, Request, Usage

Responder = Callable[[Request], str]


class FakeLLM(LLM):
    def __init__(
        self, name: str, options: BackendOptions | None = None, *, fn: Responder | None = None
    ):
        self.spec = f"fake:{name}"
        self.api = (options.api if options else None) or "completion"
        self.requests: list[Request] = []
        self._fn = fn if fn is not None else _resolve(name)
        self._named = fn is None  # a named double is a pure function: cacheable across runs

    @classmethod
    def from_function(cls, fn: Responder, name: str = "function") -> FakeLLM:
        return cls(name, fn=fn)

    @classmethod
    def scripted(cls, outputs: Sequence[str], name: str = "scripted") -> FakeLLM:
        if not outputs:
            raise ValueError("scripted outputs must not be empty")
        state = {"i": 0}

        def next_output(_request: Request) -> str:
            text = outputs[state["i"] % len(outputs)]
            state["i"] += 1
            return text

        return cls(name, fn=next_output)

    def identity(self) -> Identity:
        return {"spec": self.spec} if self._named else {"spec": self.spec, "instance": id(self)}

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        text = self._fn(request)
        return Completion(
            text=text,
            finish_reason="stop",
            usage=Usage(len(request.prompt.split()), len(text.split())),
            model=self.spec,
        )


def _resolve(name: str) -> Responder:
    if name == "echo":
        return lambda request: request.prompt
    module_name, sep, attr = name.rpartition(":")
    if not sep:
        raise ConfigError(f"unknown fake model {name!r}: use fake:echo or fake:MODULE:FUNCTION")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"fake:{name}: cannot import {attr} from {module_name} ({exc})") from None
    if not callable(fn):
        raise ConfigError(f"fake:{name}: {attr} is not callable")
    resolved: Responder = fn
    return resolved
