"""The objective kind (``opro solve``, issue 29): OPRO on a scoring function of the user's.
A notebook's run, killed and resumed, equals an uninterrupted one; a solution the function
fails on (raises, hangs, NaN, no number) or that fails its checks (pattern, validator,
length) is recorded invalid with the reason, never scored, shown or proposed again, and
counted at the end and in the report; a process of its own kills a hanging call; feedback
beside the score, the no-history baseline, a target, ``direction="min"``, the score cache,
and one-line errors for an objective that cannot be found again."""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import opro
import opro as api  # where a test's `opro` is the fixture (opro ARGS, in this process)
from opro.errors import ConfigError
from opro.history import History, Scored
from opro.llm.cache import CallCache
from opro.llm.fake import FakeLLM
from opro.meta_prompt import render_meta_prompt
from opro.problems.base import Invalid
from opro.problems.objective import (
    ObjectiveEngine,
    ObjectiveKind,
    ObjectiveProblem,
    ObjectiveSpec,
)
from opro.problems.objective_calls import Objective, Score, read
from opro.types import Request
from tests.conftest import PYTHONPATH, Ran, assert_one_line_error
from tests.doubles import kill_after_lines, run_kind, spec_of, steps_of, summary_of

HERE = "tests.test_objective"
TASK = "Find the whole number the function likes best."
BAD = ("boom", "hang", "nan", "text")
"""Solutions ``troubled`` fails on: it raises, hangs, returns NaN, returns a text."""
HANG_S = 10.0
CALLS: Counter[str] = Counter()
"""Solutions the objectives below were called on, in this process (reset by each test)."""


@pytest.fixture(autouse=True)
def _no_calls_yet() -> None:
    CALLS.clear()


# -- the user's functions ---------------------------------------------------------------------


def closeness(solution: str) -> float:
    """Best at 42; a solution that is not a whole number raises (int's ValueError)."""
    return -abs(int(solution) - 42)


def distance(solution: str) -> float:
    """Best (lowest) at 42."""
    CALLS[solution] += 1
    return abs(int(solution) - 42)


def troubled(solution: str) -> Any:
    CALLS[solution] += 1
    if solution == "boom":
        raise ValueError("no boom here")
    if solution == "hang":
        time.sleep(HANG_S)
    if solution == "nan":
        return math.nan
    if solution == "text":
        return "seven"
    return float(len(solution))


async def troubled_async(solution: str) -> Any:
    if solution == "hang":
        await asyncio.sleep(HANG_S)
    if solution == "boom":
        raise ValueError("no async boom")
    return (float(len(solution)), f"{len(solution)} letters")


def with_feedback(solution: str) -> tuple[float, str]:
    CALLS[solution] += 1
    return float(len(solution)), f"{len(solution)} letters, try a longer one"


def counted(solution: str) -> float:
    CALLS[solution] += 1
    return float(len(solution))


def counted_edited(solution: str) -> float:
    """``counted`` after an edit: other code under the same path."""
    CALLS[solution] += 1
    return float(len(solution)) + 0.5


def short_enough(solution: str) -> bool | str:
    """A validator: a reason, False, True, or it raises."""
    if solution == "eee":
        raise KeyError("eee")
    if solution == "fff":
        return False
    return True if len(solution) <= 5 else "more than 5 letters"


def pid_then_hang(solution: str) -> float:
    """Writes its process id to the file ``solution`` names, then hangs."""
    Path(solution).write_text(str(os.getpid()))
    time.sleep(60)
    return 1.0


_running = {"now": 0, "most": 0}
_running_lock = threading.Lock()


def at_once(solution: str) -> float:
    """Counts the calls running at once."""
    with _running_lock:
        _running["now"] += 1
        _running["most"] = max(_running["most"], _running["now"])
    time.sleep(0.05)
    with _running_lock:
        _running["now"] -= 1
    return 1.0


# -- scripted optimizers (fake:tests.test_objective:NAME) --------------------------------------


def propose(request: Request) -> str:
    """A whole number, or now and then a word (which ``closeness`` raises on), drawn from the
    request; slow enough for a kill to land mid-run."""
    rng = random.Random(f"{request.seed}-{request.sample}-{len(request.prompt)}")
    time.sleep(0.02)
    pick = rng.choice(["seven", "many", *map(str, range(100))] + ["a few", "none"] * 20)
    return f" -3 <solution>{pick}</solution>"


def propose_troubles(request: Request) -> str:
    """Samples 0-3: the solutions ``troubled`` fails on, every step; the others a new word of
    the letters a-f."""
    if request.sample < len(BAD):
        return f" 1 <solution>{BAD[request.sample]}</solution>"
    rng = random.Random(f"{request.seed}-{request.sample}")
    return " 1 <solution>" + "".join(rng.choices("abcdef", k=rng.randint(3, 12))) + "</solution>"


def propose_words(request: Request) -> str:
    """A new word of the letters a-f, in either style's answer form."""
    rng = random.Random(f"{request.seed}-{request.sample}")
    word = "".join(rng.choices("abcdef", k=rng.randint(3, 12)))
    return f"Here it is: <solution>\n{word}\n</solution>"


def propose_checked(request: Request) -> str:
    """One proposal per sample, each failing one check but the first."""
    proposals = ("abc", "ABC", "abcdef", "fff", "eee", "abcabcabc")
    return f" 1 <solution>{proposals[request.sample % len(proposals)]}</solution>"


def propose_next(request: Request) -> str:
    """A walker: the last solution shown (the best, in ascending order), plus 1 + sample."""
    shown = re.findall(r"<solution>\s*(-?\d+)\s*</solution>", request.prompt)
    return f" 0 <solution>{int(shown[-1]) + 1 + request.sample}</solution>"


def propose_back(request: Request) -> str:
    """A walker the other way: the last solution shown, minus 1 + sample."""
    shown = re.findall(r"<solution>\s*(-?\d+)\s*</solution>", request.prompt)
    return f" 0 <solution>{int(shown[-1]) - 1 - request.sample}</solution>"


def fake(name: str) -> str:
    return f"fake:{HERE}:{name}"


def run(out: Path, **settings: Any) -> opro.RunResult:
    """An objective run of flat ``settings`` in ``out``, no cache, no progress."""
    return run_kind(ObjectiveSpec, out, progress=opro.NoProgress(), **settings)


def comparable(step: dict[str, Any], *also: str) -> dict[str, Any]:
    """A step record without what varies from run to run (timing, usage), nor ``also``."""
    varies = ("step_seconds", "elapsed_s", "usage", *also)
    return {k: v for k, v in step.items() if k not in varies}


# -- issue 29's done-when: a notebook's run, killed and resumed --------------------------------


@pytest.mark.subprocess
def test_a_notebook_objective_killed_and_resumed_equals_an_uninterrupted_run(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    """The function itself in a notebook's cell (an event loop running), a few steps with a
    scripted optimizer; the same run from the command line killed mid-run and resumed as
    printed (no --trust-code: this user's opro signed the run dir) ends the same."""
    settings = {"task": TASK, "initial": ("10", "90"), "optimizer": fake("propose")}

    async def cell() -> api.RunResult:  # a notebook: an event loop is running
        spec = api.ObjectiveSpec(
            objective=closeness, engine={"steps": 6, "samples_per_step": 3}, **settings
        )
        return api.start(spec, api.RunOptions(out=tmp_path / "whole", use_cache=False))

    whole = asyncio.run(cell())
    assert (whole.status, whole.stop_reason) == ("finished", "max_steps")
    assert spec_of(tmp_path / "whole")["objective"] == f"{HERE}:closeness"  # by its path

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "opro.cli", "solve", "--objective", f"{HERE}:closeness",
               "--task", TASK, "--initial", "10", "--initial", "90", "--optimizer",
               fake("propose"), "--steps", "6", "--samples-per-step", "3", "--no-cache",
               "--out", str(out)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    assert kill_after_lines(command, out / "steps.jsonl", 3, env) == -signal.SIGKILL
    assert summary_of(out)["status"] == "running"  # as the kill left it
    resumed = opro("-q", "resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "--trust-code" not in resumed.stderr
    assert summary_of(out)["status"] == "finished"

    killed, reference = steps_of(out), steps_of(tmp_path / "whole")
    assert [s["step"] for s in killed] == list(range(7))
    assert [comparable(s) for s in killed] == [comparable(s) for s in reference]
    assert any(s.get("invalid") for s in reference), "no invalid solution: a weak comparison"
    ends = summary_of(out), summary_of(tmp_path / "whole")
    for key in ("best", "proposals", "solutions_evaluated", "invalid_solutions"):
        assert ends[0][key] == ends[1][key], key


# -- what the function fails on ----------------------------------------------------------------


def test_solutions_the_function_fails_on_are_invalid_never_shown_nor_proposed_again(
    tmp_path: Path, opro: Callable[..., Ran]
) -> None:
    out = tmp_path / "troubles"
    started = time.monotonic()
    ran = opro("-q", "solve", "--objective", f"{HERE}:troubled", "--task", TASK,
               "--initial", "ab", "--optimizer", fake("propose_troubles"), "--steps", "3",
               "--samples-per-step", "6", "--objective-timeout", "0.3", "--no-cache",
               "--out", str(out))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert time.monotonic() - started < HANG_S / 2  # the hanging call was not waited for
    summary = summary_of(out)
    assert (summary["status"], summary["stop_reason"]) == ("finished", "max_steps")
    steps = steps_of(out)
    first = {r["solution"]: r["reason"] for r in steps[1]["invalid"]}
    assert sorted(first) == sorted(BAD)
    assert first["boom"].startswith("raised ValueError: no boom here (test_objective.py:")
    assert first["hang"] == "timed out after 0.3 s"
    assert first["nan"] == "returned NaN"
    assert first["text"] == "returned 'seven', not a number"
    assert all(r["text"] == r["solution"] for r in steps[1]["invalid"])
    # Never scored, never shown, never proposed again: later steps count them duplicates.
    for step in steps:
        assert not set(BAD) & {c["solution"] for c in step["candidates"]}
        assert step["step"] == 1 or "invalid" not in step
        for word in BAD:
            assert word not in (step["meta_prompt"] or ""), (step["step"], word)
    assert [s["duplicates"] for s in steps[2:]] == [len(BAD)] * 2
    assert [CALLS[word] for word in BAD] == [1] * len(BAD)  # each was called once
    assert summary["proposals"]["invalid"] == len(BAD)
    assert summary["invalid_solutions"] == len(BAD)
    assert summary["best"]["score"] == max(c["score"] for s in steps for c in s["candidates"])
    # The end says how many; the report lists each and why.
    said = [line for line in ran.stdout.splitlines() if line.startswith(f"{len(BAD)} ")]
    assert len(said) == 1, ran.stdout
    assert "solutions" in said[0]
    reported = opro("-q", "report", str(out))
    assert reported.returncode == 0, reported.stderr
    page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert "Invalid solutions" in page
    for reason in first.values():
        assert reason in page, reason


def test_an_async_objective_and_odd_return_values() -> None:
    objective = Objective(f"{HERE}:troubled_async", timeout_s=0.3, concurrency=4)
    started = time.monotonic()
    results = asyncio.run(objective.score_all(["boom", "hang", "abc"]))
    assert time.monotonic() - started < HANG_S
    assert isinstance(results[0], Invalid)
    assert results[0].reason.startswith("raised ValueError: no async boom (test_objective.py:")
    assert results[1] == Invalid("timed out after 0.3 s")
    assert results[2] == Score(3.0, "3 letters")
    assert read(True) == Invalid("returned True, not a number")  # a bool is no score
    assert read(None) == Invalid("returned None, not a number")
    assert read(math.inf) == Invalid("returned inf")
    assert read(np.float64(2.5)) == Score(2.5)
    assert read((np.int64(3), None)) == Score(3.0)
    long = read((1, "x" * 5000))
    assert isinstance(long, Score)
    assert long.feedback is not None
    assert len(long.feedback) == 1000


def test_calls_at_once_are_held_to_the_concurrency() -> None:
    _running.update(now=0, most=0)
    objective = Objective(f"{HERE}:at_once", timeout_s=5, concurrency=2)
    results = asyncio.run(objective.score_all([str(i) for i in range(6)]))
    assert results == [Score(1.0)] * 6
    assert _running["most"] == 2


@pytest.mark.subprocess  # interpreters of its own
def test_a_process_of_its_own_is_killed_when_it_overruns(tmp_path: Path) -> None:
    """The time limit counts from when the process has loaded the function (an interpreter's
    start is not the function's time): a quick function is scored under a limit shorter
    than the start, a hanging one is killed at its limit."""
    pid_file = tmp_path / "pid"
    objective = Objective(f"{HERE}:pid_then_hang", timeout_s=0.5, concurrency=2,
                          isolation="process")  # fmt: skip
    quick = Objective(f"{HERE}:with_feedback", timeout_s=0.3, concurrency=2, isolation="process")

    async def both() -> list[Score | Invalid]:
        return list(await asyncio.gather(objective.score(str(pid_file)), quick.score("abcd")))

    started = time.monotonic()
    hung, scored = asyncio.run(both())
    assert time.monotonic() - started < 30  # not the function's 60 s
    assert hung == Invalid("timed out after 0.5 s")
    assert scored == Score(4.0, "4 letters, try a longer one")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed, and reaped
    assert not CALLS  # nothing ran in this process


@pytest.mark.subprocess  # a script of its own, and interpreters of their own
def test_a_script_without_a_main_guard_scores_in_processes_of_their_own(tmp_path: Path) -> None:
    """A process of its own is a bare interpreter: the user's script is not run again in
    it (as multiprocessing's spawn would, which a script with no ``__main__`` guard does
    not survive)."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import opro\n"
        f"spec = opro.ObjectiveSpec(objective='{HERE}:with_feedback', task='t', "
        f"optimizer='{fake('propose_words')}', initial=('ab',), isolation='process', "
        "engine={'steps': 1, 'samples_per_step': 2})\n"
        f"opro.start(spec, opro.RunOptions(out={str(tmp_path / 'run')!r}, use_cache=False, "
        "progress=False))\n"
    )
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    steps = steps_of(tmp_path / "run")
    assert not any(s.get("invalid") for s in steps), steps
    assert [c["score"] for c in steps[0]["candidates"]] == [2.0]
    assert steps[1]["candidates"]


def slow_validator(solution: str) -> bool:
    time.sleep(5)
    return True


def test_a_validator_that_hangs_is_held_to_the_time_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    run(tmp_path / "slow", objective=f"{HERE}:counted", task=TASK, validator=slow_validator,
        objective_timeout_s=0.2, optimizer=fake("propose_checked"), steps=1,
        samples_per_step=2)  # fmt: skip
    assert time.monotonic() - started < 4  # not 5 s a solution
    invalid = [r["reason"] for s in steps_of(tmp_path / "slow") for r in s.get("invalid", [])]
    assert invalid
    assert set(invalid) == {"validator timed out after 0.2 s"}
    assert not CALLS


def test_a_notebooks_own_function_runs_in_a_thread_but_not_in_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def in_notebook(solution: str) -> float:
        return float(len(solution))

    in_notebook.__module__, in_notebook.__qualname__ = "__main__", "in_notebook"
    monkeypatch.setattr(sys.modules["__main__"], "in_notebook", in_notebook, raising=False)

    def spec(isolation: str) -> opro.ObjectiveSpec:
        return opro.ObjectiveSpec.model_validate({
            "objective": in_notebook, "task": TASK, "initial": ["ab"], "isolation": isolation,
            "optimizer": fake("propose_words"), "engine": {"steps": 1, "samples_per_step": 2},
        })  # fmt: skip

    assert spec("thread").objective == "__main__:in_notebook"
    options = opro.RunOptions(out=tmp_path / "thread", use_cache=False, progress=False)
    assert opro.start(spec("thread"), options).status == "finished"
    with pytest.raises(ConfigError) as refused:
        opro.start(spec("process"), opro.RunOptions(out=tmp_path / "process", progress=False))
    message = str(refused.value)
    assert "\n" not in message
    assert "__main__:in_notebook" in message
    assert "isolation" in message
    assert not (tmp_path / "process").exists()  # refused before a run dir was made


# -- the checks before the function --------------------------------------------------------


def test_pattern_validator_and_length_refuse_before_the_function_is_called(
    tmp_path: Path,
) -> None:
    run(
        tmp_path / "checked",
        objective=f"{HERE}:counted",
        task=TASK,
        pattern="[a-f]+",
        validator=short_enough,  # the function itself: kept by its path
        max_length=8,
        optimizer=fake("propose_checked"),
        steps=1,
        samples_per_step=6,
    )
    assert spec_of(tmp_path / "checked")["validator"] == f"{HERE}:short_enough"
    step = steps_of(tmp_path / "checked")[1]
    assert [c["solution"] for c in step["candidates"]] == ["abc"]
    assert {r["solution"]: r["reason"] for r in step["invalid"]} == {
        "ABC": "does not match the pattern '[a-f]+'",
        "abcdef": "more than 5 letters",
        "fff": "refused by the validator",
        "eee": "validator raised KeyError: 'eee' (test_objective.py:" + _line_of("KeyError"),
        "abcabcabc": "longer than 8 characters (9)",
    }
    assert dict(CALLS) == {"abc": 1}  # the function saw only the one that passed


def _line_of(needle: str) -> str:
    """``NN)``: the line of this file that holds ``needle`` first (where it raises)."""
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return f"{next(i for i, line in enumerate(lines, 1) if needle in line)})"


def test_a_pattern_that_does_not_compile_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"^pattern: .*not a regular expression") as refused:
        opro.build_spec(ObjectiveSpec, {"objective": f"{HERE}:counted", "task": "t",
                                        "pattern": "[a-"})  # fmt: skip
    assert "\n" not in str(refused.value)


# -- feedback, the baseline without history ----------------------------------------------------


@pytest.mark.parametrize("optimizer_api", ["completion", "chat"])
def test_feedback_is_shown_beside_the_score_only_when_asked(
    tmp_path: Path, optimizer_api: str
) -> None:
    beside = {
        "completion": "<solution>ab</solution>\nFeedback: 2 letters, try a longer one\n",
        "chat": "score:\n2\nfeedback:\n2 letters, try a longer one\n",
    }[optimizer_api]
    for feedback in (True, False):
        out = tmp_path / f"feedback-{feedback}"
        run(out, objective=with_feedback, task=TASK, initial=("ab",), feedback=feedback,
            optimizer=fake("propose_words"), optimizer_api=optimizer_api, steps=2,
            samples_per_step=2)  # fmt: skip
        steps = steps_of(out)
        prompt = steps[1]["meta_prompt"]
        assert "<solution>" in prompt
        assert (beside in prompt) is feedback, prompt
        assert ("try a longer one" in prompt) is feedback
        # Recorded either way, with every candidate's score.
        for step in steps:
            for c in step["candidates"]:
                note = f"{len(c['solution'])} letters, try a longer one"
                assert c["details"] == {"feedback": note}
        if feedback:  # the later candidates' feedback too
            later = steps[1]["candidates"][0]
            assert f"{len(later['solution'])} letters, try a longer one" in steps[2]["meta_prompt"]


@pytest.mark.parametrize("optimizer_api", ["completion", "chat"])
def test_without_history_the_meta_prompt_shows_no_earlier_solution(
    tmp_path: Path, optimizer_api: str
) -> None:
    out = tmp_path / "baseline"
    run(out, objective=f"{HERE}:counted", task=TASK, initial=("abcabc", "fedfed"),
        show_history=False, optimizer=fake("propose_words"), optimizer_api=optimizer_api, steps=3,
        samples_per_step=3)  # fmt: skip
    steps = steps_of(out)
    scored = {c["solution"] for s in steps for c in s["candidates"]}
    assert len(scored) == 2 + 3 * 3
    prompts = [s["meta_prompt"] for s in steps[1:]]
    assert len(set(prompts)) == 1  # the same request every step: sampling, not optimizing
    for solution in scored:
        assert solution not in prompts[0]
    assert "score:" not in prompts[0].lower()
    assert TASK in prompts[0]
    with_history = tmp_path / "history"
    run(with_history, objective=f"{HERE}:counted", task=TASK, initial=("abcabc", "fedfed"),
        optimizer=fake("propose_words"), optimizer_api=optimizer_api, steps=1)  # fmt: skip
    assert "abcabc" in steps_of(with_history)[1]["meta_prompt"]  # the same run shows them


# -- target, direction ---------------------------------------------------------------------


def test_reaching_the_target_stops_the_run_at_the_optimum(tmp_path: Path) -> None:
    result = run(tmp_path / "max", objective=closeness, task=TASK, initial=("30",), target=0,
                 optimizer=fake("propose_next"), steps=20, samples_per_step=3)  # fmt: skip
    assert (result.status, result.stop_reason) == ("finished", "optimum")
    assert result.best is not None
    assert (result.best.text, result.best.score) == ("42", 0.0)
    steps = steps_of(tmp_path / "max")
    assert len(steps) - 1 == result.best.step < 20  # stopped at the step that reached it
    assert [c["optimal"] for c in steps[-1]["candidates"] if c["solution"] == "42"] == [True]
    assert summary_of(tmp_path / "max")["first_optimal_step"] == result.best.step


def test_direction_min_picks_the_lowest_score(tmp_path: Path) -> None:
    result = run(tmp_path / "min", objective=distance, task=TASK, direction="min",
                 initial=("60", "50"), optimizer=fake("propose_back"), steps=3,
                 samples_per_step=2)  # fmt: skip
    assert result.stop_reason == "max_steps"
    steps = steps_of(tmp_path / "min")
    scores = [c["score"] for s in steps for c in s["candidates"]]
    assert result.best is not None
    assert result.best.score == min(scores) < max(scores)
    assert result.best.text == "44"  # 50 → 49, 48 → 47, 46 → 45, 44 (best last, lowest)
    assert "Lower scores are better." in steps[1]["meta_prompt"]
    # Each step's best is the lowest so far; the target in this direction is reached from above.
    assert [s["best_score"] for s in steps] == [8.0, 6.0, 4.0, 2.0]
    reached = run(tmp_path / "target", objective=distance, task=TASK, direction="min",
                  target=3, initial=("50",), optimizer=fake("propose_back"), steps=10,
                  samples_per_step=2)  # fmt: skip
    assert reached.stop_reason == "optimum"
    assert reached.best is not None
    assert reached.best.score <= 3


# -- the score cache -----------------------------------------------------------------------


def test_a_second_run_with_the_same_cache_does_not_call_the_function_again(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "calls.sqlite"

    def again(name: str, **fields: Any) -> list[dict[str, Any]]:
        spec = opro.ObjectiveSpec.model_validate({
            "objective": counted, "task": TASK, "initial": ["abc"],
            "optimizer": fake("propose_words"), "engine": {"steps": 2, "samples_per_step": 3},
            **fields,
        })  # fmt: skip
        opro.start(spec, opro.RunOptions(out=tmp_path / name, cache=cache, progress=False))
        return [comparable(s, "spec", "spec_sha256") for s in steps_of(tmp_path / name)]

    first = again("first")
    called = sum(CALLS.values())
    assert called == 1 + 2 * 3
    assert again("second") == first  # the same run...
    assert sum(CALLS.values()) == called  # ...without a call of the function
    assert again("uncached", cache_scores=False) == first
    assert sum(CALLS.values()) == 2 * called  # called again for each


def test_an_edited_function_is_a_new_cache_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CallCache(tmp_path / "calls.sqlite")

    def score(solution: str) -> Score | Invalid:
        objective = Objective(f"{HERE}:counted", timeout_s=5, concurrency=1, cache=cache)
        return asyncio.run(objective.score(solution))

    assert score("abc") == Score(3.0)
    assert score("abc") == Score(3.0, cached=True)
    assert CALLS["abc"] == 1
    monkeypatch.setattr(sys.modules[HERE], "counted", counted_edited)
    assert score("abc") == Score(3.5)  # its own source: called, not the old score
    assert CALLS["abc"] == 2


# -- an objective that cannot be found again ---------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "needles"),
    [
        ("no_such_module:score", ("no_such_module:score", "cannot import it")),
        (f"{HERE}:no_such_function", (f"{HERE}:no_such_function", "cannot import it")),
        (f"{HERE}:CALLS", (f"{HERE}:CALLS", "is not a function")),
        ("score.py", ("module:function",)),
    ],
)
def test_an_objective_that_cannot_be_imported_is_a_one_line_error(
    tmp_path: Path, opro: Callable[..., Ran], objective: str, needles: tuple[str, ...]
) -> None:
    ran = opro("-q", "solve", "--objective", objective, "--task", TASK, "--optimizer",
               fake("propose_words"), "--steps", "1", "--no-cache",
               "--out", str(tmp_path / "r"))  # fmt: skip
    assert ran.returncode == 2
    assert_one_line_error(ran, *needles)
    assert not (tmp_path / "r").exists()


def test_a_lambda_or_a_nested_function_is_refused_in_one_line() -> None:
    def nested(solution: str) -> float:
        return 1.0

    class Scorer:
        def __call__(self, solution: str) -> float:
            return 1.0

    for function, needle in ((lambda s: 1.0, "cannot be found again by its name"),
                             (nested, "cannot be found again by its name"),
                             (Scorer(), "is not a function")):  # fmt: skip
        with pytest.raises(ConfigError, match=needle) as refused:
            opro.ObjectiveSpec(objective=function, task=TASK)
        assert "\n" not in str(refused.value)


# -- the proposal's form, the meta-prompts ---------------------------------------------------


def _problem(style: str, feedback: bool = False) -> ObjectiveProblem:
    spec = ObjectiveSpec(
        objective=f"{HERE}:with_feedback",
        task=TASK,
        style=style,
        solution_format="A whole number in digits.",
        feedback=feedback,
    )
    return ObjectiveKind().build(spec, {"optimizer": FakeLLM("echo")})


@pytest.mark.parametrize(
    ("style", "output", "solution"),
    [
        ("pretrained", " 41 <solution>17</solution>", "17"),  # continues "Score:"
        ("pretrained", "17</solution>", "17"),  # continues "<solution>" (no history)
        ("instruct", "Sure.\n<solution>\n 17 \n</solution>", "17"),
        ("instruct", "<solution>1</solution> or better <solution>2</solution>", "2"),
        ("instruct", "<solution>  </solution>", None),
        ("instruct", "17", None),
        ("instruct", "<solution>17", None),  # cut off: not closed
        ("instruct", "Sol: 9</solution>", None),  # a bare close: the prompt opened nothing
        ("instruct", "<solution>draft <solution>17</solution>", "17"),  # its last opening
    ],
)
def test_a_solution_is_read_from_its_tags(style: str, output: str, solution: str | None) -> None:
    assert _problem(style).parse(output) == solution


def _history() -> History[str]:
    history: History[str] = History("max")
    for step, (text, score) in enumerate([("7", 7.0), ("40", 40.5), ("51", 100 / 3), ("3", 3.0)]):
        note = f"{text} is {abs(42 - int(text))} away"
        history.add(Scored(text, text, score, step, details={"feedback": note}))
    return history


@pytest.mark.parametrize(("style", "feedback"), [("instruct", True), ("pretrained", False)])
def test_meta_prompt_golden(style: str, feedback: bool) -> None:
    from tests.test_problems import _golden  # hypothesis: not for every process that imports this

    problem = _problem(style, feedback)
    engine = ObjectiveEngine(top_k=3)  # the kind's own: scores in 4 significant digits
    text = render_meta_prompt(problem, _history(), engine, np.random.default_rng(0))
    _golden(f"objective_{style}.txt", text)
    assert "<solution>3</solution>" not in text.replace("\n", "")  # the worst is not shown
    assert ("is 2 away" in text) is feedback
    assert text.index("40.5") > text.index("33.33") > text.index("7")  # ascending: best last


def test_the_report_tables_list_solutions_best_first_and_the_invalid(tmp_path: Path) -> None:
    run(tmp_path / "r", objective=troubled, task=TASK, initial=("ab", "abcd"),
        optimizer=fake("propose_troubles"), objective_timeout_s=0.3, steps=1,
        samples_per_step=5)  # fmt: skip
    from opro.report.load import load_job  # matplotlib: not for every process that imports this

    tables = ObjectiveKind().report.tables(load_job(tmp_path / "r", "r"))
    assert [t.caption for t in tables] == ["Solutions, best first (r)", "Invalid solutions (r)"]
    solutions, invalid = tables
    scores = [float(row[2]) for row in solutions.rows]
    assert scores == sorted(scores, reverse=True)
    assert [row[1] for row in invalid.rows] == list(BAD)
    assert invalid.rows[1] == ("1", "hang", "timed out after 0.3 s")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["invalid_solutions"] == 4
