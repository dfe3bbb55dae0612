"""Kill anywhere, lose nothing: `opro optimize` on the embedded model, SIGKILLed at 5 random
moments (after a seeded random number of LLM calls has landed in the call cache — mid-step,
mid-scoring, mid-evaluation) and resumed each time, ends with exactly the history of an
uninterrupted run with the same seed: no step missing or doubled, no example scored twice.

The kill moments come from a seed printed at the start: replay a failure with
``OPRO_KILL_SEED=<seed> pytest tests/reliability/test_kill_optimize.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHONPATH, SHARED_DATA
from tests.doubles import steps_of, summary_of

pytestmark = pytest.mark.slow

ARGS = [
    "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
    "--steps", "2", "--candidates-per-step", "3", "--max-train", "4", "--max-test", "4",
    "--scorer-max-tokens", "6", "--constrained", "--max-tokens", "40", "--test-top", "2",
    "--seed", "7",
]  # fmt: skip


def cached_calls(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.Error:
        return 0


def run_until_kill(command: list[str], env: dict[str, str], cache: Path, after: int) -> int:
    """Start ``command``; SIGKILL it once the cache holds ``after`` calls. Its exit status."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if cached_calls(cache) >= after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(30)
    assert proc.stderr is not None
    proc.stderr.close()
    return proc.returncode


def history(run: Path) -> list[dict[str, Any]]:
    return [
        {"step": s["step"], "outputs": s["outputs"], "candidates": s["candidates"]}
        for s in steps_of(run)
    ]


def final(run: Path) -> dict[str, Any]:
    summary = summary_of(run)
    rows = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in summary["test_evaluation"]]
    keep = ("status", "steps_completed", "best_instruction", "best_train_score", "best_test_score")
    return {k: summary[k] for k in keep} | {"test_evaluation": rows}


def test_sigkill_at_five_random_moments_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("OPRO_KILL_SEED") or random.randrange(10**6))
    print(f"kill-moment seed: {seed} (replay with OPRO_KILL_SEED={seed})")
    base_env = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}
    base_env["PYTHONPATH"] = PYTHONPATH

    ref_env = base_env | {"OPRO_CACHE_DIR": str(tmp_path / "ref-cache")}
    cli = [sys.executable, "-m", "opro.cli"]
    reference = subprocess.run(
        [*cli, *ARGS, "--out", str(tmp_path / "ref")],
        env=ref_env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr
    total = cached_calls(tmp_path / "ref-cache" / "calls.sqlite")
    assert total >= 25, total

    rng = random.Random(seed)
    kill_after = sorted(rng.sample(range(2, total - 2), 5))
    print(f"kills after {kill_after} of {total} calls")
    env = base_env | {"OPRO_CACHE_DIR": str(tmp_path / "cache")}
    cache = tmp_path / "cache" / "calls.sqlite"
    out = tmp_path / "killed"
    start, resume = [*cli, *ARGS, "--out", str(out)], [*cli, "resume", str(out)]
    statuses = []
    for after in kill_after:
        # A kill before config.json exists leaves no run: the user reruns the command.
        command = resume if (out / "config.json").exists() else start
        statuses.append(run_until_kill(command, env, cache, after))
    assert statuses == [-signal.SIGKILL] * 5, f"seed {seed}: {statuses}"

    done = subprocess.run(
        [*cli, "resume", str(out)], env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"seed {seed}: {done.stderr}"
    steps = [s["step"] for s in history(out)]
    assert steps == [0, 1, 2], f"seed {seed}: steps {steps}"
    assert history(out) == history(tmp_path / "ref"), f"seed {seed}"
    assert final(out) == final(tmp_path / "ref"), f"seed {seed}"
    # The same calls as the reference, each cached once: nothing scored under two answers.
    assert cached_calls(cache) == total, f"seed {seed}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
