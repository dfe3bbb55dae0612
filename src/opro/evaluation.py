"""Scoring instructions on a task's split: ``aevaluate`` (the async core of ``opro.evaluate``
and ``opro evaluate``), its result ``Evaluation``, and what a run gives an evaluation: its
top instructions (``instructions_from``) and its task (``run_task``: data, folds, metric,
scorer and how it was prompted), with a check that the evaluated examples were not among
the run's training questions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opro.data import Example, subsample
from opro.errors import ConfigError
from opro.eval.scorer import InstructionScore, score_instructions
from opro.eval.stats import PairedTest, mcnemar_exact
from opro.llm.cache import CallCache
from opro.llm.usage import Budget, Caps, RoleUsage
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.instructions.task import split_changes, task_data, task_metric, training_overlap
from opro.problems.spec import build_spec
from opro.progress import Notices, Progress
from opro.runlog import RunDir

log = logging.getLogger(__name__)
Split = Literal["train", "test", "all"]


@dataclass(frozen=True)
class Evaluation:
    """Instructions scored on one split; ``paired[i]`` tests instruction i against the first."""

    dataset: str
    split: str
    scorer: str
    position: str
    results: tuple[InstructionScore, ...]
    paired: tuple[PairedTest | None, ...]
    elapsed_s: float
    usage: RoleUsage
    stopped: str | None = None
    """Why a cap stopped the evaluation before every example was asked (those are
    ``stopped``, left out of the accuracy); None when it ran to the end."""
    training_overlap: int | None = None
    """How many of the examples scored were training questions of the run the instructions
    came from (``trained_on``); None when not checked."""
    examples: tuple[Example, ...] = ()
    """The examples scored, in the order of each result's ``results``."""

    def to_json(self, *, examples: bool = False) -> dict[str, Any]:
        """One shape for any number of instructions: ``{"dataset": ..., "instructions":
        [...]}``; with ``examples``, each instruction's examples with their question and
        target."""
        rows = [
            self._with_questions(r.to_json(examples=examples))
            | ({} if p is None else {"paired_test_vs_first": p.to_json()})
            for r, p in zip(self.results, self.paired, strict=True)
        ]
        head: dict[str, Any] = {
            "dataset": self.dataset,
            "split": self.split,
            "scorer": self.scorer,
            "position": self.position,
        }
        if self.training_overlap is not None:
            head["training_overlap"] = self.training_overlap
        end = {"stopped": self.stopped} if self.stopped else {}
        return head | {
            "instructions": rows,
            "elapsed_s": round(self.elapsed_s, 3),
            "usage": self.usage.to_json(),
            **end,
        }

    def _with_questions(self, row: dict[str, Any]) -> dict[str, Any]:
        shown = row.get("examples")
        if shown is None or len(shown) != len(self.examples):
            return row
        return row | {
            "examples": [
                {"index": e["index"], "question": x.question, "target": x.answer}
                | {k: v for k, v in e.items() if k != "index"}
                for e, x in zip(shown, self.examples, strict=True)
            ]
        }


async def aevaluate(
    task: InstructionsSpec | str,
    instructions: Sequence[str],
    *,
    split: Split = "test",
    max_examples: int | None = None,
    seed: int = 0,
    cache: CallCache | None = None,
    caps: Caps | None = None,
    progress: Progress | None = None,
    trained_on: InstructionsSpec | None = None,
    allow_overlap: bool = False,
) -> Evaluation:
    """Score each instruction on ``split`` of ``task`` — the same spec an optimization takes
    (its data, fields, scorer, position, metric...), or a dataset's name with every default —
    with a paired test of each against the first; failed calls are reported apart.
    ``progress`` hears how many (instruction, example) pairs are scored. A cap reached
    stops the evaluation without losing what was answered: the examples not asked are
    ``stopped`` and ``Evaluation.stopped`` says why (rerun with a higher cap: the answered
    calls come from the cache). The calls go through ``cache`` (None: no cache; the sync
    ``opro.evaluate`` opens the default one).

    ``trained_on``: the spec of the run the instructions were optimized on (a run's
    ``result.spec``); the examples scored are checked against its training fold. A test
    split that holds training questions because the data were split otherwise than in the
    run (another seed, ratio, dataset...) is refused unless ``allow_overlap``; any other
    overlap is counted in ``Evaluation.training_overlap`` and told (``progress``'s
    notice, else a logged warning)."""
    if not instructions:
        raise ConfigError("give at least one instruction (or a run dir to take them from)")
    if split not in ("train", "test", "all"):
        raise ConfigError(f"split must be train, test or all, got {split!r}")
    if max_examples is not None and max_examples < 1:
        raise ConfigError(f"max_examples must be >= 1, got {max_examples}")
    spec = task if isinstance(task, InstructionsSpec) else InstructionsSpec(dataset=task)
    budget = Budget(caps)
    roles = {"scorer": spec.scorer} | ({"judge": spec.judge} if spec.judge else {})
    llms = {
        role: config.build(role, seed, cache=cache, budget=budget) for role, config in roles.items()
    }
    try:
        spec = spec.resolved({"scorer": llms["scorer"].api, "optimizer": "chat"})
        examples = task_data(spec.model_copy(update={"max_test": None})).split(split)
        if max_examples is not None:
            examples = subsample(examples, max_examples, seed)
        overlap = None
        if trained_on is not None:
            overlap = _check_overlap(trained_on, spec, examples, split, allow_overlap, progress)
        started = time.monotonic()
        results = await score_instructions(
            llms["scorer"],
            list(instructions),
            examples,
            spec.scorer_options,
            metric=task_metric(spec, llms),
            tolerate_failures=True,
            progress=progress,
        )
        elapsed = time.monotonic() - started
    finally:
        for llm in llms.values():
            await llm.aclose()
    first = results[0].marks
    paired = tuple(None if i == 0 else mcnemar_exact(first, r.marks) for i, r in enumerate(results))
    name = examples[0].dataset if examples else str(spec.dataset)
    position = spec.position if spec.instruction_in == "user" else "system"
    return Evaluation(
        name, split, spec.scorer.spec, str(position), tuple(results), paired, elapsed,
        budget.total(), budget.stopped, overlap, tuple(examples),
    )  # fmt: skip


def _check_overlap(
    trained: InstructionsSpec,
    spec: InstructionsSpec,
    examples: Sequence[Any],
    split: Split,
    allowed: bool,
    progress: Progress | None,
) -> int:
    """The examples that were training questions of ``trained``: refused on a test split
    that another split of the data made overlap, else told."""
    overlap = training_overlap(trained, examples)
    if not overlap:
        return 0
    share = f"{overlap} of the {len(examples)} {split} examples"
    changed = split_changes(trained, spec)
    if split == "test" and changed and not allowed:
        names = ", ".join(f"`{name}`" for name in changed)
        raise ConfigError(
            f"{share} were training questions of the run (this split differs from the run's: "
            f"{names}): leave those settings to the run to score its own test fold, or set "
            "`allow_overlap` to score them anyway"
        )
    why = "the run trained on them" if split != "test" else "the data repeat them"
    text = (
        f"opro: {share} are training questions of the run ({why}): their accuracy is not "
        "a held-out one"
    )
    tell = progress.notice if isinstance(progress, Notices) else log.warning
    tell(text)
    return overlap


def instructions_from(run_dir: Path | str, top: int = 3) -> list[str]:
    """A run's initial instruction(s), then its ``top`` instructions by training score."""
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    run = RunDir.open(run_dir)
    config = run.config()
    if config.runs:
        raise ConfigError(
            f"{run_dir} is a job of {len(config.runs)} runs: take the instructions of one of "
            f"them, e.g. {run.path / config.runs[0]}"
        )
    if not isinstance(config.spec, InstructionsSpec):
        raise ConfigError(f"{run_dir} is not an instruction-optimization run (`opro optimize`)")
    steps = run.read_steps()
    if not steps:
        raise ConfigError(f"{run_dir} has no scored instructions yet: resume it first")
    initial = [str(c.solution) for c in steps[0].candidates]
    scored = [(c.score, s.step, str(c.solution)) for s in steps for c in s.candidates]
    ranked = [text for _, _, text in sorted(scored, key=lambda t: (-t[0], t[1]))]
    return list(dict.fromkeys(initial + ranked[:top]))


def run_task(
    run_dir: Path | str, settings: Mapping[str, Any] | None = None, *, trust_code: bool = False
) -> tuple[InstructionsSpec, InstructionsSpec]:
    """The run's spec, and the task to evaluate its instructions on: that spec (its data,
    folds, metric, scorer and how it prompted) with the flat ``settings`` given over it (a
    new scorer is prompted at the run's position, in its own style). Code the task would
    import from the run dir (its ``module:function`` metric) needs ``trust_code`` unless
    this user's opro made the run dir, as for a resume."""
    config = RunDir.open(run_dir).config()
    trained = config.spec
    if not isinstance(trained, InstructionsSpec):
        raise ConfigError(f"{run_dir} is not an instruction-optimization run (`opro optimize`)")
    values = dict(settings or {})
    base = trained
    if values.keys() & {"scorer", "scorer_api"}:  # its prompt style is the new scorer's
        base = trained.model_copy(update={"scorer_style": None})
    task = build_spec(InstructionsSpec, values, base=base)
    code = [name for name in trained.imports() if name in task.imports()]
    if code and not trust_code and not config.signed:  # signed: a run dir this user made
        raise ConfigError(
            f"{run_dir} names code to import ({', '.join(code)}): evaluate with its task only "
            "if you trust where that run dir came from, with `trust_code` (or give that "
            "setting yourself)"
        )
    return trained, task
