"""Instruction optimization: scorer prompts, proposal parsing, exemplars, scoring states,
paired statistics, and `opro optimize` / `opro evaluate` end to end on scripted models."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opro import api
from opro.data import Dataset, Example, load_dataset
from opro.errors import ConfigError, RetriesExhausted, TransientLLMError
from opro.eval.scorer import ScorerOptions, score_instructions, scorer_prompt
from opro.eval.stats import binomial_two_sided, mcnemar_exact
from opro.history import History, Scored
from opro.llm.base import BackendOptions
from opro.llm.fake import FakeLLM
from opro.llm.limits import RetryPolicy
from opro.llm.stack import ManagedLLM, StackOptions
from opro.llm.usage import Budget, Caps
from opro.meta_prompt import render_meta_prompt
from opro.problems.instructions.problem import InstructionOptimization, postprocess
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.spec import EngineSpec
from opro.runner import RunOptions, RunResult
from opro.types import Request
from tests.conftest import SHARED_DATA, assert_one_line_error, run_cli
from tests.doubles import run_kind, steps_of
from tests.test_problems import _golden

FAKE_SCORER = "fake:tests.doubles:boolean_scorer"
FAKE_OPTIMIZER = "fake:tests.doubles:instruction_proposer"
ENV = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _examples(kind: str = "boolean") -> tuple[Example, ...]:
    return tuple(
        Example(f"question {i}", "True" if i % 2 else "False", kind, i)  # type: ignore[arg-type]
        for i in range(6)
    )


def _dataset(kind: str = "boolean") -> Dataset:
    ex = _examples(kind)
    return Dataset("toy", "toy logic", kind, ex, ex)  # type: ignore[arg-type]


def _task(**fields: object) -> InstructionsSpec:
    """A resolved spec on the toy dataset: a pre-trained scorer, A_begin, pre-trained style."""
    values: dict[str, object] = {
        "dataset": "toy",
        "scorer_style": "base",
        "position": "A_begin",
        "style": "pretrained",
    }
    return InstructionsSpec.model_validate(values | fields)


def _problem(**fields: object) -> InstructionOptimization:
    return InstructionOptimization(_task(**fields), _dataset(), FakeLLM("echo"))


# -- the scorer's prompt -----------------------------------------------------------------


def test_scorer_prompts_golden() -> None:
    question = "not ( True ) and ( True ) is"
    blocks = []
    for style in ("base", "chat"):
        for position in ("Q_begin", "Q_end", "A_begin", "before_Q"):
            if style == "chat" and position == "A_begin":
                continue
            for instruction in ("Let’s think step by step.", ""):
                text = scorer_prompt(instruction, question, position, style)  # type: ignore[arg-type]
                blocks.append(f"### {style} {position} {instruction!r}\n{text}\n")
    _golden("scorer_prompts.txt", "\n".join(blocks))


def test_a_begin_with_a_chat_scorer_is_refused() -> None:
    with pytest.raises(ConfigError, match="A_begin needs a pre-trained"):
        ScorerOptions("A_begin", "chat")
    with pytest.raises(ConfigError, match="A_begin"):
        _task(position="A_begin", scorer_style="chat")


# -- proposals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "output", "expected"),
    [
        ("pretrained", " 61 <TEXT>think it through.</TEXT>", "Think it through."),
        ("pretrained", "compare both sides</TEXT>", "Compare both sides"),
        ("pretrained", " 61 <TEXT>never closed", None),
        ("pretrained", " 61 <TEXT>   </TEXT>", None),
        ("instruct", "Sure! <INS>**Check** each step.</INS> done", "Check each step."),
        ("instruct", "[Read the question twice.]", "Read the question twice."),
        ("instruct", "<INS>Replace <INS> with care</INS>", None),
        ("instruct", "no tags at all", None),
        ("instruct", "<INS>" + "x" * 501 + "</INS>", None),
        ("instruct", "<INS>Let’s go — ünïcode is fine.</INS>", "Let’s go — ünïcode is fine."),
    ],
)
def test_parse_post_processes_and_filters(style: str, output: str, expected: str | None) -> None:
    assert _problem(style=style).parse(output) == expected


def test_digit_filter_applies_to_numeric_tasks_only() -> None:
    numeric = InstructionOptimization(_task(style="instruct"), _dataset("numeric"), FakeLLM("echo"))
    assert numeric.parse("<INS>Add the 2 numbers.</INS>") is None
    assert numeric.parse("<INS>Add the numbers.</INS>") == "Add the numbers."
    assert _problem(style="instruct").parse("<INS>Use 2 passes.</INS>") == "Use 2 passes."


def test_postprocess() -> None:
    assert postprocess("  **bold** start ") == "Bold start"
    assert postprocess("") == ""


# -- meta-prompts ------------------------------------------------------------------------


def _history(problem: InstructionOptimization) -> History[str]:
    history: History[str] = History("max")
    for step, (text, score) in enumerate(
        [("", 31.0), ("Let's think step by step.", 58.3), ("Check each operator.", 47.9)]
    ):
        history.add(Scored(text, text, score, step))
    return history


@pytest.mark.parametrize("style", ["instruct", "pretrained"])
def test_meta_prompt_golden(style: str) -> None:
    problem = _problem(style=style, position="Q_begin", exemplar_selection="constant")
    text = render_meta_prompt(
        problem, _history(problem), EngineSpec(top_k=2), np.random.default_rng(0)
    )
    _golden(f"instructions_{style}.txt", text)
    if style == "instruct":
        assert text.count("text:\n") == 2
        assert text.count("Q: <INS>\n") == 3
        assert text.index("Check each operator.") < text.index("Let's think step by step.")
    else:
        assert text.count("Precision:") == 3
        assert text.endswith("Precision:")
        assert "Q: <INS>" not in text


def test_exemplar_selection() -> None:
    problem = _problem(style="instruct", exemplars=2)
    empty: History[str] = History("max")
    draws = {
        tuple(problem._exemplar_indices(empty, np.random.default_rng([0, s]))) for s in range(8)
    }
    assert len(draws) > 1  # random: reseeded by step
    constant = _problem(style="instruct", exemplars=2, exemplar_selection="constant")
    same = {
        tuple(constant._exemplar_indices(empty, np.random.default_rng([0, s]))) for s in range(8)
    }
    assert len(same) == 1
    wrong = _problem(style="instruct", exemplars=2, exemplar_selection="wrong")
    history: History[str] = History("max")
    for text, marks in [("a", "110e01"), ("b", "1e0111")]:  # examples 2 and 3 wrong twice
        history.add(Scored(text, text, 50.0, 0, {"marks": marks}))
    assert wrong._exemplar_indices(history, np.random.default_rng(0)) == [2, 3]
    none = _problem(style="instruct", exemplars=0)
    assert none._exemplar_indices(history, np.random.default_rng()) == []


# -- scoring -----------------------------------------------------------------------------


class _Flaky(FakeLLM):
    """Answers "The answer is True", nothing for question 2, and fails on question 4."""

    def __init__(self) -> None:
        super().__init__("flaky", fn=lambda r: "")

    async def complete(self, request: Request) -> object:  # type: ignore[override]
        if "question 4" in request.prompt:
            raise TransientLLMError("HTTP 500")
        text = "" if "question 2" in request.prompt else " The answer is True."
        return await FakeLLM.from_function(lambda r: text).complete(request)


def _managed(backend: FakeLLM) -> ManagedLLM:
    options = StackOptions(role="scorer", retry=RetryPolicy(max_retries=0))
    return ManagedLLM(backend, options, cache=None, budget=Budget())


def test_states_failures_are_never_scored_as_wrong() -> None:
    llm = _managed(_Flaky())
    [result] = asyncio.run(
        score_instructions(llm, ["Go."], _examples(), ScorerOptions(), tolerate_failures=True)
    )
    assert result.marks == "01e1x1"
    assert (result.count("correct"), result.count("empty"), result.count("failed")) == (3, 1, 1)
    assert result.accuracy == pytest.approx(100 * 3 / 5)  # over the 5 answered, not 6
    with pytest.raises(RetriesExhausted):
        asyncio.run(score_instructions(llm, ["Go."], _examples(), ScorerOptions()))


@pytest.mark.parametrize(
    ("position", "question_major"),
    [("A_begin", True), ("Q_end", True), ("Q_begin", False), ("before_Q", False)],
)
def test_the_grid_sends_prompts_beginning_alike_together(
    position: str, question_major: bool
) -> None:
    """Question by question when the prompt starts with the question (the embedded model
    then reads it once for all instructions), else instruction by instruction; each
    instruction's results stay in its examples' order, whatever order the calls went in."""
    asked: list[str] = []

    def answer(request: Request) -> str:
        asked.append(request.prompt)
        if "Go." in request.prompt:  # right on every question; "Stop." says True always
            return " True" if "question 1" in request.prompt else " False"
        return " True"

    llm = _managed(FakeLLM.from_function(answer))
    options = ScorerOptions(position=position, max_tokens=8)  # type: ignore[arg-type]
    instructions, examples = ["Go.", "Stop."], _examples()[:3]
    results = asyncio.run(score_instructions(llm, instructions, examples, options))
    expected = [
        scorer_prompt(instructions[i], examples[j].question, position, "base")  # type: ignore[arg-type]
        for i, j in (
            [(i, j) for j in range(3) for i in range(2)]
            if question_major
            else [(i, j) for i in range(2) for j in range(3)]
        )
    ]
    assert asked == expected
    assert [r.marks for r in results] == ["111", "010"]


def test_mcnemar_exact() -> None:
    assert binomial_two_sided(0, 0) == 1.0
    assert binomial_two_sided(10, 0) == pytest.approx(2 / 1024)
    assert binomial_two_sided(3, 5) == binomial_two_sided(5, 3)
    test = mcnemar_exact("1100x1", "0111x1")
    assert (test.n, test.only_baseline, test.only_other) == (5, 1, 2)
    assert test.p_value == pytest.approx(1.0)
    assert mcnemar_exact("1" * 12, "0" * 12).p_value < 0.001


# -- optimize and evaluate, end to end on scripted models ---------------------------------


def _optimize(
    out: Path, *, caps: Caps | None = None, cache: bool = True, **settings: object
) -> RunResult:
    values: dict[str, object] = {
        "dataset": "bbh:boolean_expressions",
        "scorer": FAKE_SCORER,
        "optimizer": FAKE_OPTIMIZER,
        "data_dir": str(SHARED_DATA),
        "initial": ["", "Let's solve the problem."],
        "steps": 4,
        "samples_per_step": 4,
    } | settings
    return run_kind(InstructionsSpec, out, caps=caps, cache=cache, **values)


def test_optimize_selects_on_train_and_evaluates_on_test(tmp_path: Path) -> None:
    result = _optimize(tmp_path / "run")
    summary = result.summary.to_json()
    assert result.status == "finished"
    assert summary["n_train"] == 50
    assert summary["n_test"] == 200
    steps = steps_of(tmp_path / "run")
    texts = [c["solution"] for s in steps for c in s["candidates"]]
    assert len(texts) == len(set(texts))
    assert texts[:2] == ["", "Let's solve the problem."]
    best_train = max(c["score"] for s in steps for c in s["candidates"])
    assert summary["best_train_score"] == best_train  # selection on train only
    rows = summary["test_evaluation"]
    assert rows[0]["instruction"] == ""
    assert summary["initial_instruction"] == ""
    assert summary["best_instruction"] in {r["instruction"] for r in rows}
    assert all(len(r["marks"]) == 200 and r["n"] == 200 for r in rows)
    assert summary["paired_test"]["method"] == "mcnemar-exact"
    for s in steps:
        for c in s["candidates"]:
            marks = c["details"]["marks"]
            assert len(marks) == 50
            assert c["score"] == pytest.approx(100 * marks.count("1") / 50)
    assert summary["usage"]["scorer"]["calls"] > summary["usage"]["optimizer"]["calls"] > 0


def test_optimize_stopped_by_a_budget_resumes_to_the_same_result(tmp_path: Path) -> None:
    whole = _optimize(tmp_path / "whole", cache=False).summary.to_json()
    cut = _optimize(tmp_path / "cut", cache=False, caps=Caps(max_calls=200))
    assert cut.status == "stopped"
    assert cut.stop_reason == "budget"
    resumed = api.resume(tmp_path / "cut", RunOptions(caps=Caps(max_calls=10**6), trust_code=True))
    assert not resumed.already_finished
    summary = resumed.summary.to_json()
    assert summary["status"] == "finished"
    for key in ("best_instruction", "best_train_score", "best_test_score", "paired_test"):
        assert summary[key] == whole[key], key

    def rows(s: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in s["test_evaluation"]]

    assert rows(summary) == rows(whole)
    assert (
        steps_of(tmp_path / "cut")[-1]["candidates"]
        == (steps_of(tmp_path / "whole")[-1]["candidates"])
    )


def test_optimize_refuses_bad_input_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cases = [
        (["--dataset", "bbh:boolean_expresions"], "did you mean"),
        (["--dataset", "gsm9k"], "did you mean gsm8k"),
        (
            ["--dataset", "bbh:navigate", "--scorer", "local:smollm2", "--position", "A_begin"],
            "A_begin",
        ),
        (["--dataset", "bbh:navigate", "--steps", "0"], "--steps"),
        (["--dataset", "bbh:navigate", "--candidates-per-step", "0"], "--samples-per-step"),
        (["--dataset", "bbh:navigate", "--exemplars", "-1"], "--exemplars"),
    ]
    for flags, needle in cases:
        result = run_cli("optimize", *flags, "--data-dir", str(SHARED_DATA), "--out", str(out))
        assert_one_line_error(result, needle)
        assert not out.exists(), flags
    missing = run_cli("optimize", "--dataset", "bbh:navigate", "--data-dir", str(tmp_path / "no"))
    assert_one_line_error(missing, "opro data fetch")


def test_evaluate_cli_json_and_paired_test(tmp_path: Path) -> None:
    common = ["evaluate", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
    common += ["--scorer", FAKE_SCORER, "--split", "train", "--json"]
    one = run_cli(*common, "--instruction", "Check.", env=ENV)
    assert one.returncode == 0, one.stderr
    shown = json.loads(one.stdout)  # one instruction: the same shape as several
    assert shown["dataset"] == "bbh:boolean_expressions"
    (single,) = shown["instructions"]
    assert single["n"] == 50
    assert single["instruction"] == "Check."
    assert single["correct"] + single["wrong"] + single["empty"] + single["failed"] == 50
    assert single["accuracy"] == pytest.approx(100 * single["correct"] / 50)  # percent
    two = run_cli(
        *common, "--instruction", "", "--instruction", "Check each operator then answer.", env=ENV
    )
    both = json.loads(two.stdout)
    first, second = both["instructions"]
    assert "paired_test_vs_first" not in first
    paired = second["paired_test_vs_first"]
    assert paired["n"] == 50
    assert 0 <= paired["p_value"] <= 1


def test_evaluate_instructions_from_a_run(tmp_path: Path) -> None:
    _optimize(tmp_path / "run")
    chosen = api.instructions_from(tmp_path / "run", top=2)
    assert chosen[:2] == ["", "Let's solve the problem."]
    assert 3 <= len(chosen) <= 4
    with pytest.raises(ConfigError, match="not an opro run"):
        api.instructions_from(tmp_path)


def test_max_train_and_test_subsample_the_folds(tmp_path: Path) -> None:
    result = _optimize(tmp_path / "run", max_train=7, max_test=9)
    assert result.summary.to_json()["n_train"] == 7
    assert result.summary.to_json()["n_test"] == 9
    full = load_dataset("bbh:boolean_expressions", SHARED_DATA)
    steps = steps_of(tmp_path / "run")
    assert len(steps[0]["candidates"][0]["details"]["marks"]) == 7
    assert len(full.train) == 50


def test_fake_llm_api_follows_its_options() -> None:
    assert FakeLLM("echo", BackendOptions(api="chat")).api == "chat"
    assert FakeLLM("echo").api == "completion"


def test_evaluate_concurrency_flag_bounds_calls_in_flight() -> None:
    from opro.testing.stub_server import StubServer

    with StubServer(latency_s=0.25) as server:
        common = ["evaluate", "--dataset", "bbh:boolean_expressions", "--split", "train"]
        common += ["--data-dir", str(SHARED_DATA), "--scorer", "openai:stub", "--max-examples"]
        common += ["16", "--scorer-base-url", server.url, "--instruction", "Go.", "--json"]
        wide = run_cli(*common, "--concurrency", "16", "--no-cache")
        narrow = run_cli(*common, "--concurrency", "2", "--no-cache")
    assert wide.returncode == 0, wide.stderr
    assert json.loads(wide.stdout)["elapsed_s"] < 0.25 * 4  # about one round of 16
    assert json.loads(narrow.stdout)["elapsed_s"] >= 0.25 * 8  # eight rounds of 2
