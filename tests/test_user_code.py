"""User code fails as user code (issue 24, point 5): an exception in the user's metric is a
one-line error naming the function, the example and the exception, with a user error's exit
status, not opro's "internal error"; the run is saved as stopped with how to go on, and
resumes to its end once the function is fixed. A metric that calls sys.exit or raises
KeyboardInterrupt stops the run cleanly, with no asyncio trace (issue 26)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import opro
from opro.errors import UserCodeError
from tests import own_metric
from tests.conftest import ROOT, Ran, assert_one_line_error, run_cli
from tests.doubles import steps_of, summary_of

SCORER = "fake:tests.doubles:sentiment_scorer"
OPTIMIZER = "fake:tests.doubles:instruction_proposer"
REVIEWS = [
    ("A great film, I love it", "positive"),
    ("Dull and far too long", "negative"),
    ("Good acting, good story", "positive"),
    ("I walked out", "negative"),
    ("The best thing this year, great", "positive"),
    ("Boring from the first minute", "negative"),
    ("What a good surprise", "positive"),
    ("A waste of an evening", "negative"),
]


def optimize(tmp_path: Path, metric: str, out: Path) -> list[str]:
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in REVIEWS))
    return ["optimize", "--dataset", f"csv:{data}", "--question-field", "text",
            "--answer-field", "label", "--train-size", "4", "--metric", metric,
            "--scorer", SCORER, "--scorer-api", "chat", "--optimizer", OPTIMIZER,
            "--steps", "3", "--samples-per-step", "2", "--no-cache", "--out", str(out)]  # fmt: skip


def test_a_metric_that_raises_is_a_user_error_and_the_run_resumes_once_it_is_fixed(
    tmp_path: Path, opro: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    monkeypatch.setattr(own_metric, "CALLS", itertools.count())
    monkeypatch.setenv(own_metric.BUG, "8")  # step 0 scores 4 examples, step 1 eight: its middle
    ran = opro("-q", *optimize(tmp_path, "tests.own_metric:buggy", out))
    assert ran.returncode == 2  # a user error, as bad input (not 70, "internal error")
    notices = [line for line in ran.stderr.splitlines() if line.startswith("opro: step ")]
    error = Ran(ran.returncode, ran.stdout, ran.stderr.split("\n", len(notices))[-1])
    assert_one_line_error(  # after the run's notice (its optimizer's output failed to parse)
        error,
        "opro: error: metric tests.own_metric:buggy raised AttributeError: 'NoneType' object "
        "has no attribute 'lower' (own_metric.py:",
        f"fix it, then continue the run with `opro resume {out}` (it is saved)",
    )
    shown = re.search(r"on example (\d+) \('([^']*)'\)", error.stderr)
    assert shown is not None
    assert REVIEWS[int(shown[1])][0] == shown[2]  # the example's row, and its question
    summary = summary_of(out)
    assert (summary["status"], summary["stop_reason"]) == ("stopped", "user_code")
    assert summary["message"] == error.stderr.strip().removeprefix("opro: error: ")
    assert [s["step"] for s in steps_of(out)] == [0, 1]  # step 2 is redone on resume
    monkeypatch.delenv(own_metric.BUG)  # the fix
    resumed = opro("-q", "resume", str(out))  # as printed
    assert resumed.returncode == 0, resumed.stderr
    assert summary_of(out)["status"] == "finished"
    assert [s["step"] for s in steps_of(out)] == [0, 1, 2, 3]


def test_a_metric_returning_nonsense_names_the_example_in_python(tmp_path: Path) -> None:
    spec = opro.InstructionsSpec.model_validate({
        "dataset": [{"text": t, "label": lab} for t, lab in REVIEWS],
        "question_field": "text", "answer_field": "label", "train_size": 4,
        "metric": "tests.own_metric:out_of_range", "scorer": {"spec": SCORER, "api": "chat"},
        "optimizer": OPTIMIZER, "engine": {"steps": 2, "samples_per_step": 2},
    })  # fmt: skip
    out = tmp_path / "py"
    with pytest.raises(UserCodeError) as raised:
        opro.start(spec, opro.RunOptions(out=out, use_cache=False, progress=False))
    message = str(raised.value)
    assert message.startswith("metric tests.own_metric:out_of_range returned 3.0 on example ")
    assert ": return a bool or a number in [0, 1], then continue the run with `opro" in message
    assert str(out) in message
    assert summary_of(out)["stop_reason"] == "user_code"


@pytest.mark.parametrize(
    ("metric", "code", "needle"),
    [("exits", 2, "raised SystemExit: 3 (own_metric.py:"), ("interrupts", 130, "interrupted")],
)
def test_sys_exit_or_ctrl_c_in_a_metric_stops_the_run_cleanly(
    tmp_path: Path, metric: str, code: int, needle: str
) -> None:
    out = tmp_path / metric
    result = run_cli("-q", *optimize(tmp_path, f"tests.own_metric:{metric}", out),
                     env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == code, result.stderr
    assert "never retrieved" not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert needle in result.stderr
    assert summary_of(out)["status"] == "stopped"
