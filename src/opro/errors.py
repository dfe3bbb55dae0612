"""The error tree. Every error a user can meet says what went wrong and how to fix it, in
one line; the CLI prints ``str(error)`` and exits with ``error.exit_code``.

- ``ConfigError``: bad input (a flag, a spec, a file) — fix the command line.
- ``LLMError``: a backend failed. ``TransientLLMError`` is retried by ``opro.llm.limits``
  and never escapes it except as ``RetriesExhausted``; ``FatalLLMError`` (bad key, unknown
  model, unreachable server) is raised at once.
- ``BudgetExceeded``: a cap was reached; the run stops cleanly and can be resumed.
- ``Interrupted``: Ctrl-C or SIGTERM stopped a run, which was saved: the message says how to
  continue it (exit 130, as a shell reports an interrupted command).
- ``UserCodeError``: the user's own code (a metric function) raised or returned nonsense:
  the message names the function, the example and the exception; a run is saved, to be
  resumed once the function is fixed (exit 2, as for bad input).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any


class OproError(Exception):
    """Base of all errors opro raises on purpose."""

    exit_code = 1


class ConfigError(OproError):
    """The user's input is wrong; the message names the fix.

    Where it is about one setting, it carries it: ``setting`` (``top_k``), ``problem``
    (``must be >= 1 (got 0)``) and ``fix``, if any beyond the problem; each surface names
    the setting its own way (``render``): the Python API by its name, the CLI by its flag
    (``--top-k must be >= 1 (got 0)``), a spec file by its key."""

    exit_code = 2

    def __init__(self, problem: str, *, setting: str | None = None, fix: str = "") -> None:
        self.problem, self.setting, self.fix = problem, setting, fix
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message, its setting named by ``name``."""
        if self.setting is None:
            text = self.problem
        else:  # "top_k must be...", or "top_k: what is wrong"
            glue = "" if self.problem.startswith(":") else " "
            text = f"{name(self.setting)}{glue}{self.problem}"
        return f"{text}: {self.fix}" if self.fix else text

    def __reduce__(self) -> tuple[Any, ...]:  # across processes (Ray) with its parts
        return (_rebuild, (type(self), self.problem, self.setting, self.fix))


def _rebuild(cls: type[ConfigError], problem: str, setting: str | None, fix: str) -> ConfigError:
    return cls(problem, setting=setting, fix=fix)


class MissingDependency(ConfigError):
    """An optional extra is needed for what was asked."""


class RunLocked(ConfigError):
    """Another process is writing the run dir (its lock is held)."""


class LLMError(OproError):
    exit_code = 3


class FatalLLMError(LLMError):
    """Retrying cannot help: bad key, unknown model, malformed request, no server."""


class Unreachable(FatalLLMError):
    """No connection to a server that never answered (refused: nothing listens there). A
    pool of servers (``opro.llm.pool``) sends the request to another one instead."""


class TransientLLMError(LLMError):
    """Worth retrying: 429, 5xx, timeouts, dropped connections.

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetriesExhausted(LLMError):
    """Transient failures outlasted the retry bound; the run's state is saved."""

    exit_code = 4


class BudgetExceeded(OproError):
    """A cap (calls, tokens, dollars, time) was reached before a new call."""

    exit_code = 5


class UserCodeError(OproError):
    """A function of the user's (``module:function``) failed on an example; not opro's bug."""

    exit_code = 2


class Interrupted(OproError):
    """A signal stopped a run after its state was recorded; the message names the resume."""

    exit_code = 130


SHOWN = 80
"""Characters of a bad value an error shows."""


def shown(value: Any) -> str:
    """``repr(value)`` cut to ``SHOWN`` characters: a bad value (a hand edit, a pasted text)
    can be long, and an error stays one short line."""
    return clip(repr(value), SHOWN)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with "…"."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Replace every occurrence of each (non-trivial) secret in ``text`` by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def unknown_setting(owner: str, name: object, known: Iterable[str]) -> ConfigError:
    """The one-line error for a setting ``owner`` (a class name) does not have: ``unknown
    setting 'datset' of InstructionsSpec: did you mean 'dataset'?``, or its settings when
    no name is close."""
    names = sorted(known)
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"its settings: {', '.join(names)}"
    return ConfigError(f"unknown setting {name!r} of {owner}: {hint}")
