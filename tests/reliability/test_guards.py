"""Size and time guards (issue #17, item 5).

Reproduced before: a 10,000-point TSP instance took over 10 minutes and 8-10 GB in ``tsp
baselines`` and ``tsp``, and SIGINT had no visible effect for minutes (inside the solver);
``--dataset jsonl:/dev/zero`` ate 12 GB in 15 s. Now an instance over ``--max-nodes`` (1000
by default) and a dataset file over ``$OPRO_MAX_DATASET_MB`` (64 by default) are refused up
front naming the limit, files are read with a cap, the exact solve has a time limit (also in
``tsp baselines``: ``--time-limit``) and answers Ctrl-C / SIGTERM at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PYTHONPATH, Ran, assert_one_line_error, ctrl_c_default

SHUFFLER = ["--optimizer", "fake:tests.doubles:tsp_shuffler"]


def instance(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "big.json"
    points = [[i % 201 - 100, i // 201 - 100] for i in range(n)]  # distinct grid points
    path.write_text(json.dumps({"points": points}))
    return path


@pytest.mark.parametrize("command", [["tsp"], ["tsp", "baselines"]])
def test_a_huge_tsp_instance_is_refused_at_once_naming_the_limit(
    opro: Callable[..., Ran], tmp_path: Path, command: list[str]
) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    result = opro(*command, *SHUFFLER, "--instance", str(instance(tmp_path, 10_000)),
                  "--out", str(out))  # fmt: skip
    assert time.monotonic() - started < 10
    assert_one_line_error(result, "10000 points", "limit of 1000", "--max-nodes N")
    random = opro(*command, *SHUFFLER, "--nodes", "10000", "--out", str(out))
    assert_one_line_error(random, "--nodes 10000 has 10000 points", "--max-nodes N")
    grid = opro(*command, *SHUFFLER, "--nodes", "50000", "--max-nodes", "60000")
    assert_one_line_error(grid, "the 40401 integer points")
    assert not out.exists()


def test_the_limit_is_raised_with_max_nodes(opro: Callable[..., Ran], tmp_path: Path) -> None:
    path = instance(tmp_path, 60)
    base = ["tsp", "baselines", "--instance", str(path), "--time-limit", "1", "--json"]
    refused = opro(*base, "--max-nodes", "50")
    assert_one_line_error(refused, "60 points", "limit of 50", "--max-nodes")
    result = opro(*base, "--max-nodes", "60")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 60


def test_baselines_keep_to_their_time_limit(opro: Callable[..., Ran]) -> None:
    started = time.monotonic()
    result = opro("tsp", "baselines", "--nodes", "250", "--time-limit", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 2 + 15  # the limit, plus the heuristics and a slow CI
    data = json.loads(result.stdout)
    assert data["solve_seconds"] < 2 + 10
    assert data["optimal_length"] <= data["farthest_insertion_length"] + 1e-9


@pytest.mark.parametrize("path", ["/dev/zero", "big"])
def test_an_endless_or_huge_instance_file_is_refused_at_once(
    opro: Callable[..., Ran], tmp_path: Path, path: str
) -> None:
    if path == "big":
        path = str(tmp_path / "big.json")
        Path(path).write_bytes(b" " * (2 << 20) + b"{}")
    started = time.monotonic()
    result = opro("tsp", "baselines", "--instance", path)
    assert time.monotonic() - started < 10
    assert_one_line_error(result, f"TSP instance {path} is over", "--max-nodes")


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_an_endless_dataset_file_is_refused_at_once(opro: Callable[..., Ran], kind: str) -> None:
    started = time.monotonic()
    result = opro("evaluate", "--dataset", f"{kind}:/dev/zero", "--scorer", "fake:echo",
                  "--instruction", "x")  # fmt: skip
    assert time.monotonic() - started < 10
    assert_one_line_error(result, "/dev/zero is over the 64 MB limit", "OPRO_MAX_DATASET_MB=N")


def test_the_dataset_limit_is_a_setting(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "1 + 1", "answer": "2"}\n' * 200)  # 7.6 kB
    args = ["-q", "evaluate", "--dataset", f"jsonl:{data}", "--scorer", "fake:echo",
            "--instruction", "x", "--no-cache"]  # fmt: skip
    monkeypatch.setenv("OPRO_MAX_DATASET_MB", "0.005")
    assert_one_line_error(opro(*args), "over the 0.005 MB limit", "OPRO_MAX_DATASET_MB")
    monkeypatch.setenv("OPRO_MAX_DATASET_MB", "lots")
    assert_one_line_error(opro(*args), "OPRO_MAX_DATASET_MB='lots' is not a size in MB")
    monkeypatch.setenv("OPRO_MAX_DATASET_MB", "0.01")
    assert opro(*args).returncode == 0


def _wait_for_the_solver(proc: subprocess.Popen[str]) -> None:
    """Until the child has loaded HiGHS (it loads when a solve starts: opro imports it then),
    and a moment more for the model to be built; a 300-point instance is not proven in
    minutes, so the signal lands in the solve."""
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 120
    while "highs" not in maps.read_text():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the solver never started"
        time.sleep(0.05)
    time.sleep(1.5)


@pytest.mark.parametrize(
    ("command", "signum"),
    [
        (["tsp", "baselines", "--nodes", "300", "--time-limit", "300"], signal.SIGINT),
        (["tsp", "baselines", "--nodes", "300", "--time-limit", "300"], signal.SIGTERM),
        (["tsp", "--nodes", "300", *SHUFFLER, "--reps", "1"], signal.SIGINT),
    ],
    ids=["baselines-SIGINT", "baselines-SIGTERM", "run-SIGINT"],
)
def test_a_signal_stops_the_exact_solver_at_once(
    tmp_path: Path, command: list[str], signum: int
) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opro.cli", "-q", *command, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=PYTHONPATH), preexec_fn=ctrl_c_default,
    )  # fmt: skip
    _wait_for_the_solver(proc)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    # Unanswered, the solve would run on for minutes (--time-limit 300); 20 s, not "a second
    # or two", leaves room for a loaded 2-core CI machine (this is no speed test).
    assert time.monotonic() - sent < 20, err
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["opro: interrupted"]
    assert not out.exists()
