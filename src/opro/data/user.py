"""The user's own data: rows from a JSONL or CSV file (``jsonl:PATH``, ``csv:PATH``) or from
memory (a list of dicts, a pandas DataFrame, a Hugging Face ``datasets.Dataset``: anything
that gives mappings), with the question and answer fields named as the user names them, and
a training and a test fold: a separate test source, or a seeded split by ratio or size.

Fields other than the question, the answer and the kind are kept on each example
(``Example.extra``), for a metric of the user's own. In-memory sources are read by duck
typing: pandas and datasets are never imported here. Every problem is a one-line
``ConfigError`` that names the fix with real flags.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from opro.data.formats import Example, answer_text, read_records
from opro.errors import ConfigError
from opro.types import ANSWER_KINDS, AnswerKind

Rows = Sequence[Mapping[str, Any]]
DEFAULT_RATIO = 0.2
"""As the paper's BBH split: 20 % of the examples train, the rest test."""


@dataclass(frozen=True)
class Fields:
    """Where a row keeps its question, its answer and (optionally) its answer kind."""

    question: str = "question"
    answer: str = "answer"
    kind: str = "kind"


DEFAULT_FIELDS = Fields()


def rows_of(data: Any, label: str = "the data") -> list[dict[str, object]]:
    """Rows from memory: a list of mappings, a DataFrame (``to_dict("records")``), a
    ``datasets.Dataset`` or any iterable of mappings."""
    if isinstance(data, str | bytes | Mapping):
        raise ConfigError(f"{label} is not a list of rows: give a list of dicts or a DataFrame")
    if hasattr(data, "iloc") and hasattr(data, "to_dict"):
        data = data.to_dict("records")  # pandas (a datasets.Dataset iterates over its rows)
    try:
        rows = [dict(row) for row in cast(Iterable[Mapping[str, Any]], data)]
    except (TypeError, ValueError):
        raise ConfigError(
            f"{label} is not a list of rows: give a list of dicts, a pandas DataFrame or a "
            "datasets.Dataset"
        ) from None
    if not rows:
        raise ConfigError(f"{label} has no rows: give at least one example")
    return rows


@dataclass(frozen=True)
class Source:
    """Rows of the user's, with their name and where each came from (a file's lines)."""

    name: str
    rows: Sequence[Mapping[str, object]]
    lines: list[int] | None = None


def read_source(data: str | Rows, name: str = "inline") -> Source:
    """``jsonl:PATH`` / ``csv:PATH`` (named by its absolute path), or rows in memory."""
    if not isinstance(data, str):
        return Source(name, rows_of(data, name))
    prefix, _, arg = data.strip().partition(":")
    path = Path(arg.strip()).expanduser().resolve()
    fmt = prefix.strip().lower()
    if fmt not in ("jsonl", "csv") or not arg.strip():
        raise ConfigError(f"{data!r} is not a data file: write jsonl:PATH or csv:PATH")
    lines, rows = read_records(cast(Any, fmt), path)
    return Source(f"{fmt}:{path}", rows, lines)


def to_examples(source: Source, fields: Fields) -> list[Example]:
    """Examples from rows: question and answer from their fields, the kind from its field
    (default ``text``), the other fields kept in ``extra``."""
    out = []
    for i, row in enumerate(source.rows):
        where = f"{source.name} " + (f"line {source.lines[i]}" if source.lines else f"row {i + 1}")
        missing = [f for f in (fields.question, fields.answer) if _blank(row.get(f))]
        if missing:
            raise ConfigError(
                f"{where} has no field {missing[0]!r} (its fields: {', '.join(map(str, row))}): "
                "name the fields with question_field and answer_field, or fix the file"
            )
        question, answer = row[fields.question], answer_text(row[fields.answer])
        if not isinstance(question, str) or answer is None:
            raise ConfigError(
                f"{where}: the question must be text and the answer text or a number: fix the file"
            )
        kind = row.get(fields.kind) or "text"
        if kind not in ANSWER_KINDS:
            raise ConfigError(
                f"{where}: kind {kind!r} is not one of {', '.join(ANSWER_KINDS)}: fix the file"
            )
        extra = {k: v for k, v in row.items() if k not in (fields.question, fields.answer)}
        out.append(Example(question, answer, kind, i, source.name, extra))
    return out


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def majority_kind(examples: Sequence[Example]) -> AnswerKind:
    return Counter(e.kind for e in examples).most_common(1)[0][0]


def task_name(name: str) -> str:
    """What the meta-prompt calls a file's task when nothing describes it: its stem."""
    stem = Path(name.partition(":")[2]).stem if ":" in name else name
    return re.sub(r"[_\-]+", " ", stem) or "the user's"


def split_train(
    n: int,
    *,
    ratio: float | None,
    size: int | None,
    seed: int,
    label: str,
) -> tuple[list[int], list[int]]:
    """(train, test) indices of ``range(n)``: ``size`` training examples, or ``int(ratio * n)``
    (default 20 %), drawn as the authors draw (legacy numpy, seeded), both ascending."""
    if size is not None and ratio is not None:
        raise ConfigError("give train_size or train_ratio, not both")
    if size is not None and size >= n:
        raise ConfigError(
            f"{label} has {n} examples: train_size {size} leaves none to test on: give "
            f"train_size below {n}, or give the test examples apart with test_dataset"
        )
    count = size if size is not None else int((DEFAULT_RATIO if ratio is None else ratio) * n)
    rng = np.random.RandomState(seed)
    train = sorted(int(i) for i in rng.choice(n, count, replace=False)) if count else []
    chosen = set(train)
    return train, [i for i in range(n) if i not in chosen]
