"""Instruction optimization (OPRO §4): a solution is an instruction; its score is the
scorer LLM's accuracy (×100) on the training fold with the instruction inserted.

Owns the proposal's parsing and post-processing (strip, drop ``**``, capitalise; refuse
over 500 characters, containing ``INS``, or — numeric tasks — containing digits, which
leak answers), the meta-prompt's exemplars (random per step, constant, or the examples
most often answered wrong), and the final held-out evaluation: the top instructions by
training accuracy and the initial instruction(s) on the test fold, with a paired test.
Selection is on training accuracy only; the test fold is read once, at the end.
The scoring itself is ``opro.eval.scorer``; the data ``opro.data``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from opro.data import Dataset, load_dataset, subsample
from opro.errors import ConfigError
from opro.eval.metrics import Mode
from opro.eval.scorer import (
    InstructionScore,
    Position,
    ScorerOptions,
    ScorerStyle,
    check_position,
    score_instructions,
)
from opro.eval.stats import mcnemar_exact
from opro.history import History
from opro.llm.base import LLM
from opro.problems.base import Problem

MetaStyle = Literal["instruct", "pretrained"]
ExemplarSelection = Literal["random", "constant", "wrong"]
MAX_LENGTH = 500
POSITION_PHRASES = {
    "Q_begin": "at the beginning of the question",
    "Q_end": "at the end of the question",
    "A_begin": "at the beginning of the answer",
    "before_Q": "before the question",
}
PRETRAINED_GRAMMAR = r"""root ::= " " [0-9] [0-9]? " <TEXT>" [A-Za-z] [^<>\n]{3,300} "</TEXT>"
"""
"""``--constrained`` with the pre-trained style: one well-formed ``Precision`` line."""
_INS = re.compile(r"<INS>(.*?)</INS>", re.DOTALL)
_BRACKETS = re.compile(r"\[([^\[\]]+)\]")


@dataclass(frozen=True)
class InstructionTask:
    """Everything that defines an instruction-optimization problem (stored in config.json)."""

    dataset: str
    data_dir: str | None = None
    position: Position = "A_begin"
    scorer_style: ScorerStyle = "base"
    style: MetaStyle = "pretrained"
    exemplars: int = 3
    exemplar_selection: ExemplarSelection = "random"
    initial: tuple[str, ...] = ("",)
    max_train: int | None = None
    max_test: int | None = None
    test_top: int = 3
    answer_mode: Mode = "strict"
    scorer_max_tokens: int = 256
    extract: bool = False
    seed: int = 0
    numeric_digit_filter: bool = True
    """Refuse proposals with digits on numeric tasks (the paper's GSM8K leak filter)."""

    def __post_init__(self) -> None:
        check_position(self.position, self.scorer_style)
        checks = {
            "--exemplars must be >= 0": self.exemplars >= 0,
            "--test-top must be >= 1": self.test_top >= 1,
            "--max-test must be >= 1": self.max_test is None or self.max_test >= 1,
            "--scorer-max-tokens must be >= 1": self.scorer_max_tokens >= 1,
            "give at least one --initial instruction": len(self.initial) >= 1,
            "--style must be instruct or pretrained": self.style in ("instruct", "pretrained"),
            "--exemplar-selection must be random, constant or wrong": (
                self.exemplar_selection in ("random", "constant", "wrong")
            ),
        }
        for rule, ok in checks.items():
            if not ok:
                raise ConfigError(rule)
        for text in self.initial:
            if len(text) > MAX_LENGTH:
                raise ConfigError(f"an --initial instruction is over {MAX_LENGTH} characters")

    @property
    def scorer_options(self) -> ScorerOptions:
        return ScorerOptions(
            self.position, self.scorer_style, self.scorer_max_tokens, self.answer_mode, self.extract
        )

    def load_data(self) -> Dataset:
        """The dataset, with its training and test folds subsampled as configured."""
        dataset = load_dataset(
            self.dataset, self.data_dir, max_train=self.max_train, seed=self.seed
        )
        dataset.check_trainable()  # a transfer test set fails before a run directory exists
        if self.max_test is not None:
            dataset = replace(dataset, test=subsample(dataset.test, self.max_test, self.seed + 1))
        return dataset

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["initial"] = list(self.initial)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstructionTask:
        return cls(**{**data, "initial": tuple(data["initial"])})


def postprocess(text: str) -> str:
    """The paper's clean-up of a proposal: strip, drop ``**``, capitalise the first letter."""
    text = text.replace("**", "").strip()
    return text[:1].upper() + text[1:]


class InstructionOptimization(Problem[str]):
    name = "instructions"
    direction = "max"
    solution_label = "instruction"

    def __init__(self, task: InstructionTask, dataset: Dataset, scorer: LLM) -> None:
        if not dataset.train:
            raise ConfigError(f"{dataset.name} has no training examples: raise --max-train")
        self.task = task
        self.dataset = dataset
        self.scorer = scorer
        self.template = f"instructions_{task.style}.jinja"
        self.marks: dict[str, str] = {}
        """Per-example results on the training fold, by instruction."""
        self._constant = _draw(len(dataset.train), task.exemplars, np.random.default_rng(task.seed))

    # -- solutions ------------------------------------------------------------------

    def initial_solutions(self, rng: np.random.Generator) -> list[str]:
        return list(self.task.initial)

    def parse(self, text: str) -> str | None:
        raw = self._extract(text)
        if raw is None:
            return None
        instruction = postprocess(raw)
        if not instruction or len(instruction) > MAX_LENGTH or "INS" in instruction:
            return None
        leaks = self.dataset.kind == "numeric" and self.task.numeric_digit_filter
        if leaks and any(ch.isdigit() for ch in instruction):
            return None
        return instruction

    def _extract(self, text: str) -> str | None:
        if self.task.style == "pretrained":
            if "<TEXT>" in text:
                rest = text.partition("<TEXT>")[2]
                body, closed, _ = rest.partition("</TEXT>")
                return body if closed else None
            body, closed, _ = text.partition("</TEXT>")  # the prompt ended with <TEXT>
            return body if closed else None
        match = _INS.search(text) or _BRACKETS.search(text)
        return match.group(1) if match else None

    def canonical(self, solution: str) -> str:
        return solution

    def render(self, solution: str) -> str:
        return solution

    def to_json(self, solution: str) -> str:
        return solution

    def from_json(self, data: Any) -> str:
        return str(data)

    def is_optimal(self, solution: str, score: float) -> bool:
        return score >= 100.0

    def grammar(self) -> str | None:
        return PRETRAINED_GRAMMAR if self.task.style == "pretrained" else None

    def stop_sequences(self) -> tuple[str, ...]:
        return ("\n",) if self.task.style == "pretrained" else ()

    # -- scoring ------------------------------------------------------------------

    async def score(self, solutions: list[str]) -> list[float]:
        scores = await score_instructions(
            self.scorer, solutions, self.dataset.train, self.task.scorer_options
        )
        for result in scores:
            self.marks[result.instruction] = result.marks
        return [round(100.0 * (s.accuracy or 0.0), 6) for s in scores]

    def details(self, solution: str) -> dict[str, Any] | None:
        marks = self.marks.get(solution)
        return None if marks is None else {"marks": marks}

    def restore_details(self, solution: str, details: dict[str, Any]) -> None:
        self.marks[solution] = str(details["marks"])

    # -- the meta-prompt ------------------------------------------------------------

    def context(self, history: History[str], rng: np.random.Generator) -> dict[str, Any]:
        shown = [self.dataset.train[i] for i in self._exemplar_indices(rng)]
        return {
            "task": self.dataset.task,
            "position": self.task.position,
            "position_phrase": POSITION_PHRASES[self.task.position],
            "exemplars": [{"question": e.question, "answer": e.answer} for e in shown],
        }

    def _exemplar_indices(self, rng: np.random.Generator) -> list[int]:
        k, n = self.task.exemplars, len(self.dataset.train)
        if self.task.style == "pretrained" or k == 0:
            return []
        if self.task.exemplar_selection == "constant":
            return self._constant
        if self.task.exemplar_selection == "wrong" and self.marks:
            wrong = np.zeros(n)
            for marks in self.marks.values():
                wrong += np.array([m in "0e" for m in marks], dtype=float)
            # Most often wrong first; ties broken at random (seeded by the step).
            order = np.lexsort((rng.random(n), -wrong))
            return sorted(int(i) for i in order[: min(k, n)])
        return _draw(n, k, rng)

    # -- the end ------------------------------------------------------------------

    def summary(self, history: History[str]) -> dict[str, Any]:
        best = history.best()
        return {
            "dataset": self.dataset.name,
            "n_train": len(self.dataset.train),
            "best_instruction": None if best is None else best.solution,
            "best_train_score": None if best is None else best.score,
        }

    async def finalize(self, history: History[str]) -> dict[str, Any]:
        ranked = sorted(history.entries, key=lambda e: (-e.score, e.step))
        top = [e.solution for e in ranked[: self.task.test_top]]
        initial = [s for s in self.task.initial if history.seen(s)]
        chosen = list(dict.fromkeys(initial + top))
        results = await score_instructions(
            self.scorer, chosen, self.dataset.test, self.task.scorer_options
        )
        by_text = {r.instruction: r for r in results}
        train = {e.solution: e.score for e in history.entries}
        baseline = by_text[initial[0]] if initial else None
        best = history.best()
        assert best is not None
        rows = [_test_row(r, train[r.instruction], baseline) for r in results]
        best_test = by_text[best.solution]
        return {
            "n_test": len(self.dataset.test),
            "best_test_score": _percent(best_test),
            "initial_instruction": None if baseline is None else baseline.instruction,
            "initial_train_score": None if baseline is None else train[baseline.instruction],
            "initial_test_score": None if baseline is None else _percent(baseline),
            "paired_test": None
            if baseline is None
            else mcnemar_exact(baseline.marks, best_test.marks).to_json(),
            "test_evaluation": rows,
        }


def _percent(score: InstructionScore) -> float | None:
    return None if score.accuracy is None else round(100.0 * score.accuracy, 6)


def _test_row(
    score: InstructionScore, train_score: float, baseline: InstructionScore | None
) -> dict[str, Any]:
    paired = None if baseline is None else mcnemar_exact(baseline.marks, score.marks)
    return {
        "instruction": score.instruction,
        "train_score": train_score,
        "test_score": _percent(score),
        **{k: v for k, v in score.to_json().items() if k not in ("instruction", "accuracy")},
        "p_value_vs_initial": None if paired is None else paired.p_value,
        "marks": score.marks,
    }


def _draw(n: int, k: int, rng: np.random.Generator) -> list[int]:
    return sorted(int(i) for i in rng.choice(n, size=min(k, n), replace=False)) if k else []
