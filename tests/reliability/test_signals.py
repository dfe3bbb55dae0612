"""Signals and first failures leave an honest state and say what to do (issue #17, item 4).

Reproduced before: SIGINT and SIGTERM left summary.json "running" without naming ``opro
resume`` (SIGTERM killed the process outright); SIGTERM during ``opro data fetch`` left a
``.part`` file; a first call failing for good said "the run's state is saved: resume it
later" although no run dir was kept.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opro.testing.stub_server import StubServer
from tests.conftest import PYTHONPATH, SHARED_DATA, Ran, assert_one_line_error, ctrl_c_default
from tests.doubles import steps_of, summary_of


def spawn(*args: str, sigint: Callable[[], None] | None = ctrl_c_default) -> subprocess.Popen[str]:
    """``opro ARGS`` as from a terminal (see ``ctrl_c_default``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "opro.cli", "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=PYTHONPATH),
        preexec_fn=sigint,
    )


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_marks_the_run_interrupted_and_names_the_resume(
    tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "run"
    args = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1", "--no-cache"]
    proc = spawn("linreg", *args, "--steps", "400", "--no-report", "--out", str(out))
    steps = out / "steps.jsonl"
    wait_for(lambda: steps.exists() and steps.read_text().count("\n") >= 2, proc)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5  # answered at once, not at the end of a step
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"opro: interrupted: {out} is saved; continue it with `opro resume {out}`"
    ]
    summary = summary_of(out)
    assert (summary["status"], summary["stop_reason"]) == ("stopped", "interrupted")
    done = len(steps_of(out))
    assert summary["steps_completed"] == done - 1

    # Two more steps of 8 calls past what was spent: the signal may land between steps or
    # mid-step (a partial step's calls are spent and counted but its step is not written).
    cap = summary["calls"] + 16
    resumed = spawn("resume", str(out), "--trust-code", "--max-calls", str(cap), "--no-report")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert [s["step"] for s in steps_of(out)] == list(range(done + 2))


def test_sigterm_ends_a_run_started_with_ctrl_c_ignored(tmp_path: Path) -> None:
    """`opro ... &` in a script ignores SIGINT; `kill` must still end it (and the run dir
    then resumes), not turn into an ignored SIGINT that leaves it running."""
    out = tmp_path / "run"
    args = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1", "--no-cache"]
    ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    proc = spawn("linreg", *args, "--steps", "400", "--no-report", "--out", str(out), sigint=ignore)
    steps = out / "steps.jsonl"
    wait_for(lambda: steps.exists() and steps.read_text().count("\n") >= 2, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    resumed = spawn("resume", str(out), "--trust-code", "--max-calls", "8", "--no-report")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Announces a large file, sends a little of it, then waits: a download in progress."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        try:
            self.wfile.write(b"x" * 65536)
            self.wfile.flush()
            time.sleep(30)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_data_fetch_leaves_no_part_file(
    tmp_path: Path, trickle: str, signum: int
) -> None:
    data = tmp_path / "data"
    proc = spawn("data", "fetch", "--only", "aqua", "--source", trickle, "--data-dir", str(data))
    wait_for(lambda: any(data.rglob("*.part")), proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["opro: interrupted"]
    assert not [p for p in data.rglob("*") if p.is_file()]


def test_a_first_call_failing_for_good_says_nothing_was_kept(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-first-call")
    out = tmp_path / "run"
    with StubServer(plan=lambda i: "500") as server:
        result = opro("optimize", "--dataset", "bbh:boolean_expressions", "--data-dir",
                      str(SHARED_DATA), "--scorer", "openai:stub", "--scorer-base-url",
                      server.url, "--scorer-max-retries", "0", "--optimizer",
                      "fake:tests.doubles:instruction_proposer", "--steps", "1",
                      "--out", str(out))  # fmt: skip
    assert_one_line_error(result, "HTTP 500", "--scorer-max-retries", "nothing was kept")
    assert "state is saved" not in result.stderr
    assert "opro resume" not in result.stderr
    assert not out.exists()
