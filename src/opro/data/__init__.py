"""Datasets for prompt optimization: the paper's benchmarks and the user's own files.

``load_dataset("gsm8k")``, ``load_dataset("bbh:navigate")``, ``load_dataset("jsonl:q.jsonl")``
return a ``Dataset`` of ``Example`` (question, answer, kind, index) split into train/test
folds exactly as the paper's code splits them. Benchmark files are read from a folder laid
out like the authors' ``data/`` folder (``--data-dir``, ``$OPRO_DATA_DIR``, or the user
cache dir, filled by ``fetch_benchmarks``). Modules: ``loaders`` (specs, kinds, folds),
``formats`` (file readers), ``splits`` (seeded index draws), ``fetch`` (downloads).
This package neither calls an LLM nor scores answers.
"""

from opro.data.fetch import (
    ALL_FILES,
    DEFAULT_SOURCE,
    GROUPS,
    MANIFEST,
    fetch_benchmarks,
    select_files,
)
from opro.data.formats import Example
from opro.data.loaders import (
    BBH_KINDS,
    BBH_TASKS,
    DATASETS,
    MMLU_SUBJECTS,
    Dataset,
    bbh_kind,
    default_data_dir,
    load_dataset,
    resolve_data_dir,
)
from opro.data.splits import DEFAULT_TRAIN_RATIOS, split_indices, subsample

__all__ = [
    "ALL_FILES",
    "BBH_KINDS",
    "BBH_TASKS",
    "DATASETS",
    "DEFAULT_SOURCE",
    "DEFAULT_TRAIN_RATIOS",
    "GROUPS",
    "MANIFEST",
    "MMLU_SUBJECTS",
    "Dataset",
    "Example",
    "bbh_kind",
    "default_data_dir",
    "fetch_benchmarks",
    "load_dataset",
    "resolve_data_dir",
    "select_files",
    "split_indices",
    "subsample",
]
