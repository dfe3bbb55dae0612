"""Using what a run found: ``opro evaluate --instructions-from RUN`` on the run's own task
(refusing a test fold that holds its training questions), ``opro export RUN`` and
``result.prompt_for(question)``, the exact prompt the scorer was given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import opro
import opro as library  # where a test's `opro` is the CLI fixture
from tests.conftest import assert_one_line_error
from tests.test_own_task import REVIEWS, SCORER, spec


@pytest.fixture
def run(tmp_path: Path) -> opro.RunResult:
    """A finished run of the own sentiment task: its data in memory under its own field
    names, 6 of 10 reviews training, a metric of the user's, a chat scorer."""
    task = spec(engine={"steps": 3, "samples_per_step": 3}, system_prompt="You grade reviews.")
    return opro.start(task, opro.RunOptions(out=tmp_path / "run", progress=False))


# -- evaluate on the run's task ------------------------------------------------------------


def test_evaluate_takes_the_runs_task(run: opro.RunResult, opro: Any) -> None:
    done = opro("evaluate", "--instructions-from", str(run.run_dir), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["dataset"], data["scorer"], data["position"]) == ("inline", SCORER, "Q_begin")
    assert data["training_overlap"] == 0
    assert [r["n"] for r in data["instructions"]] == [4] * len(data["instructions"])  # its test
    # The same numbers as scoring with the run's spec in Python: its metric and system prompt.
    names = [r["instruction"] for r in data["instructions"]]
    same = _evaluate(run.spec, names)
    assert [r["accuracy"] for r in data["instructions"]] == [r.accuracy for r in same.results]
    # A flag changes one setting and keeps the others.
    moved = opro("evaluate", "--instructions-from", str(run.run_dir), "--position", "Q_end",
                 "--split", "all", "--json")  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    data = json.loads(moved.stdout)
    assert (data["position"], data["instructions"][0]["n"]) == ("Q_end", 10)


def test_a_test_fold_holding_training_questions_is_refused_or_told(
    run: opro.RunResult, opro: Any
) -> None:
    source = str(run.run_dir)
    refused = opro("evaluate", "--instructions-from", source, "--seed", "7")
    assert_one_line_error(refused, "training questions of the run", "--seed", "--allow-overlap")
    allowed = opro("evaluate", "--instructions-from", source, "--seed", "7", "--allow-overlap",
                   "--json")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["training_overlap"] > 0
    assert "are training questions of the run" in allowed.stderr
    train = opro("evaluate", "--instructions-from", source, "--split", "train", "--json")
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["training_overlap"] == 6
    assert "6 of the 6 train examples are training questions" in train.stderr
    with pytest.raises(library.ConfigError, match="allow_overlap"):  # the same in Python
        library.evaluate(run.spec.with_seed(7), ["Think."], trained_on=run.spec, progress=False)


def test_evaluate_needs_a_dataset_or_a_run(opro: Any) -> None:
    done = opro("evaluate", "--instruction", "Think.", "--scorer", "fake:echo")
    assert_one_line_error(done, "--dataset is required", "--instructions-from")


# -- export and prompt_for -----------------------------------------------------------------


def test_prompt_for_is_the_prompt_the_scorer_was_given(run: opro.RunResult) -> None:
    best = run.best_instruction
    assert best is not None
    echoed = run.spec.model_copy(update={"scorer": opro.LLMConfig(spec="fake:echo", api="chat")})
    asked = _evaluate(echoed, [best]).results[0].results  # the echo scorer says its prompt
    for example in asked:
        question = REVIEWS[example.index][0]
        prompt = run.prompt_for(question)
        assert prompt.prompt == example.prediction
        assert prompt.system == "You grade reviews."
        assert prompt.messages == [
            {"role": "system", "content": "You grade reviews."},
            {"role": "user", "content": example.prediction},
        ]
        assert (prompt.api, prompt.stop, prompt.max_tokens) == ("chat", (), 256)
    assert run.prompt_for("Great!", instruction="Be brief.").prompt == "Be brief.\nGreat!"


def test_prompt_for_a_pretrained_scorer_is_its_qa_pattern(tmp_path: Path) -> None:
    task = spec(scorer={"spec": SCORER, "api": "completion"}, engine={"steps": 1})
    result = opro.start(task, opro.RunOptions(out=tmp_path / "base", progress=False))
    prompt = result.prompt_for("A great film", instruction="Say positive or negative.")
    assert str(prompt) == "Q: A great film\n\nA: Say positive or negative."  # A_begin
    assert (prompt.api, prompt.stop, prompt.request().temperature) == ("completion", ("\nQ:",), 0)
    linreg = opro.start(
        opro.LinregSpec(optimizer="fake:tests.doubles:linreg_walker", reps=1, engine={"steps": 1}),
        opro.RunOptions(out=tmp_path / "linreg", progress=False),
    )
    with pytest.raises(opro.ConfigError, match="prompt_for is for instruction runs"):
        linreg.prompt_for("x")


def test_export_prints_and_writes_the_best_instructions_with_their_prompt(
    run: opro.RunResult, opro: Any, tmp_path: Path
) -> None:
    shown = opro("export", str(run.run_dir))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("best instruction: train accuracy")
    assert f"scored by {SCORER} (chat API), instruction at Q_begin, greedy" in text
    assert "system message:\n    You grade reviews." in text
    assert "prompt ({question} is where each question goes):" in text
    assert "next best:\n  2. train accuracy" in text

    done = opro(
        "export", str(run.run_dir), "--json", "--top", "2", "--out", str(tmp_path / "b.json")
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert json.loads((tmp_path / "b.json").read_text()) == data
    assert (data["status"], data["position"], data["scorer"]["spec"]) == (
        "finished", "Q_begin", SCORER,
    )  # fmt: skip
    assert data["decoding"] == {"temperature": 0.0, "max_tokens": 256, "stop": [],
                                "extract_answer": False}  # fmt: skip
    assert len(data["instructions"]) == 2
    best = data["instructions"][0]
    assert best["instruction"] == run.best_instruction
    assert best["test_accuracy"] is not None  # the run's final evaluation
    question = "What a lovely film"
    assert (
        best["prompt_template"].replace("{question}", question) == run.prompt_for(question).prompt
    )
    exported = run.export(top=2)
    assert exported.to_json() == data
    assert exported.prompt_for(question, rank=1).prompt == (
        run.prompt_for(question, instruction=data["instructions"][1]["instruction"]).prompt
    )


def test_export_refuses_what_it_cannot_export(tmp_path: Path, opro: Any) -> None:
    walker = "fake:tests.doubles:linreg_walker"
    linreg = library.LinregSpec(optimizer=walker, reps=1, engine={"steps": 1})
    library.start(linreg, library.RunOptions(out=tmp_path / "linreg", progress=False))
    assert_one_line_error(opro("export", str(tmp_path / "linreg")), "is a linreg run")
    reps = linreg.model_copy(update={"reps": 2})
    library.start(reps, library.RunOptions(out=tmp_path / "job", progress=False))
    assert_one_line_error(opro("export", str(tmp_path / "job")), "a job of 2 runs", "rep-0")
    assert_one_line_error(opro("export", str(tmp_path / "nothing")), "not an opro run directory")


def _evaluate(task: opro.InstructionsSpec, instructions: list[str]) -> opro.Evaluation:
    return library.evaluate(task, instructions, use_cache=False, progress=False)
