"""What counts as right: a ``Metric`` scores one answer of the scorer against its example,
from 0 (wrong) to 1 (right).

- ``AnswerMetric``: the built-in scoring of the example's answer kind (numeric, boolean,
  choice, text), strict or the authors' (``opro.eval.answers``);
- ``FunctionMetric``: the user's own ``module:function(prediction, example)`` returning a
  bool or a number in [0, 1], sync or async, imported by its path (so a run dir records it);
- ``JudgeMetric``: an LLM judge through the LLM stack (cache, retries, budget): it reads the
  question, the reference answer and the answer, and says whether the answer is right.

``metric_for`` picks one from a run's ``metric`` setting. A metric never sees an empty
answer (that is ``empty``) nor a failed call (``failed``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from opro import prompts
from opro.data import Example
from opro.errors import ConfigError, UserCodeError
from opro.eval.answers import Mode, score_answer
from opro.llm.base import LLM
from opro.types import Request


@dataclass(frozen=True)
class Answer:
    """One answer of the scorer, and what the authors' scoring reads besides."""

    text: str
    """The whole answer (with the second pass's, if any)."""
    scored: str
    """What paper mode parses: the second pass's completion alone when there is one."""
    prompt: str
    chat: bool
    second_round: bool


class Metric(Protocol):
    @property
    def binary(self) -> bool:
        """Every score is 0 or 1 (racing then uses an exact bound for 0/1 scores)."""
        ...

    async def __call__(self, answer: Answer, example: Example) -> float: ...


@dataclass(frozen=True)
class AnswerMetric:
    mode: Mode = "strict"
    binary: bool = True

    async def __call__(self, answer: Answer, example: Example) -> float:
        if self.mode == "paper":  # the authors' pipeline reads options from the whole prompt
            ok = score_answer(
                answer.scored,
                example.answer,
                kind=example.kind,
                question=example.question,
                mode="paper",
                dataset=example.dataset,
                prompt=answer.prompt,
                chat=answer.chat,
                second_round=answer.second_round,
            )
        else:
            ok = score_answer(
                answer.text, example.answer, kind=example.kind, question=example.question
            )
        return 1.0 if ok else 0.0


class FunctionMetric:
    """``module:function(prediction: str, example: Example) -> bool | float`` (or async)."""

    def __init__(self, path: str) -> None:
        module_name, _, attribute = path.rpartition(":")
        fix = "give `metric` as module:function, importable from where you run opro"
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(f"metric {path!r}: cannot import it ({exc}): {fix}") from None
        if not callable(function):
            raise ConfigError(f"metric {path!r} is not a function: {fix}")
        self.path = path
        self.function: Callable[[str, Example], Any] = function
        self.binary = False  # it may return any number in [0, 1]

    async def __call__(self, answer: Answer, example: Example) -> float:
        try:
            value = self.function(answer.text, example)
            if inspect.isawaitable(value):
                value = await value
        except KeyboardInterrupt:  # a second Ctrl-C while it ran: stop as at the first
            raise asyncio.CancelledError from None  # (never left in a task, unretrieved)
        except (Exception, SystemExit) as exc:
            where = getattr(getattr(self.function, "__code__", None), "co_filename", None)
            raise self._failed(example, f"raised {raised(exc, where)}", "fix it") from exc
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise self._failed(
                example, f"returned {value!r:.80}", "return a bool or a number in [0, 1]"
            )
        if math.isnan(value):
            raise self._failed(example, "returned NaN", "return a number in [0, 1]")
        return float(value)

    def _failed(self, example: Example, what: str, fix: str) -> UserCodeError:
        question = " ".join(example.question.split())
        shown = question if len(question) <= 40 else question[:39] + "…"
        return UserCodeError(
            f"metric {self.path} {what} on example {example.index} ({shown!r}): {fix}"
        )


def raised(exc: BaseException, source: str | None = None) -> str:
    """``AttributeError: 'NoneType' object has no attribute 'x' (my_metric.py:12)``: the
    exception in one line, and where it was raised: the last line of ``source`` (the
    user's file) in its traceback, else its last line."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:199] + "…"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if f.filename == source] or frames[-1:]
    where = f" ({Path(own[-1].filename).name}:{own[-1].lineno})" if own else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


@dataclass(frozen=True)
class JudgeMetric:
    """An LLM judge: greedy, a short reply; "yes" at its start is right."""

    llm: LLM
    max_tokens: int = 4
    binary: bool = True

    async def __call__(self, answer: Answer, example: Example) -> float:
        prompt = prompts.render(
            "judge.jinja",
            {"question": example.question, "reference": example.answer, "answer": answer.text},
        )
        reply = await self.llm.complete(Request(prompt, self.max_tokens, 0.0, ("\n",)))
        return 1.0 if reply.text.strip().lower().startswith("yes") else 0.0


def metric_for(name: str | None, mode: Mode, judge: LLM | None = None) -> Metric:
    """The metric a run's ``metric`` setting names (None, or an answer kind: the built-in
    scoring; the kind itself is set on the examples)."""
    if name is None or name in ("numeric", "boolean", "choice", "text"):
        return AnswerMetric(mode)
    if name == "judge":
        if judge is None:
            raise ConfigError("`metric` judge needs a judge model: give `judge` SPEC")
        return JudgeMetric(judge)
    if ":" not in name:
        raise ConfigError(
            f"unknown metric {name!r}: give numeric, boolean, choice, text, judge, or "
            "module:function"
        )
    return FunctionMetric(name)
