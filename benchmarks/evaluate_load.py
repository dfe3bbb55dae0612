"""Benchmark: `opro evaluate` under load — 2,000 calls at concurrency 256 against a server
that answers each after 0.5 s.

    .venv/bin/python benchmarks/evaluate_load.py [--calls 2000] [--concurrency 256]
        [--latency 0.5] [--repeats 3] [--profile FILE]

The server is the stub (``opro.testing.stub_server``) in a process of its own, so that the
client's time is the client's. The dataset is a generated JSONL file of ``calls`` distinct
questions, scored with one instruction (``--split all``), each run with a fresh cache.
Ideal = ceil(calls / concurrency) x latency (4 s at the defaults); target: the command's
own ``elapsed_s`` within 1.3 x ideal (the median over the repeats). Reported per repeat:
``elapsed_s``, its ratio to the ideal, the CPU seconds of the client process (start-up
included) and per call (start-up excluded: measured once, with a one-example run), of the
server per call, and ``others_cores``: the cores that other processes kept busy meanwhile
(from /proc/stat), since a shared machine slows the client down. ``--profile FILE`` runs
one more evaluation in this process under cProfile and writes the stats to FILE (the top
entries by own time are printed). Exits non-zero when the target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opro.testing.stub_server import stub_process

TARGET = 1.3


def dataset(folder: Path, n: int) -> Path:
    path = folder / "load.jsonl"
    with path.open("w") as f:
        for i in range(n):
            question = f"What is {i} plus {i % 97}? Answer with the number only."
            f.write(json.dumps({"question": question, "answer": str(i + i % 97)}) + "\n")
    return path


def command(data: Path, url: str, concurrency: int, cache: Path) -> list[str]:
    return ["evaluate", "--dataset", f"jsonl:{data}", "--split", "all", "--scorer",
            "openai:stub", "--scorer-base-url", url, "--scorer-max-retries", "0",
            "--concurrency", str(concurrency), "--instruction", "Let's think step by step.",
            "--json", "-q", "--cache", str(cache)]  # fmt: skip


def cpu(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu() -> float:
    """CPU seconds the whole machine spent busy since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_client(argv: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run `opro` with ``argv``; its JSON report and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "opro.cli", *argv],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"opro {' '.join(argv[:1])} failed (exit {done.returncode}): {done.stderr}")
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout), client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=Path, metavar="FILE")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    env["OPENAI_API_KEY"] = "sk-benchmark"
    ideal = math.ceil(args.calls / args.concurrency) * args.latency
    rows: list[dict[str, float]] = []
    with stub_process(args.latency) as (server, url), tempfile.TemporaryDirectory() as tmp:
        data = dataset(Path(tmp), args.calls)
        one = command(data, url, args.concurrency, Path(tmp) / "calls-one.sqlite")
        _, startup = run_client([*one, "--max-examples", "1"], env)
        for repeat in range(args.repeats):
            cache = Path(tmp) / f"calls-{repeat}.sqlite"
            served, machine = cpu(server.pid), busy_cpu()
            started = time.perf_counter()
            report, client = run_client(command(data, url, args.concurrency, cache), env)
            wall = time.perf_counter() - started
            served = cpu(server.pid) - served
            others = busy_cpu() - machine - client - served
            assert report["instructions"][0]["n"] == args.calls, report["instructions"]
            assert report["usage"]["calls"] == args.calls, report["usage"]
            elapsed = float(report["elapsed_s"])
            row = {
                "repeat": repeat,
                "elapsed_s": elapsed,
                "ideal_s": ideal,
                "ratio": round(elapsed / ideal, 3),
                "client_cpu_s": round(client, 2),
                "client_cpu_ms_per_call": round(1000 * (client - startup) / args.calls, 2),
                "server_cpu_ms_per_call": round(1000 * served / args.calls, 2),
                "others_cores": round(max(0.0, others) / wall, 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.profile is not None:
            profile(data, url, args, Path(tmp) / "calls-profile.sqlite", env)

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    ratio = median("ratio")
    print(
        f"{args.calls} calls at concurrency {args.concurrency}, {args.latency} s latency, "
        f"{args.repeats} repeats: median {median('elapsed_s'):.2f} s = {ratio:.2f} x ideal "
        f"({min(r['ratio'] for r in rows):.2f}-{max(r['ratio'] for r in rows):.2f}; "
        f"target <= {TARGET}); client CPU {median('client_cpu_ms_per_call'):.2f} ms a call "
        f"(+ {startup:.2f} s start-up); other processes kept {median('others_cores'):.2f} of "
        f"{os.cpu_count()} cores busy"
    )
    return 0 if ratio <= TARGET else 1


def profile(
    data: Path, url: str, args: argparse.Namespace, cache: Path, env: dict[str, str]
) -> None:
    """One more evaluation in this process under cProfile; the stats to ``args.profile``."""
    from opro.cli import main as opro

    os.environ.update(env)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            profiler.runcall(opro, command(data, url, args.concurrency, cache))
        finally:
            sys.stdout = stdout
    print(f"profiled run: {time.perf_counter() - started:.2f} s", flush=True)
    profiler.dump_stats(args.profile)
    text = io.StringIO()
    pstats.Stats(str(args.profile), stream=text).sort_stats("tottime").print_stats(25)
    print(text.getvalue())


if __name__ == "__main__":
    sys.exit(main())
