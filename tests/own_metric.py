"""A user's own metrics, importable as ``tests.own_metric:NAME`` (``--metric``)."""

from __future__ import annotations

import asyncio

from opro.data import Example


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
