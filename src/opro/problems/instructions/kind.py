"""The ``instructions`` kind (``opro optimize``): its spec resolved against the models, its
problem built on the loaded dataset, and what a report shows of a run — the paper's figure
(every candidate's training accuracy per step, the best so far, the test accuracy of the top
instructions and of the start), the held-out table with intervals and paired tests, and
every candidate, so that selection on the training fold can be judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from opro.errors import OproError
from opro.eval.stats import wilson_interval
from opro.llm.base import LLM
from opro.llm.registry import backend_info
from opro.problems.base import Problem
from opro.problems.instructions.problem import InstructionOptimization, Outcome, TestRow
from opro.problems.instructions.spec import InlineData, InstructionsSpec
from opro.problems.instructions.task import task_data, task_metric
from opro.problems.jobs import JobRecord, RunRecord
from opro.problems.records import RunSummary
from opro.problems.registry import Kind, KindCli, KindReport, Plot, Table
from opro.problems.spec import RunSpec
from opro.types import Api

DASH = "—"
LONG_RUN_CALLS = 500
"""Model calls from which a run says before it starts what it will ask (and how long)."""
EMBEDDED_ANSWERS_PER_S = 2.5
"""Scorer answers a second from the embedded gemma3-270m on 2 CPU cores (the README's
bbh:hyperbaton run: 858 calls in about 5.5 minutes)."""
EMBEDDED_PROPOSAL_S = 1.0
"""Seconds an embedded optimizer takes for one proposal (~70 tokens at ~70 tokens/s)."""


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return "under a minute"
    if minutes < 90:
        return f"about {minutes:.0f} minutes"
    return f"about {minutes / 60:.1f} hours"


class InstructionsCli(KindCli):
    help = "find the instruction that maximises a scorer LLM's accuracy on a dataset (§4)"
    examples = (
        "opro optimize --dataset bbh:navigate --steps 3 --max-train 10   # offline, embedded",
        "opro optimize --dataset csv:reviews.csv --question-field text --answer-field label",
        "opro optimize --dataset gsm8k --scorer openai:gpt-4o-mini "
        "--optimizer openai:gpt-4o --budget-usd 5",
        "opro optimize --dataset bbh:navigate --out runs/nav --time-limit 600   # 10 min at most",
    )

    def describe(self, summary: RunSummary) -> list[str]:
        details = dict(summary.details)
        best = summary.best
        if best is None:
            return ["no instruction was scored"]
        start = _pct(details.get("initial_train_score"))
        start = _pct(details.get("initial_train_score"))
        lines = [
            f"best instruction: {_instruction(best.text)!r} (found at step {best.step})",
            f"train accuracy: {_pct(best.score)} % (start {start} % on {details.get('n_train')}"
            " questions)",
        ]
        outcome = Outcome.from_details(details)
        if outcome is None:
            return [*lines, "test accuracy: not scored yet (the run has not finished)"]
        paired = outcome.paired_test
        p = "" if paired is None else f", exact McNemar p = {paired.p_value:.3g}"
        begun = _pct(outcome.initial_test_score)
        test = f"{_pct(outcome.best_test_score)} % (start {begun} % on {outcome.n_test}{p})"
        return [*lines, f"test accuracy: {test}"]


class InstructionsReport(KindReport):
    overlay_axis = "best training accuracy so far (%)"

    def headline(self, summary: RunSummary) -> dict[str, float | None]:
        outcome = Outcome.from_details(dict(summary.details))
        return {
            "best_train_score": summary.best_score,
            "best_test_score": None if outcome is None else outcome.best_test_score,
        }

    def given_in_python(self, spec: RunSpec) -> list[str]:
        return [
            name
            for name in ("dataset", "test_dataset")
            if isinstance(getattr(spec, name), InlineData)
        ]

    def facts(self, job: JobRecord) -> list[tuple[str, str]]:
        run = job.runs[0]
        spec = run.spec
        assert isinstance(spec, InstructionsSpec)
        details = dict(run.summary.details) if run.summary else {}
        outcome = Outcome.from_details(details)
        best = run.best()
        best_train = None if best is None else best.score
        start = spec.initial[0]
        start_train = next((c.score for _, c in run.candidates() if c.solution == start), None)
        test = (outcome.best_test_score, outcome.initial_test_score) if outcome else (None, None)
        paired = outcome.paired_test if outcome else None
        return [
            ("dataset", str(details.get("dataset", spec.dataset))),
            ("instruction position", str(spec.position)),
            ("meta-prompt style", str(spec.style)),
            (
                "train / test examples",
                f"{_n(details.get('n_train'))} / {_n(details.get('n_test'))}",
            ),
            ("best instruction", _instruction(None if best is None else best.solution)),
            ("best: train / test accuracy", f"{_pct(best_train)} / {_pct(test[0])}"),
            ("initial instruction", _instruction(start)),
            ("initial: train / test accuracy", f"{_pct(start_train)} / {_pct(test[1])}"),
            (
                "best vs initial on test (exact McNemar)",
                DASH
                if paired is None
                else f"p = {paired.p_value:.3g} ({paired.n} paired examples; "
                f"{paired.only_baseline} right only under the initial, "
                f"{paired.only_other} only under the best)",
            ),
        ]

    def tables(self, job: JobRecord) -> list[Table]:
        run = job.runs[0]
        outcome = Outcome.from_details(dict(run.summary.details)) if run.summary else None
        return [
            _test_table(run, outcome),
            *([] if outcome is None else [_samples_table(run, outcome)]),
            _candidates_table(run, outcome),
        ]

    def figures(self, job: JobRecord) -> list[Plot]:
        from opro.problems.figures import instructions  # the report facet: loads matplotlib

        return instructions.figures(job)


class InstructionsKind(Kind[InstructionsSpec]):
    name = "instructions"
    command = "optimize"
    title = "instruction optimization"
    spec = InstructionsSpec
    problem = InstructionOptimization
    cli = InstructionsCli()
    report = InstructionsReport()

    def resolve(self, spec: InstructionsSpec, apis: Mapping[str, Api]) -> InstructionsSpec:
        return spec.resolved(dict(apis))

    def build(self, spec: InstructionsSpec, llms: Mapping[str, LLM]) -> InstructionOptimization:
        data = task_data(spec)
        return InstructionOptimization(spec, data, llms["scorer"], task_metric(spec, llms))

    def expected_work(
        self, spec: InstructionsSpec, problem: Problem[Any], steps: int, fresh: bool
    ) -> str | None:
        samples = spec.engine.samples_per_step
        train = len(problem.dataset.train) if isinstance(problem, InstructionOptimization) else 0
        proposals = steps * samples + (len(spec.initial) if fresh else 0)
        if steps * samples + proposals * train < LONG_RUN_CALLS:
            return None  # a short run: nothing to plan for
        text = (
            f"up to {steps * samples} optimizer calls ({steps} steps × {samples} samples) and "
            f"{proposals * train} scorer calls ({proposals} instructions × {train} training "
            "examples)"
        )
        models = {"scorer": spec.scorer, "optimizer": spec.optimizer}
        embedded = [role for role, m in models.items() if backend_info(m.backend).embedded]
        if not embedded:
            return text
        seconds, rates = 0.0, []
        if "scorer" in embedded:
            seconds += proposals * train / EMBEDDED_ANSWERS_PER_S
            rates.append(f"{EMBEDDED_ANSWERS_PER_S} answers/s")
        if "optimizer" in embedded:
            seconds += steps * samples * EMBEDDED_PROPOSAL_S
            rates.append(f"{EMBEDDED_PROPOSAL_S:g} s a proposal")
        return (
            f"{text}; {_duration(seconds)} with the embedded {' and '.join(embedded)} (an "
            f"estimate at {' and '.join(rates)}, measured on 2 CPU cores; fewer calls when "
            "proposals repeat or fail to parse)"
        )

    def upgrade(self, params: dict[str, JsonValue]) -> dict[str, JsonValue]:
        params["extract_answer"] = params.pop("extract", False)
        params.pop("seed", None)  # format 1 kept the run seed here too
        return params


def _test_table(run: RunRecord, outcome: Outcome | None) -> Table:
    headers = ("", "instruction", "train acc. %", "test acc. % (95 % CI)", "test n",
               "empty", "failed", "p vs initial")  # fmt: skip
    if outcome is None:
        note = "Not evaluated on the test fold yet (the run has not finished): resume it."
        return Table("Top instructions on the test fold", headers, (), "instructions", note)
    rows, rank = [], 0
    for r in outcome.test_evaluation:
        is_initial = r.instruction == outcome.initial_instruction
        rank += not is_initial
        rows.append(
            (
                "initial" if is_initial else f"top {rank}",
                _instruction(r.instruction),
                _pct(r.train_score),
                _with_interval(r.test_score, r.correct, r.n - r.failed),
                str(r.n),
                str(r.empty),
                str(r.failed),
                "baseline" if is_initial else _p(r.p_value_vs_initial),
            )
        )
    scored = [r for r in outcome.test_evaluation if r.instruction != outcome.initial_instruction]
    note = ""
    if len(scored) > 1 and scored[0].test_score is not None:
        best_test = max(scored, key=lambda r: r.test_score or 0.0)
        if (best_test.test_score or 0.0) > scored[0].test_score:
            note = (
                f"The best instruction by training accuracy is not the best on the test fold: "
                f"{_instruction(best_test.instruction)!r} scores {best_test.test_score:.1f} % "
                f"there. Selection uses the training fold only, as it must."
            )
    return Table("Top instructions on the test fold", headers, tuple(rows), "instructions", note)


SAMPLES = 8
"""Test questions shown with each top instruction's result in a report."""
MARK_WORDS = {"1": "right", "0": "wrong", "e": "no answer", "x": "call failed", "-": "not asked"}


def _samples_table(run: RunRecord, outcome: Outcome) -> Table:
    """A few test questions with their target and, per instruction scored on the test fold,
    whether its answer was right: where the best and the initial differ first. The marks are
    in summary.json; the questions are read again from the run's data (the same seeded
    folds); the model's own outputs are not kept in a run dir."""
    rows_of = outcome.test_evaluation
    caption = "Sample predictions on the test fold"
    headers = ("question", "target", *(_label(r, outcome, rows_of) for r in rows_of))
    spec = run.spec
    assert isinstance(spec, InstructionsSpec)
    try:
        test = task_data(spec).test
    except (OproError, OSError) as exc:
        note = f"The run's test questions could not be read again ({exc}): only marks are kept."
        return Table(caption, headers, (), "samples", note)
    marks = [r.marks or "" for r in rows_of]
    if any(len(m) != len(test) for m in marks):
        note = (f"The run's data now gives {len(test)} test questions, not the "
                f"{len(marks[0]) if marks else 0} it scored: its data changed since.")  # fmt: skip
        return Table(caption, headers, (), "samples", note)
    differ = [i for i in range(len(test)) if len({m[i] for m in marks}) > 1]
    chosen = sorted((differ + [i for i in range(len(test)) if i not in differ])[:SAMPLES])
    rows = tuple(
        (_clip(test[i].question), test[i].answer, *(MARK_WORDS.get(m[i], m[i]) for m in marks))
        for i in chosen
    )
    note = (
        f"{len(chosen)} of {len(test)} test questions, where the instructions' results differ "
        f"first ({len(differ)} such). A run dir keeps whether each answer was right, not the "
        "model's words: to read them, `opro evaluate --instructions-from "
        f"{run.path} --examples --json`."
    )
    return Table(caption, headers, rows, "samples", note)


def _label(row: TestRow, outcome: Outcome, rows: tuple[TestRow, ...]) -> str:
    if row.instruction == outcome.initial_instruction:
        return "initial"
    rank = [r for r in rows if r.instruction != outcome.initial_instruction].index(row) + 1
    return f"top {rank}"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _candidates_table(run: RunRecord, outcome: Outcome | None) -> Table:
    """Every candidate, best training accuracy first, with its test accuracy where scored."""
    tested = {r.instruction: r for r in outcome.test_evaluation} if outcome else {}
    headers = ("step", "instruction", "train acc. % (95 % CI)", "train n", "empty",
               "test acc. %")  # fmt: skip
    rows = []
    for step, c in run.ranked():
        marks = str((c.details or {}).get("marks", ""))
        answered = len(marks) - marks.count("x") - marks.count("-")
        test = tested.get(str(c.solution))
        train = _with_interval(c.score, marks.count("1"), answered) if marks else _pct(c.score)
        n = str(answered + marks.count("x")) if marks else DASH
        if c.partial is not None:
            train, n = f"{train}, partial", f"{c.partial.scored} of {c.partial.of}"
        rows.append(
            (
                str(step),
                _instruction(c.solution),
                train,
                n,
                str(marks.count("e")) if marks else DASH,
                DASH if test is None else _pct(test.test_score),
            )
        )
    caption = f"Every candidate ({len(rows)}), by training accuracy"
    dropped = sum(c.partial is not None for _, c in run.candidates())
    note = (
        f"Racing stopped scoring {dropped} candidates once they could not, with confidence, "
        "be shown in the meta-prompt: their accuracy is over the examples scored (listed last)."
        if dropped
        else ""
    )
    return Table(caption, headers, tuple(rows), "instructions", note)


def _instruction(value: object) -> str:
    return DASH if value is None else (str(value) or '"" (the empty instruction)')


def _pct(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else DASH


def _n(value: object) -> str:
    return DASH if value is None else str(value)


def _p(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else DASH


def _with_interval(score: float | None, correct: int, n: int) -> str:
    interval = wilson_interval(correct, n)
    if score is None or interval is None:
        return _pct(score)
    return f"{score:.1f} ({100 * interval[0]:.1f}–{100 * interval[1]:.1f})"


KIND = InstructionsKind()
