"""Benchmark and user datasets as typed, split examples.

Owns: the ``Dataset`` type, the dataset specs (``gsm8k``, ``bbh:TASK``, ``multiarith``,
``aqua``, ``mmlu:SUBJECT``, ``synthetic:TASK``, ``jsonl:PATH``, ``csv:PATH``) and which file
each one reads,
where benchmark files live (``$OPRO_DATA_DIR``, laid out like the authors' ``data/``
folder), the answer kind of every task, and turning a spec into train/test folds. Every bad
spec is a one-line ``ConfigError`` naming the fix. Leaves out: parsing files
(``opro.data.formats``), index draws (``opro.data.splits``), downloading
(``opro.data.fetch``) and scoring answers (the scorer).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import platformdirs

from opro.data.formats import (
    AQUA,
    BBH_DIR,
    FETCH_HINT,
    GSM_TEST,
    GSM_TRAIN,
    MMLU_DIR,
    MULTIARITH,
    Example,
    one_line,
    read_aqua,
    read_bbh,
    read_gsm,
    read_mmlu,
    read_multiarith,
)
from opro.data.splits import DEFAULT_TRAIN_RATIOS, check_ratio, split_indices, subsample
from opro.data.synthetic import adjective_order
from opro.data.user import (
    DEFAULT_FIELDS,
    Fields,
    Rows,
    majority_kind,
    read_source,
    split_train,
    task_name,
    to_examples,
)
from opro.errors import ConfigError
from opro.types import AnswerKind

_BBH_BY_KIND: dict[AnswerKind, tuple[str, ...]] = {
    "numeric": ("multistep_arithmetic_two", "object_counting"),
    "boolean": ("boolean_expressions", "causal_judgement", "formal_fallacies", "navigate",
                "sports_understanding", "web_of_lies"),
    "text": ("dyck_languages", "word_sorting"),
    "choice": ("date_understanding", "disambiguation_qa", "geometric_shapes", "hyperbaton",
               "logical_deduction_five_objects", "logical_deduction_seven_objects",
               "logical_deduction_three_objects", "movie_recommendation",
               "penguins_in_a_table", "reasoning_about_colored_objects", "ruin_names",
               "salient_translation_error_detection", "snarks", "temporal_sequences",
               "tracking_shuffled_objects_five_objects",
               "tracking_shuffled_objects_seven_objects",
               "tracking_shuffled_objects_three_objects"),
}  # fmt: skip
#: The answer kind of each of the 27 BIG-Bench Hard files, by file stem.
BBH_KINDS: Mapping[str, AnswerKind] = MappingProxyType(
    {task: kind for kind, tasks in _BBH_BY_KIND.items() for task in tasks}
)
BBH_TASKS: tuple[str, ...] = tuple(sorted(BBH_KINDS))

#: The tasks opro generates (``synthetic:TASK``): no file, no network.
SYNTHETIC = MappingProxyType({"adjective_order": adjective_order})

#: The paper's transfer test sets: by default the whole file is the test fold, no training
#: fold (an explicit ``load_dataset(..., train_ratio=...)`` still splits them).
TRANSFER_SETS: tuple[str, ...] = ("multiarith", "aqua")

#: The 57 MMLU subjects (file stems of MMLU-data/test/SUBJECT_test.csv).
MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
    "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
    "college_medicine", "college_physics", "computer_security", "conceptual_physics",
    "econometrics", "electrical_engineering", "elementary_mathematics", "formal_logic",
    "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics",
    "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history",
    "high_school_world_history", "human_aging", "human_sexuality", "international_law",
    "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
    "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law",
    "professional_medicine", "professional_psychology", "public_relations", "security_studies",
    "sociology", "us_foreign_policy", "virology", "world_religions",
)  # fmt: skip

#: Dataset spec (name or ``prefix:ARG``) -> one-line description.
DATASETS: Mapping[str, str] = MappingProxyType(
    {
        "gsm8k": "GSM8K grade school math (numeric); train 3.5% of gsm_train, test gsm_test",
        "bbh:TASK": f"BIG-Bench Hard, one of {len(BBH_TASKS)} tasks (e.g. bbh:navigate)",
        "multiarith": "MultiArith arithmetic word problems (numeric), 600, all test (transfer)",
        "aqua": "AQuA algebraic word problems, choice (A)-(E), 254, all test (transfer)",
        "mmlu:SUBJECT": f"MMLU test split, one of {len(MMLU_SUBJECTS)} subjects, choice (A)-(D)",
        "synthetic:TASK": "generated by opro, no file: adjective_order (hyperbaton's kind of "
        "question, choice, 250)",
        "jsonl:PATH": "your JSON-lines file: question, answer, optional kind per line",
        "csv:PATH": "your CSV file with a header row: question, answer, optional kind",
    }
)


def bbh_kind(task: str) -> AnswerKind:
    """The answer kind of a BIG-Bench Hard task (file stem)."""
    if task not in BBH_KINDS:
        raise ConfigError(_unknown("BBH task", task, BBH_TASKS, "see `opro data list`"))
    return BBH_KINDS[task]


@dataclass(frozen=True)
class Dataset:
    """A named dataset with its train and test folds."""

    name: str
    task: str
    kind: AnswerKind
    train: tuple[Example, ...]
    test: tuple[Example, ...]

    def split(self, which: Literal["train", "test", "all"]) -> tuple[Example, ...]:
        """A fold; ``"all"`` is train + test by index (gsm8k: train-file rows, then test)."""
        if which == "train":
            return self.train
        if which == "test":
            return self.test
        if which == "all":
            both = self.train + self.test
            if len({e.index for e in both}) < len(both):  # folds from two files
                return both
            return tuple(sorted(both, key=lambda e: e.index))
        raise ConfigError(f"unknown split {which!r}: choose from train, test, all")

    def check_trainable(self) -> None:
        """Raise ``ConfigError`` naming the way out if there is nothing to optimise on."""
        if self.train:
            return
        if self.name in TRANSFER_SETS:
            raise ConfigError(
                f"{self.name} is a transfer test set (all test, no training fold, as in the "
                f"paper): optimise on gsm8k, then score the result here with "
                f"`opro evaluate --dataset {self.name} --instructions-from RUN_DIR`"
            )
        raise ConfigError(
            f"{self.name} has no training examples ({len(self.test)} test examples): pass "
            "train_size N or a larger train_ratio, or give the test examples apart with "
            "test_dataset"
        )


def default_data_dir() -> Path:
    """``$OPRO_DATA_DIR``, else ``$OPRO_CACHE_DIR/data``, else the user cache dir + ``data``."""
    explicit = os.environ.get("OPRO_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("OPRO_CACHE_DIR") or platformdirs.user_cache_dir("opro")
    return Path(root).expanduser() / "data"


def resolve_data_dir(explicit: Path | str | None) -> Path:
    """``explicit`` (e.g. ``--data-dir``) if given, else ``default_data_dir()``."""
    return Path(explicit).expanduser() if explicit else default_data_dir()


def _unknown(what: str, name: str, choices: tuple[str, ...], fix: str) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return one_line(f"unknown {what} {name!r}{hint}; {fix}")


def load_dataset(
    spec: str | Rows,
    data_dir: Path | str | None = None,
    *,
    test: str | Rows | None = None,
    fields: Fields = DEFAULT_FIELDS,
    max_train: int | None = None,
    train_ratio: float | None = None,
    train_size: int | None = None,
    seed: int = 0,
    name: str = "inline",
) -> Dataset:
    """Load a dataset and split it into folds (see ``DATASETS`` and ``opro.data.splits``).

    ``spec`` is a benchmark (``gsm8k``, ``bbh:TASK``...), a user file (``jsonl:PATH``,
    ``csv:PATH``; its fields named by ``fields``) or rows in memory (called ``name``). The
    test fold is ``test`` when given (a user source: all of it; a benchmark: its test fold),
    and the whole of ``spec`` then trains; otherwise a seeded split of ``spec``: the
    benchmark's own, or ``train_size`` / ``train_ratio`` (default 20 %) for user data.
    A fold may be empty; optimizing needs a training fold (``Dataset.check_trainable``).
    """
    if test is not None and (train_ratio is not None or train_size is not None):
        raise ConfigError("give test_dataset or a split (train_ratio / train_size), not both")
    if isinstance(spec, str) and spec.strip().partition(":")[0].strip().lower() not in USER:
        if train_size is not None:
            raise ConfigError("train_size is for your own data: a benchmark has its own split")
        data = _benchmark(spec, data_dir, train_ratio, seed)
        if test is not None:
            data = replace(data, train=data.train, test=_test_fold(test, data_dir, fields, seed))
    else:
        source = read_source(spec, name)
        label, examples = source.name, to_examples(source, fields)
        if test is not None:
            train, tests = tuple(examples), _test_fold(test, data_dir, fields, seed)
        else:
            where = f"dataset {label}"
            train_idx, test_idx = split_train(
                len(examples), ratio=train_ratio, size=train_size, seed=seed, label=where
            )
            train = tuple(examples[i] for i in train_idx)
            tests = tuple(examples[i] for i in test_idx)
        kind = majority_kind(examples)
        data = Dataset(name=label, task=task_name(label), kind=kind, train=train, test=tests)
    if max_train is not None:
        data = replace(data, train=subsample(data.train, max_train, seed))
    return data


USER = ("jsonl", "csv")


def _test_fold(
    test: str | Rows, data_dir: Path | str | None, fields: Fields, seed: int
) -> tuple[Example, ...]:
    """The test examples of a separate source: all of a user's; a benchmark's test fold."""
    if isinstance(test, str) and test.strip().partition(":")[0].strip().lower() not in USER:
        return _benchmark(test, data_dir, None, seed).test
    return tuple(to_examples(read_source(test, "inline-test"), fields))


def _benchmark(
    spec: str, data_dir: Path | str | None, train_ratio: float | None, seed: int
) -> Dataset:
    """One of the paper's benchmarks, split as the authors split it."""
    prefix, sep, arg = spec.strip().partition(":")
    prefix, arg = prefix.strip().lower(), arg.strip()
    needs = {"bbh": "TASK", "mmlu": "SUBJECT", "synthetic": "TASK"}
    if prefix in needs and not arg:
        raise ConfigError(
            f"dataset {prefix!r} needs {prefix}:{needs[prefix]}; see `opro data list`"
        )
    if prefix not in DEFAULT_TRAIN_RATIOS or (sep and prefix not in needs):
        names = {k.partition(":")[0]: k for k in DATASETS} | {t: f"bbh:{t}" for t in BBH_TASKS}
        close = difflib.get_close_matches(spec.strip().lower(), list(names), n=1)
        hint = f" (did you mean {names[close[0]]}?)" if close else ""
        raise ConfigError(
            one_line(f"unknown dataset {spec!r}{hint}; choose from {', '.join(DATASETS)}")
        )
    # A default ratio of 0 (transfer test sets) means no training fold.
    ratio = DEFAULT_TRAIN_RATIOS[prefix] if train_ratio is None else check_ratio(train_ratio)
    if prefix == "bbh":
        bbh_kind(arg)  # an unknown task is named before a missing data dir
    if prefix == "synthetic":
        return _split(_generated(arg), None, ratio, seed)
    root = resolve_data_dir(data_dir)
    if not root.is_dir():
        raise ConfigError(f"data directory {root} not found: {FETCH_HINT}")
    test_rows: list[Example] | None = None
    kind: AnswerKind
    if prefix == "gsm8k":
        rows, test_rows = read_gsm(root / GSM_TRAIN), read_gsm(root / GSM_TEST)
        name, task, kind = "gsm8k", "grade school math", "numeric"
    elif prefix == "bbh":
        kind = bbh_kind(arg)
        rows = read_bbh(root / BBH_DIR / f"{arg}.json", kind)
        name, task = f"bbh:{arg}", arg.replace("_", " ")
    elif prefix == "mmlu":
        path = root / MMLU_DIR / f"{arg}_test.csv"
        if arg not in MMLU_SUBJECTS and not path.is_file():
            fix = "see `opro data list`"
            raise ConfigError(_unknown("MMLU subject", arg, MMLU_SUBJECTS, fix))
        rows, kind = read_mmlu(path), "choice"
        name, task = f"mmlu:{arg}", arg.replace("_", " ")
    elif prefix == "multiarith":
        rows, kind = read_multiarith(root / MULTIARITH), "numeric"
        name, task = "multiarith", "arithmetic word problems"
    else:
        rows, kind = read_aqua(root / AQUA), "choice"
        name, task = "aqua", "algebraic word problems"
    rows = [replace(row, dataset=name) for row in rows]
    data = Dataset(name=name, task=task, kind=kind, train=tuple(rows), test=())
    return _split(data, test_rows, ratio, seed)


def _generated(task: str) -> Dataset:
    if task not in SYNTHETIC:
        fix = "see `opro data list`"
        raise ConfigError(_unknown("generated task", task, tuple(SYNTHETIC), fix))
    name = f"synthetic:{task}"
    rows = tuple(replace(row, dataset=name) for row in SYNTHETIC[task]())
    (kind,) = {row.kind for row in rows}  # a generated task asks one kind of question
    return Dataset(name=name, task=task.replace("_", " "), kind=kind, train=rows, test=())


def _split(data: Dataset, test_rows: list[Example] | None, ratio: float, seed: int) -> Dataset:
    """``data``'s examples (all in ``train``) split by ``ratio`` (0: all test), or all train
    with ``test_rows`` as the test fold when the benchmark has its own."""
    rows, name = data.train, data.name
    train_idx: list[int]
    if ratio == 0.0:
        train_idx, test_idx = [], list(range(len(rows)))
    else:
        train_idx, test_idx = split_indices(len(rows), ratio, seed)
    if not train_idx and ratio > 0.0:
        raise ConfigError(
            f"dataset {name} has {len(rows)} example(s): its training fold ({ratio:.0%} of "
            f"them) is empty: give at least {math.ceil(1 / ratio)} examples"
        )
    train = tuple(rows[i] for i in train_idx)
    if test_rows is not None:
        test = tuple(replace(row, dataset=name) for row in test_rows)
    else:
        test = tuple(rows[i] for i in test_idx)
    return replace(data, train=train, test=test)
