"""The Python API as a notebook or a script uses it: a cell run again returns (or resumes)
its run, hints in Python's words, the cache on in ``opro.evaluate``, progress on stderr in a
plain script (switchable), typed settings with "did you mean", options checked when built,
the same names in summary.json and ``RunSummary``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import opro
from opro.errors import ConfigError
from tests.conftest import assert_one_line_error
from tests.doubles import steps_of, summary_of
from tests.test_own_task import OPTIMIZER, REVIEWS, SCORER, spec


def small(**fields: Any) -> opro.InstructionsSpec:
    return spec(engine={"steps": 2, "samples_per_step": 2}, **fields)


# -- a notebook cell run again ------------------------------------------------------------


def test_a_cell_run_again_returns_its_finished_run(tmp_path: Path) -> None:
    out = tmp_path / "first"

    async def cell() -> opro.RunResult:  # a notebook: an event loop is running
        return opro.start(small(), opro.RunOptions(out=out))

    first = asyncio.run(cell())
    lines = (out / "steps.jsonl").read_bytes()
    again = asyncio.run(cell())
    assert (first.status, again.status) == ("finished", "finished")
    assert again.already_finished
    assert not first.already_finished
    assert again.run_dir == first.run_dir
    assert again.best_instruction == first.best_instruction
    assert (out / "steps.jsonl").read_bytes() == lines  # nothing was run again


def test_a_cell_run_again_resumes_its_unfinished_run(tmp_path: Path) -> None:
    out = tmp_path / "capped"
    stopped = opro.start(small(), opro.RunOptions(out=out, caps={"max_calls": 20}))
    assert (stopped.status, stopped.stop_reason) == ("stopped", "budget")
    done = len(steps_of(out))
    # The same cell with a raised cap (the hint says so) continues the same run.
    resumed = opro.start(small(), opro.RunOptions(out=out, caps=opro.Caps(max_calls=500)))
    assert resumed.status == "finished"
    assert not resumed.already_finished
    assert len(steps_of(out)) == 3 > done
    opro.start(small(), opro.RunOptions(out=tmp_path / "whole"))
    assert [s["candidates"] for s in steps_of(out)] == [
        s["candidates"] for s in steps_of(tmp_path / "whole")
    ]


def test_another_spec_in_the_same_dir_is_refused_in_pythons_words(tmp_path: Path) -> None:
    out = tmp_path / "first"
    opro.start(small(), opro.RunOptions(out=out))
    other = spec(engine={"steps": 3, "samples_per_step": 2}, train_size=5)
    with pytest.raises(ConfigError) as refused:
        opro.start(other, opro.RunOptions(out=out))
    message = str(refused.value)
    assert "\n" not in message
    assert "engine.steps" in message
    assert "train_size" in message
    assert f"opro.resume({str(out)!r})" in message
    assert "RunOptions(out=...)" in message
    assert "opro resume " not in message
    assert "--" not in message
    assert json.loads((out / "config.json").read_text())["spec"]["engine"]["steps"] == 2
    # Refusing as the CLI does: the hint is still Python's.
    with pytest.raises(ConfigError, match=r"opro\.resume\("):
        opro.start(small(), opro.RunOptions(out=out, if_exists="refuse"))


def test_the_cli_refuses_a_second_run_into_the_same_dir_naming_the_resume(
    tmp_path: Path, opro: Any
) -> None:
    out = tmp_path / "cli"
    args = ["optimize", "--dataset", "synthetic:adjective_order", "--max-train", "4",
            "--max-test", "4", "--scorer", SCORER, "--scorer-api", "chat", "--optimizer",
            OPTIMIZER, "--steps", "1", "--samples-per-step", "2", "--out", str(out),
            "--no-report"]  # fmt: skip
    assert opro(*args).returncode == 0
    again = opro(*args)
    assert_one_line_error(again, f"`opro resume {out}`", "--out")


# -- opro.evaluate: the cache, progress ---------------------------------------------------


def test_evaluate_uses_the_call_cache_by_default(tmp_path: Path) -> None:
    first = opro.evaluate(spec(), ["Think."], split="all")
    again = opro.evaluate(spec(), ["Think."], split="all")
    assert first.usage.calls == len(REVIEWS)
    assert (again.usage.calls, again.usage.cached_calls) == (0, len(REVIEWS))
    fresh = opro.evaluate(spec(), ["Think."], split="all", use_cache=False)
    assert fresh.usage.calls == len(REVIEWS)
    own = opro.evaluate(spec(), ["Think."], split="all", cache=tmp_path / "mine.sqlite")
    assert own.usage.calls == len(REVIEWS)
    assert (tmp_path / "mine.sqlite").is_file()


def test_a_plain_script_shows_progress_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    opro.start(small(), opro.RunOptions(out=tmp_path / "shown"))
    out, err = capsys.readouterr()
    assert out == ""
    assert "[shown] step 1/2" in err
    assert "[shown] finished (max_steps)" in err
    opro.evaluate(spec(), ["Think.", "Answer."], split="all", use_cache=False)
    assert "[evaluate] 20/20 scored" in capsys.readouterr().err
    opro.start(small(), opro.RunOptions(out=tmp_path / "quiet", progress=False))
    opro.evaluate(spec(), ["Think."], split="all", progress=False)
    assert capsys.readouterr() == ("", "")


# -- typed settings, options checked when built -------------------------------------------


def test_loop_settings_are_typed_and_misspellings_get_a_did_you_mean() -> None:
    typed = opro.InstructionsSpec(dataset="gsm8k", engine=opro.InstructionsEngine(steps=2))
    assert typed.engine.steps == 2
    cases = {
        "unknown setting 'steps' of InstructionsSpec: it is a loop setting, pass "
        "engine=InstructionsEngine(steps=2)": lambda: opro.InstructionsSpec(
            dataset="gsm8k", steps=2
        ),
        "unknown setting 'datset' of InstructionsSpec: did you mean 'dataset'?": lambda: (
            opro.InstructionsSpec(datset="gsm8k")
        ),
        "unknown setting 'stpes' of InstructionsEngine: did you mean 'steps'?": lambda: (
            opro.InstructionsSpec(dataset="gsm8k", engine={"stpes": 2})
        ),
        "unknown setting 'nodez' of TspSpec: did you mean 'nodes'?": lambda: opro.TspSpec(nodez=5),
        "unknown setting 'spce' of LLMConfig: did you mean 'spec'?": lambda: opro.LLMConfig(
            spce="local:smollm2"
        ),
        "unknown setting 'max_call' of Caps: did you mean 'max_calls'?": lambda: opro.Caps(
            max_call=5
        ),
        "unknown setting 'candidates_per_step' of InstructionsEngine: it is "
        "'samples_per_step' here": lambda: opro.InstructionsEngine(candidates_per_step=4),
    }
    for message, build in cases.items():
        with pytest.raises(ConfigError) as refused:
            build()
        assert str(refused.value) == message


def test_run_options_are_checked_when_built() -> None:
    assert opro.RunOptions(caps={"max_calls": 5}).caps == opro.Caps(max_calls=5)
    refusals = {
        "caps: max_calls must be >= 1 (got 0)": {"caps": {"max_calls": 0}},
        "unknown setting 'calls' of Caps: did you mean 'max_calls'?": {"caps": {"calls": 5}},
        "caps must be opro.Caps(max_calls=...) or a dict of its settings, not int": {"caps": 5},
        "if_exists must be 'continue' or 'refuse', not 'replace'": {"if_exists": "replace"},
    }
    for message, fields in refusals.items():
        with pytest.raises(ConfigError) as refused:
            opro.RunOptions(**fields)
        assert str(refused.value) == message
    with pytest.raises(ConfigError, match=r"progress must be an opro\.Progress"):
        opro.RunOptions(progress="yes")  # type: ignore[arg-type]
    assert opro.RunOptions(progress=True).progress is None  # shown: the default


def test_summary_names_are_the_same_in_the_file_and_the_object(tmp_path: Path) -> None:
    result = opro.start(small(), opro.RunOptions(out=tmp_path / "r", progress=False))
    summary = result.summary
    assert isinstance(summary, opro.RunSummary)
    data = summary_of(tmp_path / "r")
    for name in ("calls", "cached_calls", "retries", "tokens", "cost_usd"):
        assert getattr(summary, name) == data[name], name
    assert summary.calls > 0


def test_hints_from_the_python_api_are_in_pythons_words() -> None:
    from opro import api
    from opro.errors import Interrupted

    for shell, python in {
        "`opro resume runs/x`": "`opro.resume('runs/x')`",
        "`opro resume runs/x --trust-code`": "`opro.resume('runs/x', "
        "opro.RunOptions(trust_code=True))`",
    }.items():
        with pytest.raises(Interrupted) as raised, api._in_python():
            raise Interrupted(f"interrupted: runs/x is saved; continue it with {shell}")
        assert str(raised.value) == f"interrupted: runs/x is saved; continue it with {python}"


def test_every_surface_builds_a_roles_llm_one_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run, ``opro.evaluate`` and ``opro.complete`` build each LLM through
    ``LLMConfig.build`` (one stack: cache, budget, retries), each with its own role."""
    from opro.llm.config import LLMConfig

    built: list[str] = []
    original = LLMConfig.build

    def build(self: LLMConfig, role: str, *args: Any, **kwargs: Any) -> Any:
        built.append(role)
        return original(self, role, *args, **kwargs)

    monkeypatch.setattr(LLMConfig, "build", build)
    task = small()
    cache = tmp_path / "calls.sqlite"
    opro.start(task, opro.RunOptions(out=tmp_path / "run", cache=cache, progress=False))
    assert sorted(built) == ["optimizer", "scorer"]
    built.clear()
    opro.evaluate(task, ["Be brief."], cache=cache, progress=False, max_examples=2)
    assert built == ["scorer"]
    built.clear()
    opro.complete(SCORER, "Q: 1 + 1?\nA:", cache=opro.open_cache(cache))
    assert built == ["llm"]
