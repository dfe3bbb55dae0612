"""``opro evaluate``'s output read at face value (#24 point 9): one JSON shape for any number
of instructions, --examples useful with and without --json, the empty instruction named as
what it is, and --max-tokens the scorer's answer length (no optimizer runs here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opro import api, cli
from tests.conftest import SHARED_DATA

COMMON = ["-q", "evaluate", "--dataset", "bbh:boolean_expressions", "--data-dir",
          str(SHARED_DATA), "--scorer", "fake:tests.doubles:boolean_scorer", "--split", "train",
          "--max-examples", "4", "--no-cache"]  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main([*COMMON, *args]) == 0
    return capsys.readouterr().out


def test_one_instruction_has_the_shape_of_several(capsys: pytest.CaptureFixture[str]) -> None:
    one = json.loads(_run(capsys, "--instruction", "Check.", "--json"))
    two = json.loads(_run(capsys, "--instruction", "Check.", "--instruction", "", "--json"))
    assert set(one) == set(two)
    assert [r["instruction"] for r in one["instructions"]] == ["Check."]
    assert one["dataset"] == "bbh:boolean_expressions"


def test_examples_with_json_carry_question_and_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = json.loads(_run(capsys, "--instruction", "Check.", "--examples", "--json"))
    examples = data["instructions"][0]["examples"]
    assert len(examples) == 4
    for example in examples:
        assert example["question"].endswith(" is")
        assert example["target"] in ("True", "False")
        assert {"index", "status", "prediction"} <= set(example)


def test_examples_without_json_show_question_output_target_and_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _run(capsys, "--instruction", "", "--instruction", "Check.", "--examples")
    assert '"" (the empty instruction)' in out
    assert "(empty)" not in out
    assert "examples for Check.:" in out
    assert out.count("question: ") == out.count("output: ") == out.count("target: ") == 6
    assert any(w in out for w in (" right\n", " wrong\n", " no answer\n"))


def test_max_tokens_is_the_scorers_answer_length(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real = api.evaluate

    def spy(task: Any, *args: Any, **kwargs: Any) -> Any:
        seen["task"] = task
        return real(task, *args, **kwargs)

    monkeypatch.setattr(api, "evaluate", spy)
    _run(capsys, "--instruction", "Check.", "--max-tokens", "16")
    assert seen["task"].scorer_max_tokens == 16
