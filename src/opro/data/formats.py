"""File formats: one reader per benchmark file type, and the user's JSONL/CSV files.

Owns: the ``Example`` type, the relative paths of the authors' ``data/``
layout, and turning one file into a list of ``Example`` (question text as shown to the
scorer, ground-truth answer as a string). Every unreadable or malformed file is a one-line
``ConfigError`` naming the file, the problem and the fix; no json/csv/Unicode error escapes.
Leaves out: which file a spec means and the kind of each BBH task (``opro.data.loaders``),
splitting (``opro.data.splits``) and downloading (``opro.data.fetch``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opro.errors import ConfigError
from opro.types import AnswerKind

if TYPE_CHECKING:
    from pydantic import JsonValue  # the types only: reading data needs no pydantic

GSM_TRAIN = "gsm_data/gsm_train.tsv"
GSM_TEST = "gsm_data/gsm_test.tsv"
BBH_DIR = "BIG-Bench-Hard-data"
MULTIARITH = "MultiArith-data/MultiArith.json"
AQUA = "AQuA-data/AQuA.json"
MMLU_DIR = "MMLU-data/test"

#: The line the authors append to every AQuA / MMLU question (shown to the scorer).
AQUA_ASK = "What's the answer in (A) (B) (C) (D) (E)?"
MMLU_ASK = "What's the answer in (A) (B) (C) (D)?"

FETCH_HINT = (
    "give `data_dir` or set OPRO_DATA_DIR (laid out like the authors' data/ folder), "
    "or run `opro data fetch`"
)
REFETCH_HINT = "re-download it with `opro data fetch --force`"
USER_HINT = "fix the file (fields: question, answer, optional kind)"


@dataclass(frozen=True)
class Example:
    """One question with its ground truth; ``index`` is its row in the source file."""

    question: str
    answer: str
    kind: AnswerKind
    index: int
    dataset: str = ""
    """The spec of the dataset it belongs to (``bbh:snarks``), set by ``load_dataset``; paper-mode
    scoring reads the authors' settings for it. "" for examples built by hand."""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """A user row's other fields, for a metric of the user's own."""


def one_line(text: str) -> str:
    """Collapse all whitespace runs (newlines included) to single spaces."""
    return " ".join(text.split())


def _bad(label: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(one_line(f"{label}: {problem}: {hint}"))


MAX_MB_ENV = "OPRO_MAX_DATASET_MB"
DEFAULT_MAX_MB = 64
"""A dataset file is read up to this size (the largest benchmark file is under 5 MB), so that
``jsonl:/dev/zero`` or a wrong multi-gigabyte file is refused at once, not read into memory."""


def max_file_bytes() -> int:
    """``$OPRO_MAX_DATASET_MB`` (default ``DEFAULT_MAX_MB``) in bytes."""
    raw = os.environ.get(MAX_MB_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_MB
    except ValueError:
        megabytes = -1
    if not 0 < megabytes < 1e7:
        raise ConfigError(f"{MAX_MB_ENV}={raw!r} is not a size in MB: set e.g. {MAX_MB_ENV}=256")
    return int(megabytes * 1e6)


def _read_text(path: Path, label: str, hint: str) -> str:
    limit = max_file_bytes()
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)  # never more: a stream (/dev/zero) or a huge file
        if len(raw) > limit:
            raise ConfigError(
                f"{label} is over the {limit / 1e6:g} MB limit of a dataset file: check the "
                f"file, or raise the limit with {MAX_MB_ENV}=N (megabytes)"
            )
        return raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(one_line(f"{label} not found: {hint}")) from None
    except UnicodeDecodeError as exc:
        raise _bad(label, f"not UTF-8 text (byte {exc.start})", hint) from None
    except OSError as exc:
        raise _bad(label, f"cannot read ({exc.strerror or exc})", hint) from None


def _csv_rows(text: str, label: str, hint: str, **fmt: Any) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with their 1-based line numbers; csv errors become ``ConfigError``."""
    reader = csv.reader(io.StringIO(text, newline=""), **fmt)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, row
    except csv.Error as exc:
        raise _bad(label, f"line {reader.line_num}: {exc}", hint) from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _json(text: str, label: str, hint: str, line: int | None = None) -> Any:
    try:
        value = json.loads(text)
        if _SURROGATE_ESCAPE.search(text):  # "\ud83d\ude00" is an emoji, "\ud800" alone no text
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        return value
    except UnicodeEncodeError:
        where = f"line {line}: " if line is not None else ""
        problem = f"{where}a lone surrogate escape (such as \\ud800) is not text"
        raise _bad(label, problem, hint) from None
    except json.JSONDecodeError as exc:
        where = f"line {line}" if line is not None else f"line {exc.lineno} column {exc.colno}"
        raise _bad(label, f"bad JSON at {where} ({exc.msg})", hint) from None
    except RecursionError:  # [[[[...]]]] deeper than the parser goes
        raise _bad(label, "JSON nested too deeply", hint) from None
    except ValueError:  # an integer of over 4,300 digits (sys.get_int_max_str_digits())
        where = f"line {line}: " if line is not None else ""
        raise _bad(label, f"{where}a number too long to read", hint) from None


def answer_text(value: Any) -> str | None:
    """A ground truth as text: numbers without a trailing ``.0``; None if not text/number."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _field(row: Any, name: str, where: str, label: str, hint: str) -> Any:
    if not isinstance(row, dict):
        raise _bad(label, f"{where} is not a JSON object", hint)
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _bad(label, f"{where} has no field {name!r}", hint)
    return value


def _nonempty(examples: list[Example], label: str, hint: str) -> list[Example]:
    if not examples:
        raise _bad(label, "no examples (empty dataset)", hint)
    return examples


def read_gsm(path: Path, label: str | None = None) -> list[Example]:
    """gsm_train.tsv / gsm_test.tsv: question, numeric answer, solution; no header."""
    label = label or str(path)
    text = _read_text(path, label, FETCH_HINT)
    out: list[Example] = []
    rows = _csv_rows(text, label, REFETCH_HINT, delimiter="\t", quoting=csv.QUOTE_NONE)
    for line, row in rows:
        if len(row) != 3:
            problem = f"line {line} has {len(row)} tab-separated columns, expected 3"
            raise _bad(label, problem, REFETCH_HINT)
        out.append(Example(row[0].strip(), row[1].strip(), "numeric", len(out)))
    return _nonempty(out, label, REFETCH_HINT)


def read_bbh(path: Path, kind: AnswerKind, label: str | None = None) -> list[Example]:
    """A BIG-Bench Hard file: {"examples": [{"input", "target"}, ...]}; input kept as is."""
    label = label or str(path)
    data = _json(_read_text(path, label, FETCH_HINT), label, REFETCH_HINT)
    items = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise _bad(label, "no 'examples' list at the top level", REFETCH_HINT)
    out: list[Example] = []
    for i, item in enumerate(items):
        question = _field(item, "input", f"example {i}", label, REFETCH_HINT)
        target = answer_text(_field(item, "target", f"example {i}", label, REFETCH_HINT))
        if not isinstance(question, str) or target is None:
            raise _bad(label, f"example {i}: input/target is not text", REFETCH_HINT)
        out.append(Example(question, target, kind, i))
    return _nonempty(out, label, REFETCH_HINT)


def read_multiarith(path: Path, label: str | None = None) -> list[Example]:
    """MultiArith.json: a list of {"sQuestion", "lSolutions": [number]}."""
    label = label or str(path)
    data = _json(_read_text(path, label, FETCH_HINT), label, REFETCH_HINT)
    if not isinstance(data, list):
        raise _bad(label, "expected a JSON list of problems", REFETCH_HINT)
    out: list[Example] = []
    for i, item in enumerate(data):
        question = _field(item, "sQuestion", f"problem {i}", label, REFETCH_HINT)
        solutions = _field(item, "lSolutions", f"problem {i}", label, REFETCH_HINT)
        answer = answer_text(solutions[0]) if isinstance(solutions, list) and solutions else None
        if not isinstance(question, str) or answer is None:
            raise _bad(label, f"problem {i}: bad sQuestion or lSolutions", REFETCH_HINT)
        out.append(Example(question.strip(), answer, "numeric", i))
    return _nonempty(out, label, REFETCH_HINT)


def read_aqua(path: Path, label: str | None = None) -> list[Example]:
    """AQuA.json: one {"question", "options": ["A)..."], "correct": "A"} per line.

    Question text as the authors build it (``_format_aqua_example``): the question as written,
    each option on its own line behind "(" ("(A)21"), then "What's the answer in (A) (B) (C)
    (D) (E)?"; answer ``"(A)"``.
    """
    label = label or str(path)
    out: list[Example] = []
    for line, raw in enumerate(_read_text(path, label, FETCH_HINT).splitlines(), start=1):
        if not raw.strip():
            continue
        item, where = _json(raw, label, REFETCH_HINT, line), f"line {line}"
        question = _field(item, "question", where, label, REFETCH_HINT)
        options = _field(item, "options", where, label, REFETCH_HINT)
        correct = str(_field(item, "correct", where, label, REFETCH_HINT)).strip().upper()
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise _bad(label, f"{where}: 'options' is not a list of strings", REFETCH_HINT)
        if not isinstance(question, str) or not re.fullmatch(r"[A-Z]", correct):
            raise _bad(label, f"{where}: bad 'question' or 'correct'", REFETCH_HINT)
        shown = "".join(f"\n({option}" for option in options)
        text = f"{question}{shown}\n{AQUA_ASK}"
        out.append(Example(text, f"({correct})", "choice", len(out)))
    return _nonempty(out, label, REFETCH_HINT)


def read_mmlu(path: Path, label: str | None = None) -> list[Example]:
    """An MMLU SUBJECT_test.csv: question, A, B, C, D, answer letter; no header.

    Question text as the authors build it (``_format_mmlu_example``, which the scorer and the
    meta-prompt's exemplars both see): ``question + "\\n(A) a\\n(B) b\\n(C) c\\n(D) d"`` then
    "\\nWhat's the answer in (A) (B) (C) (D)?"; answer ``"(B)"``. (Their pandas reader turns a
    cell reading "None" into "nan"; here it stays "None".)
    """
    label = label or str(path)
    out: list[Example] = []
    for line, row in _csv_rows(_read_text(path, label, FETCH_HINT), label, REFETCH_HINT):
        if len(row) != 6 or row[5].strip().upper() not in ("A", "B", "C", "D"):
            problem = f"line {line}: expected question, A, B, C, D, answer letter"
            raise _bad(label, problem, REFETCH_HINT)
        choices = "".join(f"\n({c}) {row[i + 1]}" for i, c in enumerate("ABCD"))
        text = f"{row[0]}{choices}\n{MMLU_ASK}"
        out.append(Example(text, f"({row[5].strip().upper()})", "choice", len(out)))
    return _nonempty(out, label, REFETCH_HINT)


def read_records(
    fmt: Literal["jsonl", "csv"], path: Path
) -> tuple[list[int], list[dict[str, JsonValue]]]:
    """The rows of a user file and the line each is on: JSON lines (each an object), or CSV
    with a header row (its names lower-cased); blank lines skipped. What the fields mean is
    ``opro.data.user``."""
    label = str(path)
    text = _read_text(path, f"dataset file {label}", f"check the path after {fmt}:")
    lines: list[int] = []
    out: list[dict[str, JsonValue]] = []
    if fmt == "jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                row = _json(raw, label, USER_HINT, line)
                if not isinstance(row, dict):
                    raise _bad(label, f"line {line} is not a JSON object", USER_HINT)
                lines.append(line)
                out.append(row)
    else:
        rows = _csv_rows(text, label, USER_HINT)
        header = [cell.strip().lower() for cell in next(rows, (0, []))[1]]
        for line, cells in rows:
            if len(cells) > len(header):
                raise _bad(label, f"line {line} has more columns than the header", USER_HINT)
            lines.append(line)
            out.append(dict(zip(header, (cell.strip() for cell in cells), strict=False)))
    if not out:
        raise _bad(label, "no examples (empty dataset)", USER_HINT)
    return lines, out
