"""The newcomer's first hour as a test: a notebook defines its own task in memory (its rows,
its field names, its metric), runs a small optimization, runs the same cell again, exports
the result and applies it to a new question — all without an error, the run's outcome
stated. With scripted models, and (slow) with the embedded ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import opro
from tests.test_own_task import DESCRIPTION, OPTIMIZER, REVIEWS, SCORER

ROWS = [{"review": text, "sentiment": label} for text, label in REVIEWS]
NEW_QUESTION = "An absolute delight from start to end"


def says_the_label(prediction: str, example: Any) -> bool:
    """The notebook's own metric (a function at its top level)."""
    return str(example.answer).lower() in prediction.lower()


def newcomer(
    out: Path, scorer: opro.LLMConfig, optimizer: str, tokens: int = 256, **engine: Any
) -> str:
    """The notebook, cell by cell, inside a running event loop as in Jupyter; the answer
    the scorer gives to a new question under the instruction found."""

    async def notebook() -> str:
        task = opro.InstructionsSpec(
            dataset=ROWS,
            question_field="review",
            answer_field="sentiment",
            train_size=6,
            metric=says_the_label,
            task_description=DESCRIPTION,
            scorer=scorer,
            scorer_max_tokens=tokens,
            optimizer=optimizer,
            engine=opro.InstructionsEngine(**engine),
        )

        def cell() -> opro.RunResult:
            return opro.start(task, opro.RunOptions(out=out))

        first = cell()
        assert first.status == "finished", first.message
        assert first.best_instruction is not None
        again = cell()  # the same cell run again: the same run, nothing run twice
        assert again.already_finished
        assert again.best_instruction == first.best_instruction
        exported = again.export()
        assert exported.best.instruction == first.best_instruction
        assert "{question}" in exported.best.template.prompt
        prompt = again.prompt_for(NEW_QUESTION)
        assert NEW_QUESTION in prompt.prompt
        assert first.best_instruction in str(prompt)
        answer = opro.complete(
            scorer,
            prompt.prompt,
            system=prompt.system,
            max_tokens=prompt.max_tokens,
            stop=prompt.stop,
        )
        return answer.texts[0]

    return asyncio.run(notebook())


def test_the_newcomer_path_with_scripted_models(tmp_path: Path) -> None:
    scorer = opro.LLMConfig(spec=SCORER, api="chat")
    answer = newcomer(tmp_path / "first", scorer, OPTIMIZER, steps=3, samples_per_step=3)
    assert "positive" in answer or "negative" in answer


@pytest.mark.embedded
def test_the_newcomer_path_with_the_embedded_models(tmp_path: Path) -> None:
    model = "local:gemma3-270m"
    scorer = opro.LLMConfig(spec=model)
    newcomer(tmp_path / "first", scorer, model, tokens=24, steps=1, samples_per_step=2)
