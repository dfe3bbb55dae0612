"""Scoring instructions: the scorer LLM answers each example with the instruction inserted.

Owns the scorer's prompt (``prompts/scorer.jinja``: the Q/A pattern for pre-trained
models, one user turn for chat models, the instruction at one of four positions), the
optional second pass that asks a pre-trained scorer for its final answer, and the grid of
(instruction × example) calls, all submitted at once so that one bounded pool (the LLM
stack's semaphore) runs them. Decoding is greedy and zero-shot.

Every example ends in one of four states: ``correct``, ``wrong``, ``empty`` (the model
answered nothing — counted as not correct, and reported apart; in paper mode an empty answer
the authors' code counts as right, e.g. for a dyck_languages target, is ``correct``) or
``failed`` (the call
failed after its retries — never counted as wrong; accuracy is over the examples that were
answered). What counts as correct is ``opro.eval.metrics``; the statistics are
``opro.eval.stats``. A fifth, ``stopped``, marks an example ``opro evaluate`` did not ask
because a cap was reached: left out of the accuracy, as ``failed`` is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from opro import prompts
from opro.data import Example
from opro.errors import BudgetExceeded, ConfigError, RetriesExhausted
from opro.eval.metrics import Mode, score_answer
from opro.llm.base import LLM, gather_or_cancel
from opro.progress import Progress
from opro.types import Api, Request

Position = Literal["Q_begin", "Q_end", "A_begin", "before_Q"]
POSITIONS: tuple[str, ...] = get_args(Position)
ScorerStyle = Literal["base", "chat"]
Status = Literal["correct", "wrong", "empty", "failed", "stopped"]
MARKS: dict[str, str] = {"correct": "1", "wrong": "0", "empty": "e", "failed": "x", "stopped": "-"}
"""One character per example in a marks string (compact per-example results on disk)."""

BASE_STOP = ("\nQ:",)
"""A pre-trained scorer continues the Q/A pattern: its answer ends where a new Q: begins."""


def scorer_style(api: Api) -> ScorerStyle:
    """``base`` for a model fed raw text (the Q/A pattern), ``chat`` for a chat model."""
    return "base" if api == "completion" else "chat"


def check_position(position: str, style: ScorerStyle) -> Position:
    if position not in POSITIONS:
        raise ConfigError(f"unknown --position {position!r}: choose from {', '.join(POSITIONS)}")
    if position == "A_begin" and style == "chat":
        raise ConfigError(
            "--position A_begin needs a pre-trained (completion) scorer: a chat model's answer "
            "cannot be begun for it; use --position Q_begin or Q_end, or --scorer-api completion"
        )
    return position  # type: ignore[return-value]


def scorer_prompt(instruction: str, question: str, position: Position, style: ScorerStyle) -> str:
    return prompts.render(
        "scorer.jinja",
        {"instruction": instruction, "question": question, "position": position, "style": style},
    )


@dataclass(frozen=True)
class ScorerOptions:
    position: Position = "A_begin"
    style: ScorerStyle = "base"
    max_tokens: int = 256
    mode: Mode = "strict"
    extract: bool = False
    """Second pass (pre-trained scorers): append the answer and "So the final answer is"."""
    extract_max_tokens: int = 16

    def __post_init__(self) -> None:
        check_position(self.position, self.style)
        if self.max_tokens < 1:
            raise ConfigError(f"--scorer-max-tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class ExampleResult:
    index: int
    """The example's row in its source file."""
    status: Status
    prediction: str
    error: str | None = None


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
    def answered(self) -> int:
        return self.n - self.count("failed") - self.count("stopped")

    @property
    def accuracy(self) -> float | None:
        """Correct / answered (failed calls excluded); None when nothing was answered."""
        return self.count("correct") / self.answered if self.answered else None

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
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if self.count("stopped"):
            data["stopped"] = self.count("stopped")
        if examples:
            data["examples"] = [
                {"index": r.index, "status": r.status, "prediction": r.prediction}
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
    tolerate_failures: bool = False,
    progress: Progress | None = None,
) -> list[InstructionScore]:
    """Score each instruction on every example, all calls submitted at once; ``progress``
    hears the count of scored (instruction, example) pairs as it grows.

    With ``tolerate_failures`` a call that fails after its retries marks its example
    ``failed`` and the rest go on, and a cap reached marks the examples not yet asked
    ``stopped`` (``opro evaluate``: what was answered is kept); otherwise the first failure
    or cap cancels the grid and propagates (the optimizer's step stops and is redone on
    resume). A fatal error (bad key, no server) always propagates.
    """
    started = time.monotonic()
    finished = [started] * len(instructions)
    total = len(instructions) * len(examples)
    done = 0
    if progress is not None:
        progress.examples_scored(0, total)

    async def one(i: int, example: Example) -> ExampleResult:
        nonlocal done
        try:
            result = await _answer(llm, instructions[i], example, options)
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

    grid = [one(i, ex) for i in range(len(instructions)) for ex in examples]
    results = await gather_or_cancel(grid)
    n = len(examples)
    return [
        InstructionScore(ins, tuple(results[i * n : (i + 1) * n]), finished[i] - started)
        for i, ins in enumerate(instructions)
    ]


async def _answer(
    llm: LLM, instruction: str, example: Example, options: ScorerOptions
) -> ExampleResult:
    prompt = scorer_prompt(instruction, example.question, options.position, options.style)
    stop = BASE_STOP if options.style == "base" else ()
    first = await llm.complete(Request(prompt, options.max_tokens, 0.0, stop))
    prediction = scored = first.text
    second_round = options.extract and options.style == "base" and bool(prediction.strip())
    if second_round:
        second_prompt = prompts.render("extract.jinja", {"prompt": prompt, "answer": first.text})
        second = await llm.complete(
            Request(second_prompt, options.extract_max_tokens, 0.0, ("\n",))
        )
        prediction = f"{first.text}\nSo the final answer is{second.text}"
        scored = second.text  # paper mode: the authors parse the second completion alone
    if options.mode == "paper":  # the authors' pipeline reads options from the whole prompt
        ok = score_answer(
            scored,
            example.answer,
            kind=example.kind,
            question=example.question,
            mode="paper",
            dataset=example.dataset,
            prompt=prompt,
            chat=options.style == "chat",
            second_round=second_round,
        )
    else:
        ok = score_answer(prediction, example.answer, kind=example.kind, question=example.question)
    if not ok and not prediction.strip():
        return ExampleResult(example.index, "empty", prediction)
    return ExampleResult(example.index, "correct" if ok else "wrong", prediction)
