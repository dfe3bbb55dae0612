"""An instruction task's data and metric, from its spec: what ``opro optimize`` scores on
and what ``opro evaluate`` scores, the same way for both; and whether examples scored
after a run were among its training questions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import cast

from opro.data import Dataset, Example, load_dataset, subsample
from opro.data.formats import one_line
from opro.data.user import Fields, Rows
from opro.eval.metric import Metric, metric_for
from opro.llm.base import LLM
from opro.problems.instructions.spec import InlineData, InstructionsSpec
from opro.types import ANSWER_KINDS, AnswerKind

SPLIT = ("dataset", "test_dataset", "data_dir", "question_field", "answer_field", "train_ratio",
         "train_size")  # fmt: skip
"""The settings that, with the seed, decide which examples train and which test."""


def task_data(spec: InstructionsSpec, *, max_test: int | None = None) -> Dataset:
    """The task's examples in their folds: loaded, split, subsampled as the spec says; a
    ``metric`` naming an answer kind sets it on every example."""
    seed = spec.engine.seed
    data = load_dataset(
        spec.dataset.rows if isinstance(spec.dataset, InlineData) else spec.dataset,
        spec.data_dir,
        test=_source(spec.test_dataset),
        fields=Fields(spec.question_field, spec.answer_field),
        max_train=spec.max_train,
        train_ratio=spec.train_ratio,
        train_size=spec.train_size,
        seed=seed,
        name=spec.dataset.name if isinstance(spec.dataset, InlineData) else "inline",
    )
    limit = spec.max_test if max_test is None else max_test
    if limit is not None:
        data = replace(data, test=subsample(data.test, limit, seed + 1))
    if spec.task_description:
        data = replace(data, task=spec.task_description)
    if spec.metric in ANSWER_KINDS:
        kind = cast(AnswerKind, spec.metric)
        data = replace(
            data,
            kind=kind,
            train=tuple(replace(e, kind=kind) for e in data.train),
            test=tuple(replace(e, kind=kind) for e in data.test),
        )
    return data


def task_metric(spec: InstructionsSpec, llms: Mapping[str, LLM]) -> Metric:
    """The metric the spec names; an LLM judge is the ``judge`` role, else the scorer."""
    judge = llms.get("judge") or llms.get("scorer")
    return metric_for(spec.metric, spec.answer_mode, judge)


def _source(source: str | InlineData | None) -> str | Rows | None:
    return source.rows if isinstance(source, InlineData) else source


def training_overlap(trained: InstructionsSpec, examples: Sequence[Example]) -> int:
    """How many of ``examples`` ask a question of ``trained``'s training fold (the same
    text, whitespace aside): scored after a run of ``trained``, their accuracy is not a
    held-out one."""
    seen = {one_line(e.question) for e in task_data(trained).train}
    return sum(one_line(e.question) in seen for e in examples)


def split_changes(trained: InstructionsSpec, evaluated: InstructionsSpec) -> list[str]:
    """The settings of ``evaluated`` that split the data otherwise than ``trained`` did."""
    then, now = trained.model_dump(mode="json"), evaluated.model_dump(mode="json")
    changed = [name for name in SPLIT if then[name] != now[name]]
    return changed + (["seed"] if trained.engine.seed != evaluated.engine.seed else [])
