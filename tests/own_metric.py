"""A user's own metrics, importable as ``tests.own_metric:NAME`` (``--metric``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

from opro.data import Example

BUG = "OPRO_TEST_METRIC_BUG"
"""While set to N: ``buggy`` fails from its N-th call on (counted in ``CALLS``)."""
CALLS = itertools.count()


def names_the_label(prediction: str, example: Example) -> float:
    """1 when the prediction names the label, 0.5 when it names both, else 0."""
    text = prediction.lower()
    named = {label for label in ("positive", "negative") if label in text}
    if named == {example.answer.lower()}:
        return 1.0
    return 0.5 if example.answer.lower() in named else 0.0


async def names_the_label_async(prediction: str, example: Example) -> bool:
    await asyncio.sleep(0)
    return example.answer.lower() in prediction.lower()


def out_of_range(prediction: str, example: Example) -> float:
    return 3.0


def buggy(prediction: str, example: Example) -> float:
    """``names_the_label`` with a bug while $OPRO_TEST_METRIC_BUG is set: from that many calls
    on it reads a field the examples do not have."""
    after = os.environ.get(BUG)
    if after is not None and next(CALLS) >= int(after):
        rating: str = example.extra.get("rating")  # type: ignore[assignment]
        return float(rating.lower() == "good")
    return names_the_label(prediction, example)


def exits(prediction: str, example: Example) -> float:
    sys.exit(3)


def interrupts(prediction: str, example: Example) -> float:
    raise KeyboardInterrupt
