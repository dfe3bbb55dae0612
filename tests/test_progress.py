"""Live progress: the engine's observer contract, and what -q, --log-json and plain show."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from opro import Caps, InstructionsSpec, LinregSpec, RunOptions, api
from opro.progress import RunEnd, RunStart, Snapshot, eta
from opro.progress_display import LiveDisplay, PlainDisplay
from opro.progress_text import clock
from opro.testing.stub_server import StubServer
from tests.conftest import ROOT, SENTINEL_KEY, SHARED_DATA, assert_one_line_error, run_cli
from tests.doubles import run_kind

WALKER = "fake:tests.doubles:linreg_walker"
BOOLEANS = InstructionsSpec(
    dataset="bbh:boolean_expressions",
    data_dir=str(SHARED_DATA),
    scorer="fake:tests.doubles:boolean_scorer",
)
ENV = {"PYTHONPATH": str(ROOT)}
LINREG = ["linreg", "--optimizer", WALKER, "--reps", "1", "--w-true", "40", "--b-true", "40"]
LINREG += ["--no-cache", "--json"]  # two runs of one command make the same calls: none cached
SNAPSHOT_FIELDS = {
    "step",
    "steps",
    "best",
    "calls",
    "cached_calls",
    "tokens",
    "cost_usd",
    "elapsed_s",
    "eta_s",
}


class Recorder:
    """A Progress that keeps every event, and what ``live()`` said at each step."""

    def __init__(self) -> None:
        self.starts: list[RunStart] = []
        self.steps: list[Snapshot] = []
        self.live_at_step: list[Snapshot] = []
        self.ends: list[RunEnd] = []
        self.scored: list[tuple[int, int]] = []
        self.live: Callable[[], Snapshot] | None = None

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        self.starts.append(start)
        self.live = live

    def step_finished(self, snapshot: Snapshot) -> None:
        assert self.live is not None
        self.steps.append(snapshot)
        self.live_at_step.append(self.live())

    def run_finished(self, end: RunEnd) -> None:
        self.ends.append(end)

    def examples_scored(self, done: int, total: int) -> None:
        self.scored.append((done, total))


def records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


def totals(usage: dict[str, dict[str, Any]]) -> tuple[int, int]:
    calls = sum(u["calls"] for u in usage.values())
    tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage.values())
    return calls, tokens


def test_one_event_per_step_matching_the_run_dir(tmp_path: Path) -> None:
    seen = Recorder()
    run_kind(LinregSpec, tmp_path / "r", progress=seen, optimizer=WALKER, reps=1, steps=5)
    run = tmp_path / "r"
    on_disk = records(run)
    summary = json.loads((run / "summary.json").read_text())

    assert seen.starts == [RunStart(str(run), 5, None)]
    assert [s.step for s in seen.steps] == [r["step"] for r in on_disk] == [0, 1, 2, 3, 4, 5]
    assert [s.best for s in seen.steps] == [r["best_score"] for r in on_disk]
    assert [(s.calls, s.tokens) for s in seen.steps] == [totals(r["usage"]) for r in on_disk]
    assert seen.steps[-1].calls == 40  # 5 steps of 8 samples: the counts are not all zero
    assert all(s.steps == 5 for s in seen.steps)
    assert all(s.eta_s is not None and s.eta_s >= 0 for s in seen.steps)  # from the first
    assert seen.steps[-1].eta_s == 0
    elapsed = [s.elapsed_s for s in seen.steps]
    assert elapsed == sorted(elapsed)
    # live() between steps: the same counters as the step's snapshot
    assert [(x.step, x.calls) for x in seen.live_at_step] == [(s.step, s.calls) for s in seen.steps]

    [end] = seen.ends
    assert (end.status, end.stop_reason) == ("finished", "max_steps")
    final = end.final
    assert (final.calls, final.tokens, final.cost_usd) == (
        summary["calls"],
        summary["tokens"],
        summary["cost_usd"],
    )
    assert final.best == summary["best"]["score"]
    assert final.eta_s == 0


def test_a_resumed_run_reports_from_where_it_was_and_eta_waits_for_a_step(tmp_path: Path) -> None:
    first = Recorder()
    run_kind(
        LinregSpec,
        tmp_path / "r",
        caps=Caps(max_calls=12),
        progress=first,
        optimizer=WALKER,
        reps=1,
        steps=4,
    )
    [stopped] = first.ends
    assert (stopped.status, stopped.stop_reason) == ("stopped", "budget")
    assert stopped.final.eta_s is None
    done = first.steps[-1].step
    assert done is not None
    assert done < 4

    again = Recorder()
    result = api.resume(
        tmp_path / "r", RunOptions(caps=Caps(max_calls=100), progress=again, trust_code=True)
    )
    assert result.status == "finished"
    [start] = again.starts
    assert start.last_step == done
    assert [s.step for s in again.steps] == list(range(done + 1, 5))
    assert again.steps[0].calls > first.steps[-1].calls  # usage carries over sessions
    assert again.steps[-1].eta_s == 0


def test_live_counters_move_during_a_step(tmp_path: Path) -> None:
    """A display thread polling ``live()`` sees calls that a step has made so far."""
    polled: list[int] = []
    stop = threading.Event()

    class Poller(Recorder):
        def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
            super().run_started(start, live)

            def poll() -> None:
                while not stop.is_set():
                    polled.append(live().calls)
                    time.sleep(0.002)

            threading.Thread(target=poll, daemon=True).start()

    seen = Poller()
    try:
        run_kind(LinregSpec, tmp_path / "r", progress=seen, optimizer=WALKER, reps=1, steps=3)
    finally:
        stop.set()
    at_steps = {s.calls for s in seen.steps}
    assert at_steps == {0, 8, 16, 24}
    assert set(polled) - at_steps, "live() only ever showed the counts of finished steps"


def test_evaluate_reports_each_scored_pair(tmp_path: Path) -> None:
    seen = Recorder()
    evaluation = api.evaluate(
        BOOLEANS,
        ["", "Check."],
        split="train",
        max_examples=7,
        progress=seen,
    )
    assert [r.n for r in evaluation.results] == [7, 7]
    assert seen.scored == [(i, 14) for i in range(15)]


def test_eta_and_clock() -> None:
    assert eta(4, []) is None
    assert eta(4, [1.0, 3.0]) == 8.0
    assert eta(-1, [1.0]) == 0.0
    assert (clock(None), clock(75.2), clock(3725)) == ("?", "1:15", "1:02:05")


# -- the displays, through the real command ------------------------------------------------


def test_plain_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = run_cli(*LINREG, "--steps", "3", "--out", str(tmp_path / "r"), env=ENV)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 5, result.stderr
    for k, line in enumerate(lines[:4]):
        assert re.match(rf"\[r\] step {k}/3  best \S+  calls {8 * k} \(0 cached\)  ", line)
        assert "ETA " in line
    assert lines[4].startswith("[r] finished (max_steps): step 3/3 ")
    json.loads(result.stdout)  # stdout is still the summary alone


def test_quiet_prints_nothing_on_success_before_or_after_the_command(tmp_path: Path) -> None:
    before = run_cli("-q", *LINREG, "--steps", "2", "--out", str(tmp_path / "a"), env=ENV)
    after = run_cli(*LINREG, "--steps", "2", "--out", str(tmp_path / "b"), "-q", env=ENV)
    for result in (before, after):
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert json.loads(result.stdout)["status"] == "finished"


def test_quiet_and_log_json_together_is_one_line_error() -> None:
    assert_one_line_error(run_cli("-q", "--log-json", *LINREG), "-q", "--log-json")
    assert_one_line_error(run_cli("-q", *LINREG, "--log-json"), "cannot be combined")


def test_log_json_errors_are_json_too(tmp_path: Path) -> None:
    result = run_cli("--log-json", *LINREG, "--steps", "0", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    event = json.loads(line)
    assert event["event"] == "error"
    assert event["exit_code"] == 2
    assert event["message"].startswith("opro: error: --steps must be >= 1")


def test_log_json_lines_parse_and_hold_no_key_or_prompt(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["-v", "--log-json", "optimize", "--dataset", "bbh:boolean_expressions"]
    args += ["--data-dir", str(SHARED_DATA), "--scorer", "openai:stub"]
    args += ["--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "2"]
    args += ["--max-train", "5", "--max-test", "5", "--out", str(out)]
    with StubServer() as server:
        result = run_cli(
            *args,
            "--scorer-base-url",
            server.url,
            env=ENV | {"OPENAI_API_KEY": SENTINEL_KEY},
        )
        assert server.headers_seen, "the stub saw no request"
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert "log" in kinds  # -v: log records come as JSON too
    progress = [e for e in events if e["event"] != "log"]
    assert [e["event"] for e in progress] == ["run_started", "step", "step", "step", "run_finished"]
    assert progress[0] == {"event": "run_started", "run": str(out), "steps": 2, "last_step": None}
    steps = [e for e in progress if e["event"] == "step"]
    assert all(set(e) == {"event", "run", *SNAPSHOT_FIELDS} for e in steps)
    assert [e["step"] for e in steps] == [0, 1, 2]
    assert [e["best"] for e in steps] == [r["best_score"] for r in records(out)]
    summary = json.loads((out / "summary.json").read_text())
    end = progress[-1]
    assert (end["calls"], end["tokens"], end["eta_s"]) == (summary["calls"], summary["tokens"], 0)
    assert SENTINEL_KEY not in result.stderr + result.stdout
    texts = {c["text"] for r in records(out) for c in r["candidates"] if len(c["text"]) > 12}
    assert texts, "no candidate text to look for: the check would be vacuous"
    assert not [t for t in texts if t in result.stderr]
    assert records(out)[1]["meta_prompt"][:60] not in result.stderr


# -- the displays, in this process -----------------------------------------------------------


def test_plain_display_throttles_evaluate_to_tenths() -> None:
    stream = io.StringIO()
    display = PlainDisplay(stream)
    for done in range(101):
        display.examples_scored(done, 100)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{10 * k}/100" for k in range(1, 11)]


def test_live_display_on_a_terminal_leaves_one_line_per_run(tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    display = LiveDisplay(console)
    try:
        run_kind(LinregSpec, tmp_path / "r", progress=display, optimizer=WALKER, reps=2, steps=2)
        api.evaluate(
            BOOLEANS,
            ["Check."],
            split="train",
            max_examples=5,
            progress=display,
        )
    finally:
        display.close()
    text = buffer.getvalue()
    assert "[rep-0] finished (max_steps): step 2/2" in text
    assert "[rep-1] finished (max_steps): step 2/2" in text
    assert "step 1/2" in text  # the live line was drawn
    assert display._live is None  # stopped: no refresh thread left behind


@pytest.mark.parametrize("flag", ["-q", "--log-json"])
def test_display_flags_leave_stdout_alone(tmp_path: Path, flag: str) -> None:
    plain = run_cli(*LINREG, "--steps", "1", "--out", str(tmp_path / "a"), env=ENV)
    flagged = run_cli(flag, *LINREG, "--steps", "1", "--out", str(tmp_path / "b"), env=ENV)
    assert plain.returncode == flagged.returncode == 0
    drop = {"elapsed_s"}
    first, second = json.loads(plain.stdout), json.loads(flagged.stdout)
    assert {k: v for k, v in first.items() if k not in drop} == {
        k: v for k, v in second.items() if k not in drop
    }
