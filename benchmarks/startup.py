"""Benchmark: how long `opro` takes to start, as whole processes.

    .venv/bin/python benchmarks/startup.py [--repeats 5] [--baseline SRC_DIR]

Times, median of ``--repeats`` (interleaved, so a busy moment hits every row alike):
- ``python -c pass``: the interpreter alone, the floor no command can beat;
- ``opro --version`` (goal 0.15 s), ``opro optimize --help`` (goal 0.3 s);
- a one-question ``opro evaluate`` against a stub server answering at once (goal 1.0 s).
``--baseline DIR`` times the same commands with another checkout's ``src`` first on the
path (e.g. a ``git worktree`` of an older commit) and prints the ratio. The goals hold on
a quiet machine: read the ratios on a busy one. Exits non-zero when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opro.testing.stub_server import stub_process

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"opro --version": 0.15, "opro optimize --help": 0.3, "opro evaluate (1 question)": 1.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout's root, to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, stub_process(0.0) as (_, url):
        data = Path(tmp) / "one.jsonl"
        data.write_text(json.dumps({"question": "What is 2 + 3?", "answer": "5"}) + "\n")
        commands = {
            "python -c pass": ["-c", "pass"],
            "opro --version": ["-m", "opro.cli", "--version"],
            "opro optimize --help": ["-m", "opro.cli", "optimize", "--help"],
            "opro evaluate (1 question)": [
                "-m", "opro.cli", "evaluate", "--dataset", f"jsonl:{data}", "--split", "all",
                "--scorer", "openai:stub", "--scorer-base-url", url, "--instruction", "",
                "--json", "--no-cache",
            ],
        }  # fmt: skip
        trees = {"this": ROOT / "src"}
        if args.baseline is not None:
            trees["baseline"] = args.baseline.resolve() / "src"
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for tree, src in trees.items():
                for name, argv in commands.items():
                    seconds = _timed(lambda a=argv, s=src: _run(a, s, tmp))  # type: ignore[misc]
                    runs.setdefault((tree, name), []).append(seconds)
    print(f"median of {args.repeats} (s); goals on a quiet machine")
    head = f"{'command':<28} {'this':>7} {'goal':>6}"
    if args.baseline is not None:
        head += f" {'baseline':>9} {'ratio':>6}"
    print(head)
    ok = True
    for name in commands:
        this = statistics.median(runs["this", name])
        goal = GOALS.get(name)
        ok &= goal is None or this <= goal
        line = f"{name:<28} {this:>7.3f} {'' if goal is None else f'{goal:.2f}':>6}"
        if args.baseline is not None:
            base = statistics.median(runs["baseline", name])
            line += f" {base:>9.3f} {base / this:>5.1f}x"
        print(line)
    print("goals met" if ok else "a goal missed (see the rows above; is the machine quiet?)")
    return 0 if ok else 1


def _timed(job: Callable[[], None]) -> float:
    started = time.perf_counter()
    job()
    return time.perf_counter() - started


def _run(argv: list[str], src: Path, cwd: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(src)
    env["OPRO_CACHE_DIR"] = cwd
    done = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-500:]}")


if __name__ == "__main__":
    sys.exit(main())
