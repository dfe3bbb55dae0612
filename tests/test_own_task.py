"""Your own task: data from memory (a DataFrame, a list of dicts) or files with your field
names, your test set apart or a split you choose, your metric (a function, an LLM judge),
a task description, a system prompt — from a notebook (a running event loop) and from the
command line, resumed after a kill."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pytest

import opro
from opro.errors import ConfigError, UserCodeError
from opro.problems.instructions.task import task_data
from tests.conftest import ROOT, assert_one_line_error, run_cli
from tests.doubles import spec_of, steps_of, summary_of

SCORER = "fake:tests.doubles:sentiment_scorer"
OPTIMIZER = "fake:tests.doubles:instruction_proposer"
METRIC = "tests.own_metric:names_the_label"
SLOW = "fake:tests.doubles:slow_instruction_proposer"
REVIEWS = [
    ("A great film, I love it", "positive"),
    ("Dull and far too long", "negative"),
    ("Good acting, good story", "positive"),
    ("I walked out", "negative"),
    ("The best thing this year, great", "positive"),
    ("Boring from the first minute", "negative"),
    ("What a good surprise", "positive"),
    ("Flat, lifeless, forgettable", "negative"),
    ("I love the music", "positive"),
    ("A waste of an evening", "negative"),
]
DESCRIPTION = "say whether a short film review is positive or negative"


def reviews() -> pd.DataFrame:
    return pd.DataFrame({"text": [t for t, _ in REVIEWS], "label": [lab for _, lab in REVIEWS]})


def spec(**fields: Any) -> opro.InstructionsSpec:
    values: dict[str, Any] = {
        "dataset": reviews(),
        "question_field": "text",
        "answer_field": "label",
        "train_size": 6,
        "metric": METRIC,
        "task_description": DESCRIPTION,
        "scorer": {"spec": SCORER, "api": "chat"},
        "optimizer": OPTIMIZER,
        "engine": {"steps": 4, "samples_per_step": 4},
    }
    return opro.InstructionsSpec.model_validate(values | fields)


def test_a_notebook_task_from_a_dataframe_with_a_custom_metric(tmp_path: Path) -> None:
    async def cell() -> opro.RunResult:  # a notebook cell: an event loop is running
        return opro.start(spec(), opro.RunOptions(out=tmp_path / "nb"))

    result = asyncio.run(cell())
    assert result.status == "finished"
    stored = spec_of(tmp_path / "nb")
    assert stored["metric"] == METRIC
    assert [r["text"] for r in stored["dataset"]["rows"]] == [t for t, _ in REVIEWS]  # kept
    summary = summary_of(tmp_path / "nb")
    assert (summary["n_train"], summary["n_test"]) == (6, 4)
    meta_prompt = steps_of(tmp_path / "nb")[1]["meta_prompt"]
    assert f"The problems: {DESCRIPTION}" in meta_prompt
    # The metric is the user's: a score of 0.5 (both labels named) is possible and counted.
    marks = [c["details"]["marks"] for s in steps_of(tmp_path / "nb") for c in s["candidates"]]
    assert all(len(m) == 6 for m in marks)
    assert result.best_instruction == summary["best_instruction"]
    history = result.history()
    assert history[0] == {"step": 0, "text": "", "score": history[0]["score"]}
    assert len(history) == summary["solutions_evaluated"]
    assert pd.DataFrame(history).shape == (len(history), 3)  # DataFrame-friendly
    assert result.report().name == "report.html"


def test_the_notebook_task_resumes_after_a_kill(tmp_path: Path) -> None:
    """The notebook's code in a process killed mid-run; the run resumed from the notebook
    (the metric's code trusted: this user's opro made the run dir) equals an uninterrupted
    one."""
    script = tmp_path / "notebook.py"
    script.write_text(
        "import sys, opro\n"
        "from tests.test_own_task import SLOW, spec\n"
        "opro.start(spec(optimizer=SLOW, engine={'steps': 8, 'samples_per_step': 4}),\n"
        "           opro.RunOptions(out=sys.argv[1], use_cache=False))\n"
    )
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        steps = out / "steps.jsonl"
        if steps.exists() and steps.read_bytes().count(b"\n") >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(30) == -signal.SIGKILL, "the run ended before the kill"

    async def cell() -> opro.RunResult:  # no trust_code: the user's own run dir (signed)
        return opro.resume(out, opro.RunOptions(use_cache=False))

    resumed = asyncio.run(cell())
    assert resumed.status == "finished"
    whole = spec(optimizer=SLOW, engine={"steps": 8, "samples_per_step": 4})
    opro.start(whole, opro.RunOptions(out=tmp_path / "whole", use_cache=False))
    assert [s["candidates"] for s in steps_of(out)] == [
        s["candidates"] for s in steps_of(tmp_path / "whole")
    ]


def test_the_same_task_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in REVIEWS))
    out = tmp_path / "cli"
    args = ["optimize", "--dataset", f"csv:{data}", "--question-field", "text",
            "--answer-field", "label", "--train-size", "6", "--metric", METRIC,
            "--task-description", DESCRIPTION, "--scorer", SCORER, "--scorer-api", "chat",
            "--optimizer", OPTIMIZER, "--steps", "3", "--max-calls", "30",
            "--out", str(out)]  # fmt: skip
    result = run_cli(*args, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "best instruction:" in result.stdout  # the human summary
    assert f"report: {out / 'report.html'}" in result.stdout
    stored = spec_of(out)
    assert stored["metric"] == METRIC
    assert stored["dataset"] == f"csv:{data.resolve()}"
    signature = (out / ".signature").read_bytes()
    (out / ".signature").unlink()  # as a run dir from elsewhere: its code is not run unasked
    refused = run_cli("resume", str(out), "--max-calls", "90", env={"PYTHONPATH": str(ROOT)})
    assert_one_line_error(refused, "--trust-code", METRIC)
    # This user's opro made the run dir (it is signed): resumed as printed, no flag needed.
    (out / ".signature").write_bytes(signature)
    resumed = run_cli("resume", str(out), "--max-calls", "90", env={"PYTHONPATH": str(ROOT)})
    assert resumed.returncode == 0, resumed.stderr
    assert "--trust-code" not in resumed.stderr


def test_data_sources_and_splits(tmp_path: Path) -> None:
    rows = [{"q": t, "a": lab, "source": "imdb"} for t, lab in REVIEWS]
    as_list = opro.InstructionsSpec(dataset=rows, question_field="q", answer_field="a")
    data = task_data(as_list)
    assert (len(data.train), len(data.test)) == (2, 8)  # 20 % by default, seeded
    assert data.train[0].extra == {"source": "imdb"}  # other fields reach the metric
    frame = pd.DataFrame(rows)
    assert task_data(opro.InstructionsSpec(dataset=frame, question_field="q", answer_field="a",
                                           train_ratio=0.5)).train[0].question  # fmt: skip

    hugging_face = datasets.Dataset.from_list([{"q": t, "a": lab} for t, lab in REVIEWS])
    apart = opro.InstructionsSpec(
        dataset=hugging_face, test_dataset=rows[:3], question_field="q", answer_field="a"
    )
    both = task_data(apart)
    assert (len(both.train), len(both.test)) == (10, 3)  # all of it trains: the test is apart
    assert sorted(e.question for e in both.train) == sorted(t for t, _ in REVIEWS)
    with pytest.raises(ConfigError, match="has no field 'question'"):
        task_data(opro.InstructionsSpec(dataset=rows))
    with pytest.raises(ConfigError, match="not both"):
        task_data(opro.InstructionsSpec(dataset=rows, train_size=3, test_dataset=rows,
                                        question_field="q", answer_field="a"))  # fmt: skip


def test_the_system_prompt_and_the_instruction_in_the_system_message() -> None:
    from opro.data import Example
    from opro.eval.scorer import ScorerOptions, request_parts

    example = Example("Dull and far too long", "negative", "text", 0)
    options = ScorerOptions("Q_begin", "chat", system="You grade reviews.", instruction_in="system")
    prompt, system = request_parts("Answer in one word.", example, options)
    assert prompt == "Dull and far too long"
    assert system == "You grade reviews.\nAnswer in one word."
    user = ScorerOptions("Q_begin", "chat", system="You grade reviews.")
    prompt, system = request_parts("Answer in one word.", example, user)
    assert prompt == "Answer in one word.\nDull and far too long"
    assert system == "You grade reviews."
    base = spec(scorer=SCORER, instruction_in="system")  # a pre-trained scorer has none
    with pytest.raises(ConfigError, match="instruction_in"):
        base.resolved({"scorer": "completion", "optimizer": "completion"})


def test_an_llm_judge_and_function_metrics(tmp_path: Path) -> None:
    judged = spec(metric="judge", judge="fake:tests.doubles:judge_yes_if_same")
    result = opro.evaluate(judged, ["Think.", "Answer in one word."], split="all")
    for r in result.results:  # the judge agrees with the label check on every example
        assert [x.status for x in r.results] == [
            "correct" if lab in x.prediction else "wrong"
            for x, (_, lab) in zip(r.results, REVIEWS, strict=True)
        ]
    asynchronous = opro.evaluate(spec(metric="tests.own_metric:names_the_label_async"),
                                 ["Think."], split="all")  # fmt: skip
    assert asynchronous.results[0].accuracy is not None
    with pytest.raises(UserCodeError, match="return a bool or a number in"):
        opro.evaluate(spec(metric="tests.own_metric:out_of_range"), ["Think."], split="all")
    with pytest.raises(ConfigError, match="cannot import"):
        opro.evaluate(spec(metric="tests.own_metric:nope"), ["Think."], split="all")
    # In Python the function itself: kept (and so recorded in config.json) by its path.
    from tests.own_metric import names_the_label

    given = spec(metric=names_the_label)
    assert given.metric == METRIC
    by_path = opro.evaluate(spec(), ["Think."], split="all")
    by_function = opro.evaluate(given, ["Think."], split="all")
    assert by_function.results[0].accuracy == by_path.results[0].accuracy
    with pytest.raises(ConfigError, match="cannot be found again by its name"):
        spec(metric=lambda prediction, example: 1.0)

    class Scorer:
        def __call__(self, prediction: str, example: Any) -> float:
            return 1.0

    for not_a_function in (Scorer(), functools.partial(names_the_label)):
        with pytest.raises(ConfigError, match="is not a function: give a function defined"):
            spec(metric=not_a_function)


def test_a_notebooks_own_metric_is_found_again_by_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function defined in a notebook lives in ``__main__`` (the kernel's namespace): its
    recorded path ``__main__:name`` imports it again in the same process."""
    import types

    from tests.own_metric import names_the_label

    notebook = types.ModuleType("__main__")

    def says_label(prediction: str, example: Any) -> bool:
        return bool(names_the_label(prediction, example))

    says_label.__module__, says_label.__qualname__ = "__main__", "says_label"  # top level
    notebook.says_label = says_label  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    given = spec(metric=says_label)
    assert given.metric == "__main__:says_label"
    by_path = opro.evaluate(spec(), ["Think."], split="all")
    assert opro.evaluate(given, ["Think."], split="all").results[0].accuracy == (
        by_path.results[0].accuracy
    )


def test_one_accuracy_scale_everywhere(tmp_path: Path) -> None:
    result = run_cli("evaluate", "--dataset", f"jsonl:{_jsonl(tmp_path)}", "--scorer", SCORER,
                     "--scorer-api", "chat", "--instruction", "Think.", "--split", "all",
                     "--json", env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    [data] = json.loads(result.stdout)["instructions"]
    assert data["accuracy"] == pytest.approx(100 * data["correct"] / data["n"])  # percent


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.jsonl"
    path.write_text(
        "".join(json.dumps({"question": t, "answer": lab}) + "\n" for t, lab in REVIEWS)
    )
    return path


def test_a_run_from_a_notebook_shows_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from opro import api
    from opro.progress_display import LiveDisplay

    buffer = io.StringIO()
    shown: list[LiveDisplay] = []

    def display() -> LiveDisplay:  # rich's live line, drawn where the test can read it
        shown.append(LiveDisplay(Console(file=buffer, force_terminal=True, width=120)))
        return shown[-1]

    monkeypatch.setattr(api, "in_notebook", lambda: True)
    monkeypatch.setattr(api, "notebook_display", display)
    opro.start(
        spec(engine={"steps": 2, "samples_per_step": 2}), opro.RunOptions(out=tmp_path / "r")
    )
    assert len(shown) == 1
    assert "finished (max_steps): step 2/2" in buffer.getvalue()
    assert shown[0]._live is None  # closed: no refresh thread left behind
    opro.start(spec(), opro.RunOptions(out=tmp_path / "q", progress=opro.NoProgress()))
    assert len(shown) == 1  # a progress given is used as it is


def test_the_opro_script_imports_a_metric_from_the_directory_it_runs_in(tmp_path: Path) -> None:
    """`opro` (the installed script, not `python -m`) finds my_metrics.py beside the data,
    as the docs' own-task tutorial does."""
    (tmp_path / "my_metrics.py").write_text(
        "def says_yes(prediction, example):\n    return 'yes' in prediction.lower()\n"
    )
    (tmp_path / "data.csv").write_text("q,a\n" + "".join(f"q{i},yes\n" for i in range(10)))
    script = Path(sys.executable).with_name("opro")
    assert script.is_file(), script
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(script), "-q", "evaluate", "--dataset", "csv:data.csv", "--question-field", "q",
         "--answer-field", "a", "--metric", "my_metrics:says_yes", "--scorer", "fake:echo",
         "--instruction", "Say yes.", "--json", "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["instructions"][0]["accuracy"] == 100.0
