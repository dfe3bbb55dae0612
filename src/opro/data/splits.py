"""Train/test splits of a benchmark, reproducing the paper authors' index draws exactly.

Owns: the seeded draw of training indices (``split_indices``), the seeded subsample of a
training fold (``subsample``) and the default train ratio of each dataset family. Leaves
out: reading files (``opro.data.loaders``) and what a fold is used for (the optimizer).

The authors' code seeds numpy's legacy global generator with 0 and calls
``np.random.choice(n, int(ratio * n), replace=False)``; here the same stream comes from a
private ``np.random.RandomState(seed)``, so the indices are identical and no global state
is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from opro.errors import ConfigError

T = TypeVar("T")

#: Default fraction of a dataset's examples in the training fold, by spec prefix.
#: gsm8k: 3.5% of gsm_train.tsv (261 examples, as in the paper); its test fold is the whole
#: gsm_test.tsv. multiarith and aqua: 0, the whole file is the test fold (the paper's transfer
#: test sets: the authors only evaluate on them, with ``train_ratio = 0.0``). Every other
#: family: 20% train / 80% test of its single file (the paper's BBH split).
DEFAULT_TRAIN_RATIOS: Mapping[str, float] = MappingProxyType(
    {
        "gsm8k": 0.035,
        "bbh": 0.2,
        "multiarith": 0.0,
        "aqua": 0.0,
        "mmlu": 0.2,
        "synthetic": 0.2,
        "jsonl": 0.2,
        "csv": 0.2,
    }
)


def check_ratio(train_ratio: float) -> float:
    """Return ``train_ratio`` if it lies in (0, 1], else raise ``ConfigError``."""
    if not 0.0 < train_ratio <= 1.0:
        raise ConfigError(
            f"train_ratio {train_ratio} is out of range: give one in (0, 1], e.g. 0.2"
        )
    return float(train_ratio)


def split_indices(n: int, train_ratio: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (train, test) index lists, both ascending.

    Train is ``np.random.RandomState(seed).choice(n, int(train_ratio * n), replace=False)``
    sorted; test is every other index, in order. E.g. ``n=7473, ratio=0.035`` gives 261
    training indices starting 29, 33, 38, 39, 42, 49, 72, 98.
    """
    if n < 0:
        raise ConfigError(f"cannot split {n} examples: a dataset has at least 0 rows")
    check_ratio(train_ratio)
    size = int(train_ratio * n)
    rng = np.random.RandomState(seed)
    train = sorted(int(i) for i in rng.choice(n, size, replace=False)) if size else []
    chosen = set(train)
    test = [i for i in range(n) if i not in chosen]
    return train, test


def subsample(items: Sequence[T], max_items: int, seed: int = 0) -> tuple[T, ...]:
    """At most ``max_items`` of ``items``: a seeded draw without replacement, kept in order.

    ``max_items >= len(items)`` returns ``items`` unchanged; ``max_items < 1`` is a
    ``ConfigError``. The draw is ``np.random.default_rng(seed).choice(len, k, replace=False)``.
    """
    if max_items < 1:
        raise ConfigError(f"max_train {max_items} is too small: give max_train N with N >= 1")
    if max_items >= len(items):
        return tuple(items)
    picked = np.random.default_rng(seed).choice(len(items), max_items, replace=False)
    return tuple(items[int(i)] for i in sorted(picked))
