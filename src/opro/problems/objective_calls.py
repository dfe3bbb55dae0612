"""Calling the user's objective: ``module:function(solution: str)`` returning a number, or a
number and a short text of feedback; sync or async.

Every call runs under a time limit, up to ``concurrency`` at once. An async function is
awaited. A sync one runs in a thread of its own (``isolation="thread"``: a call that
overruns is abandoned to finish in the background, in a daemon thread that never holds up
the exit) or in a process of its own (``isolation="process"``: one that overruns is killed;
the function must then be importable by a fresh interpreter, so not a notebook's).

Whatever goes wrong in one call (an exception, a time-out, NaN, infinity, something that is
not a number) makes that solution ``Invalid`` with the reason: never a crash of the run,
never a score. Scores are cached by the function's source code and the solution, in the
run's call cache (a changed function is a new key), unless switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import inspect
import json
import math
import numbers
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from opro.errors import ConfigError
from opro.llm.cache import CallCache
from opro.problems.base import Invalid
from opro.types import Completion

FEEDBACK_CHARS = 1000
"""Feedback beyond this is cut: it is shown in every meta-prompt that lists the solution."""
STARTUP_S = 60.0
"""Seconds a process of its own (``isolation="process"``) may take to start and import the
function before its call's time limit starts."""


@dataclass(frozen=True)
class Score:
    """What the objective said of a solution."""

    value: float
    feedback: str | None = None
    cached: bool = False


def load(path: str, what: str = "objective") -> Callable[..., Any]:
    """The function at ``module:function``; a one-line ``ConfigError`` naming the fix."""
    module_name, _, attribute = path.rpartition(":")
    fix = f"give `{what}` as module:function, importable from where you run opro"
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{what} {path!r}: cannot import it ({exc}): {fix}") from None
    if not callable(function):
        raise ConfigError(f"{what} {path!r} is not a function: {fix}")
    return function  # type: ignore[no-any-return]


def read(value: Any) -> Score | Invalid:
    """A function's return value as a score (a number, or a number and a text), or why it
    is not one."""
    feedback = None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str | None):
        value, feedback = value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return Invalid(f"returned {_short(repr(value))}, not a number")
    number = float(value)
    if math.isnan(number):
        return Invalid("returned NaN")
    if math.isinf(number):
        return Invalid(f"returned {number}")
    if feedback is not None and len(feedback) > FEEDBACK_CHARS:
        feedback = feedback[: FEEDBACK_CHARS - 1] + "…"
    return Score(number, feedback)


def raised(exc: BaseException) -> str:
    """``ValueError: bad input (score.py:12)``: an exception in one line, and where the
    user's code raised it."""
    from opro.eval.metric import raised as one_line

    return "raised " + one_line(exc, _user_frame(exc))


def _user_frame(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return None if tb is None else tb.tb_frame.f_code.co_filename


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_of(function: Callable[..., Any], path: str) -> str:
    """What identifies the function's code in the cache: its source and its module's (a
    changed constant or helper beside it is a new key too; a notebook's cell, its own),
    else its bytecode."""
    found: list[str] = []
    for part in (function, inspect.getmodule(function)):
        with contextlib.suppress(OSError, TypeError):
            found.append(inspect.getsource(part))  # type: ignore[arg-type]
    if found:
        return "\n".join(found)
    code = getattr(function, "__code__", None)
    return path if code is None else code.co_code.hex() + repr(code.co_consts)


class Objective:
    """The user's function, called as the run's settings say."""

    def __init__(
        self,
        path: str,
        *,
        timeout_s: float,
        concurrency: int,
        isolation: str = "thread",
        cache: CallCache | None = None,
    ) -> None:
        self.path = path
        self.function = load(path)
        self.timeout_s = timeout_s
        self.isolation = isolation
        self.cache = cache
        self.is_async = inspect.iscoroutinefunction(self.function)
        if isolation == "process" and path.startswith("__main__:"):
            raise ConfigError(
                f"objective {path}: a notebook's own function cannot run in a process of "
                "its own: use `isolation` thread, or move it into a module"
            )
        identity = json.dumps({"objective": path, "code": source_of(self.function, path)})
        self._identity = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
        self._concurrency = concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def score_all(self, solutions: list[str]) -> list[Score | Invalid]:
        """Each solution's score, up to ``concurrency`` calls at once. What the function
        prints goes to stderr: stdout carries opro's results only (``--json``)."""
        with contextlib.redirect_stdout(sys.stderr):
            return list(await asyncio.gather(*(self.score(s) for s in solutions)))

    async def score(self, solution: str) -> Score | Invalid:
        key = self._key(solution)
        hit = self._cached(key)
        if hit is not None:
            return hit
        async with self._bound():
            result = await self._call(solution)
        if isinstance(result, Score) and self.cache is not None:
            text = json.dumps({"score": result.value, "feedback": result.feedback})
            self.cache.put(key, Completion(text))
        return result

    def _bound(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:  # a notebook's next run
            self._loop, self._semaphore = loop, asyncio.Semaphore(self._concurrency)
        return self._semaphore

    def _key(self, solution: str) -> str:
        blob = json.dumps({"objective": self._identity, "solution": solution})
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def _cached(self, key: str) -> Score | None:
        hit = None if self.cache is None else self.cache.get(key)
        if hit is None:
            return None
        try:
            data = json.loads(hit.text)
            feedback = data.get("feedback")
            note = feedback if isinstance(feedback, str) else None
            return Score(float(data["score"]), note, cached=True)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # a corrupt row is a miss, written again

    async def _call(self, solution: str) -> Score | Invalid:
        limit = self.timeout_s
        try:
            if self.isolation == "process":
                return await _in_process(self.path, solution, limit)
            if self.is_async:
                value = await asyncio.wait_for(self.function(solution), limit)
            else:
                value = await asyncio.wait_for(in_thread(self.function, solution), limit)
        except TimeoutError:
            return Invalid(f"timed out after {limit:g} s")
        except KeyboardInterrupt:  # a second Ctrl-C while it ran: stop as at the first
            raise asyncio.CancelledError from None
        except (Exception, SystemExit) as exc:
            return Invalid(raised(exc))
        return read(value)


async def in_thread(function: Callable[[str], Any], solution: str) -> Any:
    """``function(solution)`` in a daemon thread of its own: an abandoned call (timed out,
    cancelled) finishes there without holding up the loop or the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            (future.set_result if ok else future.set_exception)(value)

    def work() -> None:
        try:
            ok, value = True, function(solution)
        except BaseException as exc:  # handed to the loop, which decides
            ok, value = False, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=work, name="opro-objective", daemon=True).start()
    return await future


_CHILD = "from opro.problems.objective_calls import child; child()"


async def _in_process(path: str, solution: str, limit: float) -> Score | Invalid:
    """``path``'s function on ``solution`` in a fresh interpreter, killed if it overruns. The
    limit counts from when the process has loaded the function: an interpreter's start and
    the imports (seconds, for a heavy module) are not the function's time. (Not
    ``multiprocessing``: its spawn runs the parent's main script again in the child, which
    a script without a ``__main__`` guard does not survive.)"""
    paths = [p or os.getcwd() for p in sys.path]  # the function is found as it is here
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, stdin=pipe, stdout=pipe, stderr=pipe, env=env
    )
    assert process.stdin is not None
    assert process.stderr is not None
    errors = asyncio.ensure_future(process.stderr.read())  # drained, so never blocking it
    try:
        process.stdin.write(json.dumps({"path": path, "solution": solution}).encode() + b"\n")
        await process.stdin.drain()
        process.stdin.close()
        message = await _receive(process, max(limit, STARTUP_S))
        if message is None:
            return Invalid(f"its process did not start within {max(limit, STARTUP_S):g} s")
        if "ready" in message:
            message = await _receive(process, limit)
            if message is None:
                return Invalid(f"timed out after {limit:g} s")
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        said = (await errors).decode("utf-8", "replace").strip().splitlines()[-1:]
    if "score" in message:
        return Score(float(message["score"]), message.get("feedback"))
    if "invalid" in message:
        return Invalid(str(message["invalid"]))
    last = f": {_short(said[0], 200)}" if said else ""
    return Invalid(f"its process exited with code {process.returncode} before answering{last}")


class _Message(TypedDict, total=False):
    """A JSON line of ``child``'s: one of these keys."""

    ready: bool
    score: float
    feedback: str | None
    invalid: str


async def _receive(process: asyncio.subprocess.Process, limit: float) -> _Message | None:
    """The process's next message within ``limit`` seconds (None if none came; ``{}`` if it
    ended without one)."""
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), limit)
    except TimeoutError:
        return None
    try:
        message = json.loads(line) if line else {}
    except ValueError:
        return {}
    if not isinstance(message, dict):
        return {}
    return cast(_Message, message)  # a line of ``child``'s (the function prints to stderr)


def child() -> None:
    """A process's one call (``isolation="process"``): reads the function's path and the
    solution on stdin, loads the function, says it is ready (its time limit starts), calls
    it, and writes what it came to, each a JSON line on stdout; what the function prints
    goes to stderr."""
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    def say(message: _Message) -> None:
        answer.write(json.dumps(message) + "\n")
        answer.flush()

    request = json.loads(sys.stdin.readline())
    result: Score | Invalid
    try:
        function = load(request["path"])
        say({"ready": True})
        value = function(request["solution"])
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
        result = read(value)
    except BaseException as exc:
        result = Invalid(raised(exc))
    if isinstance(result, Score):
        say({"score": result.value, "feedback": result.feedback})
    else:
        say({"invalid": result.reason})


async def _awaited(value: Any) -> Any:
    return await value
