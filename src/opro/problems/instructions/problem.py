"""Instruction optimization (OPRO §4): a solution is an instruction; its score is the
scorer LLM's accuracy (×100) on the training fold with the instruction inserted.

Owns the proposal's parsing and post-processing (strip, drop ``**``, capitalise; refuse
over 500 characters, containing ``INS`` or another mark of the meta-prompt (it would forge
an entry), or — numeric tasks — containing digits, which leak answers), the meta-prompt's
exemplars (random per step, constant, or the examples most often answered wrong), and the
final held-out evaluation: the top instructions by training accuracy and the initial
instruction(s) on the test fold, with a paired test. Selection is on training accuracy
only; the test fold is read once, at the end. With ``evaluation = "race"`` a step's
proposals are raced (``opro.eval.racing``) against the bar the optimizer gives: one dropped
keeps its partial score, and is never chosen. The scoring itself is ``opro.eval.scorer``;
the data ``opro.data``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, JsonValue
from pydantic.dataclasses import dataclass

from opro.data import Dataset
from opro.eval.metric import AnswerMetric, Metric
from opro.eval.racing import RaceRule, race_order
from opro.eval.scorer import (
    MARKS_PATTERN,
    InstructionScore,
    race_instructions,
    score_instructions,
)
from opro.eval.stats import PairedTest, mcnemar_exact
from opro.history import History
from opro.llm.base import LLM
from opro.problems.base import (
    KindSummary,
    Partial,
    Problem,
    ProposalFormat,
    ScoringContext,
    SolutionScore,
)
from opro.problems.instructions.spec import MAX_LENGTH, InstructionsSpec, meta_prompt_mark
from opro.record import RECORD, Count, JsonRecord, Number, Seconds

POSITION_PHRASES = {
    "Q_begin": "at the beginning of the question",
    "Q_end": "at the end of the question",
    "A_begin": "at the beginning of the answer",
    "before_Q": "before the question",
    "system": "in the system message",
}
PRETRAINED_GRAMMAR = r"""root ::= " " [0-9] [0-9]? " <TEXT>" [A-Za-z] [^<>\n]{3,100} "</TEXT>"
"""
"""``constrained`` with the pre-trained style: one well-formed ``Precision`` line, short
enough (100 characters) to close within the style's 64 tokens even when a small model writes
something token-hungry; a longer cap let most proposals run out before ``</TEXT>``."""
_INS = re.compile(r"<INS>(.*?)</INS>", re.DOTALL)
_BRACKETS = re.compile(r"\[([^\[\]]+)\]")


def postprocess(text: str) -> str:
    """The paper's clean-up of a proposal: strip, drop ``**``, capitalise the first letter."""
    text = text.replace("**", "").strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True, config=RECORD)
class TestRow(JsonRecord):
    """One instruction scored on the test fold at the end of a run."""

    instruction: str
    """the instruction"""
    train_score: Number
    """its training accuracy (percent)"""
    test_score: Number | None
    """its test accuracy (percent; null when nothing was answered)"""
    n: Count
    """test examples"""
    correct: Count
    """examples answered correctly"""
    wrong: Count
    """examples answered wrongly"""
    empty: Count
    """examples with no answer found"""
    failed: Count
    """examples whose scorer call failed"""
    elapsed_s: Seconds
    """seconds its scoring took"""
    p_value_vs_initial: Number | None
    """exact McNemar p-value against the baseline"""
    marks: Annotated[str, Field(pattern=MARKS_PATTERN)]
    """per example: 1 correct, 0 wrong, e empty, x failed, - not asked"""

    @classmethod
    def of(
        cls, score: InstructionScore, train: float, baseline: InstructionScore | None
    ) -> TestRow:
        paired = None if baseline is None else mcnemar_exact(baseline.marks, score.marks)
        return cls(
            score.instruction,
            train,
            score.accuracy,
            score.n,
            score.count("correct"),
            score.count("wrong"),
            score.count("empty"),
            score.count("failed"),
            round(score.elapsed_s, 3),
            None if paired is None else paired.p_value,
            score.marks,
        )


@dataclass(frozen=True, config=RECORD)
class Outcome(JsonRecord):
    """The held-out evaluation of a finished run (its fields in summary.json)."""

    n_test: Count
    """examples in the test fold"""
    best_test_score: Number | None
    """the best instruction's test accuracy (percent)"""
    initial_instruction: str | None
    """the first starting instruction (the baseline)"""
    initial_train_score: Number | None
    """its training accuracy"""
    initial_test_score: Number | None
    """its test accuracy"""
    paired_test: PairedTest | None
    """the best instruction against the baseline on the test fold"""
    test_evaluation: tuple[TestRow, ...]
    """each instruction scored on the test fold: the baseline(s) and the top ones by
    training accuracy"""

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> Outcome | None:
        """The outcome in a summary's details, if the final evaluation is done."""
        if "test_evaluation" not in details:
            return None
        return cls.from_json({f.name: details.get(f.name) for f in fields(cls)})


class InstructionDetails(KindSummary):
    marks: Annotated[str, Field(pattern=MARKS_PATTERN)] = Field(
        description="per training example, 1 correct, 0 wrong, e empty, x failed, - not "
        "scored (racing)"
    )


class InstructionsSummary(KindSummary):
    dataset: str = Field(description="the training dataset's name")
    n_train: int = Field(description="examples in the training fold")
    best_instruction: str | None = Field(description="the best instruction so far")
    best_train_score: float | None = Field(description="its training accuracy (percent)")
    initial_train_score: float | None = Field(
        None,  # written after every step only since a later release: never required
        description="the first starting instruction's training accuracy (percent; null "
        "until step 0 scored it)",
    )


class InstructionOptimization(Problem[str]):
    direction = "max"
    summary_model = InstructionsSummary
    outcome_model: ClassVar[type[Outcome]] = Outcome
    details_model = InstructionDetails

    def __init__(
        self, spec: InstructionsSpec, dataset: Dataset, scorer: LLM, metric: Metric | None = None
    ) -> None:
        dataset.check_trainable()
        self.spec = spec
        self.dataset = dataset
        self.scorer = scorer
        self.metric: Metric = metric or AnswerMetric(spec.answer_mode)
        pretrained = spec.style == "pretrained"
        self.proposal = ProposalFormat(
            f"instructions_{spec.style}.jinja",
            stop=("\n",) if pretrained else (),
            grammar=PRETRAINED_GRAMMAR if pretrained else None,
        )
        rng = np.random.default_rng(spec.engine.seed)
        self._constant = _draw(len(dataset.train), spec.exemplars, rng)

    # -- solutions ------------------------------------------------------------------

    def initial_solutions(self, rng: np.random.Generator) -> list[str]:
        return list(self.spec.initial)

    def parse(self, text: str) -> str | None:
        raw = self._extract(text)
        if raw is None:
            return None
        instruction = postprocess(raw)
        if not instruction or len(instruction) > MAX_LENGTH or "INS" in instruction:
            return None
        if meta_prompt_mark(instruction):  # it would forge a scored entry: a parse failure
            return None
        leaks = self.dataset.kind == "numeric" and self.spec.numeric_digit_filter
        if leaks and any(ch.isdigit() for ch in instruction):
            return None
        return instruction

    def _extract(self, text: str) -> str | None:
        if self.spec.style == "pretrained":
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

    def from_json(self, data: Any) -> str:
        return str(data)

    # -- scoring ------------------------------------------------------------------

    async def score(self, solutions: list[str], context: ScoringContext) -> list[SolutionScore]:
        train, options, spec = self.dataset.train, self.spec.scorer_options, self.spec
        if spec.evaluation == "race" and context.bar is not None:
            rule = RaceRule(spec.race_delta, spec.race_rounds)
            order = race_order(len(train), spec.engine.seed, context.step)
            results = await race_instructions(
                self.scorer,
                solutions,
                train,
                options,
                bar=context.bar,
                order=order,
                rule=rule,
                metric=self.metric,
            )
        else:
            results = await score_instructions(
                self.scorer, solutions, train, options, metric=self.metric
            )
        return [
            SolutionScore(
                score,
                optimal=score >= 100.0 and not r.partial,
                details={"marks": r.marks},
                partial=Partial(r.scored, r.n) if r.partial else None,
            )
            for r in results
            for score in [r.accuracy or 0.0]
        ]

    # -- the meta-prompt ------------------------------------------------------------

    def context(self, history: History[str], rng: np.random.Generator) -> dict[str, object]:
        shown = [self.dataset.train[i] for i in self._exemplar_indices(history, rng)]
        assert self.spec.position is not None
        position = "system" if self.spec.instruction_in == "system" else self.spec.position
        return {
            "task": self.dataset.task,
            "description": self.spec.task_description,
            "position": position,
            "position_phrase": POSITION_PHRASES[position],
            "exemplars": [{"question": e.question, "answer": e.answer} for e in shown],
        }

    def _exemplar_indices(self, history: History[str], rng: np.random.Generator) -> list[int]:
        k, n = self.spec.exemplars, len(self.dataset.train)
        if self.spec.style == "pretrained" or k == 0:
            return []
        if self.spec.exemplar_selection == "constant":
            return self._constant
        marks = [str(e.details["marks"]) for e in history.entries if e.details]
        if self.spec.exemplar_selection == "wrong" and marks:
            wrong = np.zeros(n)
            for row in marks:
                wrong += np.array([m in "0e" for m in row], dtype=float)
            # Most often wrong first; ties broken at random (seeded by the step).
            order = np.lexsort((rng.random(n), -wrong))
            return sorted(int(i) for i in order[: min(k, n)])
        return _draw(n, k, rng)

    # -- the end ------------------------------------------------------------------

    def summary(self, history: History[str]) -> InstructionsSummary:
        best = history.best()
        train = {e.solution: e.score for e in history.entries}
        start = next((s for s in self.spec.initial if s in train), None)  # as ``finalize``
        return InstructionsSummary(
            dataset=self.dataset.name,
            n_train=len(self.dataset.train),
            best_instruction=None if best is None else best.solution,
            best_train_score=None if best is None else best.score,
            initial_train_score=None if start is None else train[start],
        )

    async def finalize(self, history: History[str]) -> dict[str, JsonValue]:
        ranked = sorted(history.complete(), key=lambda e: (-e.score, e.step))
        top = [e.solution for e in ranked[: self.spec.test_top]]
        initial = [s for s in self.spec.initial if history.seen(s)]
        chosen = list(dict.fromkeys(initial + top))
        results = await score_instructions(
            self.scorer, chosen, self.dataset.test, self.spec.scorer_options, metric=self.metric
        )
        by_text = {r.instruction: r for r in results}
        train = {e.solution: e.score for e in history.entries}
        baseline = by_text[initial[0]] if initial else None
        best = history.best()
        assert best is not None
        best_test = by_text[best.solution]
        outcome = Outcome(
            n_test=len(self.dataset.test),
            best_test_score=best_test.accuracy,
            initial_instruction=None if baseline is None else baseline.instruction,
            initial_train_score=None if baseline is None else train[baseline.instruction],
            initial_test_score=None if baseline is None else baseline.accuracy,
            paired_test=None
            if baseline is None
            else mcnemar_exact(baseline.marks, best_test.marks),
            test_evaluation=tuple(TestRow.of(r, train[r.instruction], baseline) for r in results),
        )
        return outcome.to_json()


def _draw(n: int, k: int, rng: np.random.Generator) -> list[int]:
    return sorted(int(i) for i in rng.choice(n, size=min(k, n), replace=False)) if k else []
