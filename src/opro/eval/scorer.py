"""Scoring instructions: the scorer LLM answers each example with the instruction inserted.

Owns the scorer's prompt (``prompts/scorer.jinja``: the Q/A pattern for pre-trained
models, one user turn for chat models, the instruction at one of four positions), the
optional second pass that asks a pre-trained scorer for its final answer, and the grid of
(instruction × example) calls, all submitted at once so that one bounded pool (the LLM
stack's semaphore) runs them, in the order that sends prompts beginning alike together
(``question_first``). Decoding is greedy and zero-shot.

Racing (``race_instructions``, ``opro.eval.racing``) scores in rounds and leaves the
examples of a dropped candidate ``unscored``. Every scored example ends in one of four
states: ``correct``, ``wrong``, ``empty`` (the model answered nothing — counted as not
correct, and reported apart; in paper mode an empty answer the authors' code counts as
right, e.g. for a dyck_languages target, is ``correct``) or ``failed`` (the call failed
after its retries — never counted as wrong; accuracy is over the examples that were
answered). What counts as correct is ``opro.eval.answers``; the statistics are
``opro.eval.stats``. A fifth, ``stopped``, marks an example ``opro evaluate`` did not ask
because a cap was reached: left out of the accuracy, as ``failed`` is.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from opro import prompts
from opro.data import Example
from opro.errors import BudgetExceeded, ConfigError, RetriesExhausted
from opro.eval.answers import Mode
from opro.eval.metric import Answer, AnswerMetric, Metric
from opro.eval.racing import RaceRule
from opro.llm.base import LLM, gather_or_cancel
from opro.progress import Progress
from opro.types import Api, Request

Position = Literal["Q_begin", "Q_end", "A_begin", "before_Q"]
POSITIONS: tuple[str, ...] = get_args(Position)
ScorerStyle = Literal["base", "chat"]
Status = Literal["correct", "wrong", "empty", "failed", "unscored", "stopped"]
MARKS: dict[str, str] = {
    "correct": "1", "wrong": "0", "empty": "e", "failed": "x", "unscored": "-", "stopped": "-"
}  # fmt: skip
"""One character per example in a marks string (compact per-example results on disk);
``-``: not asked (a race dropped the instruction, or a cap stopped ``opro evaluate``)."""
MARKS_PATTERN = "^[" + "".join(sorted(set(MARKS.values()) - {"-"})) + "-]*$"
"""A marks string (``-`` last: a literal in a character class)."""

BASE_STOP = ("\nQ:",)
"""A pre-trained scorer continues the Q/A pattern: its answer ends where a new Q: begins."""


def scorer_style(api: Api) -> ScorerStyle:
    """``base`` for a model fed raw text (the Q/A pattern), ``chat`` for a chat model."""
    return "base" if api == "completion" else "chat"


def check_position(position: str, style: ScorerStyle) -> Position:
    if position not in POSITIONS:
        raise ConfigError(f"unknown `position` {position!r}: choose from {', '.join(POSITIONS)}")
    if position == "A_begin" and style == "chat":
        raise ConfigError(
            "`position` A_begin needs a pre-trained (completion) scorer: a chat model's answer "
            "cannot be begun for it; use `position` Q_begin or Q_end, or scorer_api completion"
        )
    return position  # type: ignore[return-value]


def scorer_prompt(instruction: str, question: str, position: Position, style: ScorerStyle) -> str:
    return prompts.render(
        "scorer.jinja",
        {"instruction": instruction, "question": question, "position": position, "style": style},
    )


@functools.cache
def _question_leads(position: Position, style: ScorerStyle) -> bool:
    text = scorer_prompt("\x01", "\x02", position, style)
    return text.index("\x02") < text.index("\x01")


def question_first(options: ScorerOptions) -> bool:
    """Whether the scorer's prompts begin with the question (A_begin, Q_end): the grid then
    goes out question by question, else instruction by instruction, so that prompts with a
    common start are in flight together. The embedded model reads that start once
    (``opro.llm.prefix``) and a server's prefix cache finds it; no answer depends on it."""
    return options.instruction_in == "user" and _question_leads(options.position, options.style)


@dataclass(frozen=True)
class ScorerOptions:
    position: Position = "A_begin"
    style: ScorerStyle = "base"
    max_tokens: int = 256
    mode: Mode = "strict"
    extract: bool = False
    """Second pass (pre-trained scorers): append the answer and "So the final answer is"."""
    extract_max_tokens: int = 16
    system: str | None = None
    """A system message (chat scorers; a pre-trained scorer reads it before the prompt)."""
    instruction_in: Literal["user", "system"] = "user"
    """Chat scorers: the instruction in the user turn (at ``position``) or the system message."""

    def __post_init__(self) -> None:
        check_position(self.position, self.style)
        if self.max_tokens < 1:
            raise ConfigError(f"scorer_max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class ExampleResult:
    index: int
    """The example's row in its source file."""
    status: Status
    prediction: str
    error: str | None = None
    score: float = 0.0
    """The metric's score in [0, 1] (correct from 0.5); 0 when empty or failed."""


@dataclass(frozen=True)
class InstructionScore:
    """One instruction's results on a list of examples."""

    instruction: str
    results: tuple[ExampleResult, ...]
    elapsed_s: float

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def scored(self) -> int:
        """Examples scored (all of them, unless a race dropped the instruction)."""
        return self.n - self.count("unscored")

    @property
    def partial(self) -> bool:
        return self.scored < self.n

    @property
    def answered(self) -> int:
        return self.scored - self.count("failed") - self.count("stopped")

    @property
    def accuracy(self) -> float | None:
        """The mean score over the answered examples, in percent (failed calls and unscored
        examples excluded; with a right/wrong metric, correct / answered × 100); None when
        nothing was answered."""
        if not self.answered:
            return None
        total = sum(
            r.score for r in self.results if r.status not in ("failed", "unscored", "stopped")
        )
        return round(100.0 * total / self.answered, 6)

    @property
    def marks(self) -> str:
        return "".join(MARKS[r.status] for r in self.results)

    def to_json(self, *, examples: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "instruction": self.instruction,
            "accuracy": self.accuracy,
            "n": self.n,
            "correct": self.count("correct"),
            "wrong": self.count("wrong"),
            "empty": self.count("empty"),
            "failed": self.count("failed"),
            **({"scored": self.scored} if self.partial else {}),
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if self.count("stopped"):
            data["stopped"] = self.count("stopped")
        if examples:
            data["examples"] = [
                {"index": r.index, "status": r.status, "score": r.score, "prediction": r.prediction}
                | ({"error": r.error} if r.error else {})
                for r in self.results
            ]
        return data


async def score_instructions(
    llm: LLM,
    instructions: Sequence[str],
    examples: Sequence[Example],
    options: ScorerOptions,
    *,
    metric: Metric | None = None,
    tolerate_failures: bool = False,
    progress: Progress | None = None,
) -> list[InstructionScore]:
    """Score each instruction on every example, all calls submitted at once; ``progress``
    hears the count of scored (instruction, example) pairs as it grows. ``metric`` decides
    what is right (default: the examples' answer kinds, ``options.mode``).

    With ``tolerate_failures`` a call that fails after its retries marks its example
    ``failed`` and the rest go on, and a cap reached marks the examples not yet asked
    ``stopped`` (``opro evaluate``: what was answered is kept); otherwise the first failure
    or cap cancels the grid and propagates (the optimizer's step stops and is redone on
    resume). A fatal error (bad key, no server) always propagates.
    """
    scoring = metric or AnswerMetric(options.mode)
    started = time.monotonic()
    finished = [started] * len(instructions)
    total = len(instructions) * len(examples)
    done = 0
    if progress is not None:
        progress.examples_scored(0, total)

    async def one(i: int, example: Example) -> ExampleResult:
        nonlocal done
        try:
            result = await _answer(llm, instructions[i], example, options, scoring)
        except RetriesExhausted as exc:
            if not tolerate_failures:
                raise
            result = ExampleResult(example.index, "failed", "", str(exc))
        except BudgetExceeded as exc:  # the rest of the grid is refused at once, in turn
            if not tolerate_failures:
                raise
            result = ExampleResult(example.index, "stopped", "", str(exc))
        finished[i] = max(finished[i], time.monotonic())
        if progress is not None:
            done += 1
            progress.examples_scored(done, total)
        return result

    rows, columns = range(len(instructions)), range(len(examples))
    if question_first(options):
        pairs = [(i, j) for j in columns for i in rows]
    else:
        pairs = [(i, j) for i in rows for j in columns]
    answered = await gather_or_cancel([one(i, examples[j]) for i, j in pairs])
    results = dict(zip(pairs, answered, strict=True))
    return [
        InstructionScore(ins, tuple(results[i, j] for j in columns), finished[i] - started)
        for i, ins in enumerate(instructions)
    ]


async def race_instructions(
    llm: LLM,
    instructions: Sequence[str],
    examples: Sequence[Example],
    options: ScorerOptions,
    *,
    bar: float,
    order: Sequence[int],
    rule: RaceRule,
    metric: Metric | None = None,
) -> list[InstructionScore]:
    """Score each instruction in ``rule``'s rounds over ``order`` (positions in ``examples``,
    the same for every instruction), dropping after each round those whose accuracy on
    all of ``examples`` is confidently under ``bar`` (percent); a dropped one's remaining
    examples are ``unscored``. A round's calls go out at once, in ``question_first``'s
    order. A failed call propagates, as in ``score_instructions``."""
    scoring = metric or AnswerMetric(options.mode)
    started = time.monotonic()
    n = len(examples)
    got: list[dict[int, ExampleResult]] = [{} for _ in instructions]
    finished = [started] * len(instructions)
    live = list(range(len(instructions)))
    done = 0
    for end in rule.ends(n):
        pairs = [(i, j) for j in order[done:end] for i in live]
        if not question_first(options):
            pairs.sort(key=lambda pair: pair[0])  # stable: each instruction's in order
        done = end
        results = await gather_or_cancel(
            [_answer(llm, instructions[i], examples[j], options, scoring) for i, j in pairs]
        )
        for (i, j), result in zip(pairs, results, strict=True):
            got[i][j] = result
        for i in live:
            finished[i] = time.monotonic()
        live = [
            i
            for i in live
            if not rule.hopeless(
                sum(r.score for r in got[i].values()), len(got[i]), n, bar / 100, scoring.binary
            )
        ]
        if not live:
            break
    return [
        InstructionScore(
            instruction,
            tuple(
                got[i].get(j) or ExampleResult(example.index, "unscored", "")
                for j, example in enumerate(examples)
            ),
            finished[i] - started,
        )
        for i, instruction in enumerate(instructions)
    ]


def request_parts(
    instruction: str, example: Example, options: ScorerOptions
) -> tuple[str, str | None]:
    """The scorer's prompt and system message for one example under one instruction."""
    if options.instruction_in == "system":  # the question alone in the user turn
        system = "\n".join(t for t in (options.system, instruction) if t) or None
        return scorer_prompt("", example.question, options.position, options.style), system
    return scorer_prompt(instruction, example.question, options.position, options.style), (
        options.system
    )


async def _answer(
    llm: LLM, instruction: str, example: Example, options: ScorerOptions, metric: Metric
) -> ExampleResult:
    prompt, system = request_parts(instruction, example, options)
    stop = BASE_STOP if options.style == "base" else ()
    first = await llm.complete(Request(prompt, options.max_tokens, 0.0, stop, system=system))
    prediction = scored = first.text
    second_round = options.extract and options.style == "base" and bool(prediction.strip())
    if second_round:
        second_prompt = prompts.render("extract.jinja", {"prompt": prompt, "answer": first.text})
        second = await llm.complete(
            Request(second_prompt, options.extract_max_tokens, 0.0, ("\n",), system=system)
        )
        prediction = f"{first.text}\nSo the final answer is{second.text}"
        scored = second.text  # paper mode: the authors parse the second completion alone
    answer = Answer(prediction, scored, prompt, options.style == "chat", second_round)
    if not prediction.strip() and not (
        options.mode == "paper" and isinstance(metric, AnswerMetric)
    ):
        return ExampleResult(example.index, "empty", prediction)
    score = await metric(answer, example)
    if score < 0.5 and not prediction.strip():  # paper mode: theirs may credit an empty one
        return ExampleResult(example.index, "empty", prediction)
    status: Status = "correct" if score >= 0.5 else "wrong"
    return ExampleResult(example.index, status, prediction, score=score)
