"""Benchmark: `opro evaluate` of one instruction over the 261 GSM8K training examples
against a latency-bound local OpenAI-compatible server.

    .venv/bin/python benchmarks/evaluate_latency.py [--latency 0.5] [--concurrency 32] [--repeats 3]

The stub server (``opro.testing.stub_server``, a separate process) answers each request
after ``latency`` seconds. Ideal = ceil(261 / concurrency) * latency (4.5 s at the defaults).
Reported: the command's own ``elapsed_s`` against 1.15 x ideal, and the whole process
(start-up, data loading, the calls, output) against ideal + 1.5 s. The authors' sequential
loop would take 261 * latency (130.5 s). Exits non-zero when a target is missed.
Needs the benchmark files: --data-dir, else $OPRO_DATA_DIR, else ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opro.testing.stub_server import stub_process

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("OPRO_DATA_DIR") or str(ROOT.parent / "shared" / "data"),
    )
    args = parser.parse_args()
    n = 261
    ideal = math.ceil(n / args.concurrency) * args.latency
    rows = []
    with stub_process(args.latency) as (_, url):
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                command = [
                    sys.executable, "-m", "opro.cli", "evaluate", "--dataset", "gsm8k",
                    "--split", "train", "--data-dir", args.data_dir, "--scorer", "openai:stub",
                    "--scorer-base-url", url, "--concurrency", str(args.concurrency),
                    "--instruction", "Let's think step by step.", "--json",
                    "--cache", str(Path(cache) / "calls.sqlite"),
                ]  # fmt: skip
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                process_s = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            report = json.loads(done.stdout)
            assert report["instructions"][0]["n"] == n, report["instructions"]
            rows.append((repeat, report["elapsed_s"], process_s))
            print(
                json.dumps(
                    {
                        "repeat": repeat,
                        "elapsed_s": report["elapsed_s"],
                        "process_s": round(process_s, 3),
                        "calls": report["usage"]["calls"],
                    }
                )
            )
    print(
        f"\nideal {ideal:.2f} s (ceil({n}/{args.concurrency}) x {args.latency} s); "
        f"sequential (authors' loop) {n * args.latency:.1f} s"
    )
    print(f"{'repeat':>6} {'elapsed_s':>10} {'/ideal':>7} {'process_s':>10} {'- ideal':>8}")
    ok = True
    for repeat, elapsed, process in rows:
        ok &= elapsed <= 1.15 * ideal and process <= ideal + 1.5
        print(
            f"{repeat:>6} {elapsed:>10.2f} {elapsed / ideal:>7.3f} {process:>10.2f} "
            f"{process - ideal:>8.2f}"
        )
    print("targets: elapsed/ideal <= 1.15, process - ideal <= 1.5 s:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
