"""Benchmark: scaling out. A sweep of 16 runs with 1, 2, 4, 8 runs in flight (local processes,
then Ray), and one evaluation spread over 1, 2, 4 model servers, each against its ideal.

    .venv/bin/python benchmarks/scaling.py [--repeats 3] [--latency 0.5] [--steps 3]
        [--server-latency 0.25] [--server-concurrency 4] [--servers 1,2,4] [--pairs 240]
        [--overhead-pairs 600]
        [--only sweep|servers|overhead] [--executors local,ray]

Sweep: 16 ``linreg`` runs (``--steps`` steps of 4 samples each) whose optimizer is a stub
OpenAI-compatible server (in this process) answering every request after ``--latency``
seconds, so a run waits on its model, not on this machine's CPUs: a run is ``steps x
latency`` of waiting, and with N in flight the ideal sweep is ``ceil(16 / N)`` runs long.
Each is one ``opro sweep`` process (``--executor local --parallel N``; ``--executor ray
--task-cpus 2/N`` on a 2-CPU Ray cluster this script starts once). Reported, as the median
(and range) of ``--repeats`` sweeps, taken in turn: the sweep's own seconds (from the start
of its executor, process pool or Ray workers included, to its last run's end), when its
first run began, and the whole ``opro sweep`` process (start-up, 16 run reports and the
sweep's); ideal / sweep.

Servers: ``opro evaluate`` of ``--pairs`` (instruction, example) pairs over 1, 2, 4 stub
servers (separate processes), each serving ``--server-concurrency`` requests at once after
``--server-latency`` seconds (the others queue, as in vLLM). Ideal throughput: servers x
concurrency / latency. One server is the plain OpenAI backend; several are opro's pool
(``opro.llm.pool``).

Overhead: the same with servers that answer at once and without a cap, so the client's CPU
is the limit: requests per second, and CPU seconds of the ``opro evaluate`` process per
request (the difference between ``--overhead-pairs`` and 40 pairs, so start-up and imports
cancel out), through one server (the OpenAI client) and through the pool over 3.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from opro.llm.openai import RequestBody
from opro.testing.stub_server import StubServer, stub_process

RUNS, SAMPLES = 16, 4
SMALL = 40  # pairs of the overhead's baseline evaluation
Row = dict[str, Any]


def proposal(body: RequestBody) -> str:
    """A parsable linreg proposal, never the optimum (so no run stops early)."""
    rng = random.Random(f"{body.get('seed')}-{len(str(body.get('messages')))}")
    return f"[{rng.randint(20, 40)}, {rng.randint(20, 40)}]"


def opro(*args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run the CLI: its result, wall seconds and CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"opro {args[:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done, wall, cpu


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}–{max(values):.1f}"


def repeated(
    configs: list[tuple[Row, Callable[[], Row]]], repeats: int
) -> list[tuple[Row, list[Row]]]:
    """Each config measured ``repeats`` times, the configs in turn (so a slow spell of the
    machine is shared among them, not borne by one)."""
    samples: list[list[Row]] = [[] for _ in configs]
    for repeat in range(repeats):
        for (key, measure), taken in zip(configs, samples, strict=True):
            taken.append(measure())
            print(json.dumps({"repeat": repeat} | key | taken[-1]), file=sys.stderr, flush=True)
    return [(key, taken) for (key, _), taken in zip(configs, samples, strict=True)]


def sweep_once(url: str, steps: int, executor: list[str], work: Path) -> Row:
    """One sweep of 16 runs: its own seconds, when its first run started, the process's."""
    sweep = work / "sweep.toml"
    sweep.write_text(
        f'command = "linreg"\nseeds = [{", ".join(map(str, range(RUNS // 2)))}]\n[base]\n'
        f'optimizer = "openai:stub"\noptimizer-base-url = "{url}"\nreps = 1\nsteps = {steps}\n'
        f"samples-per-step = {SAMPLES}\nno-cache = true\n[axes]\nw-true = [15, 16]\n"
    )
    out = work / f"out-{time.monotonic_ns()}"
    done, process_s, _ = opro("--log-json", "sweep", str(sweep), "--out", str(out), *executor)
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    sweep_events = [e for e in events if e.get("event") == "sweep"]
    last = sweep_events[-1]
    assert last["done"] == RUNS, last
    assert last["failed"] == last["stopped"] == 0, last
    first = next(e for e in sweep_events if e["change"] == "started")
    return {"sweep_s": float(last["elapsed_s"]), "first_run_s": float(first["elapsed_s"]),
            "process_s": process_s}  # fmt: skip


def bench_sweep(args: argparse.Namespace, work: Path) -> list[Row]:
    run_s = args.steps * args.latency  # what one run waits on its model
    in_flight = (1, 2, 4, 8)
    with StubServer(latency_s=args.latency, reply=proposal) as server:
        executors: list[tuple[str, int, list[str]]] = [
            ("local", n, ["--parallel", str(n)]) for n in in_flight if "local" in args.executors
        ]
        with ray_cluster("ray" in args.executors) as address:
            if address is not None:
                executors += [
                    ("ray", n, ["--executor", "ray", "--address", address,
                                "--task-cpus", str(2 / n)])
                    for n in in_flight
                ]  # fmt: skip
            configs: list[tuple[Row, Callable[[], Row]]] = [
                ({"executor": name, "in_flight": n},
                 partial(sweep_once, server.url, args.steps, flags, work))
                for name, n, flags in executors
            ]  # fmt: skip
            measured = repeated(configs, args.repeats)
    rows = []
    for key, samples in measured:
        ideal = math.ceil(RUNS / key["in_flight"]) * run_s
        sweep = statistics.median(s["sweep_s"] for s in samples)
        rows.append(
            {**key, "ideal_s": round(ideal, 1), "sweep_s": round(sweep, 1),
             "range_s": spread([s["sweep_s"] for s in samples]),
             "ideal/sweep": round(ideal / sweep, 2),
             "first_run_at_s": round(statistics.median(s["first_run_s"] for s in samples), 1),
             "process_s": round(statistics.median(s["process_s"] for s in samples), 1)}
        )  # fmt: skip
    return rows


@contextmanager
def ray_cluster(wanted: bool) -> Iterator[str | None]:
    """A 2-CPU Ray cluster on this machine for the sweeps to join (None without Ray)."""
    if not wanted:
        yield None
        return
    try:
        import ray
    except ImportError:
        print("ray is not installed: the Ray rows are left out", file=sys.stderr)
        yield None
        return
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(context.address_info["gcs_address"])  # type: ignore[attr-defined]
    finally:
        ray.shutdown()


@contextmanager
def stub_processes(n: int, latency: float, concurrency: int | None) -> Iterator[list[str]]:
    """``n`` stub servers, each its own process (as replicas on other machines would be)."""
    with ExitStack() as stack:
        yield [stack.enter_context(stub_process(latency, concurrency))[1] for _ in range(n)]


def evaluate_once(urls: list[str], pairs: int, work: Path, concurrency: int) -> Row:
    """``opro evaluate`` of ``pairs`` pairs (2 instructions): its own seconds, and the CPU
    seconds of its whole process."""
    data = work / f"rows-{pairs}.jsonl"
    rows = [{"question": f"Item {i}: True and False is", "answer": "False"}
            for i in range(pairs // 2)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flags = [f for url in urls for f in ("--scorer-base-url", url)]
    done, _, cpu = opro(
        "-q", "evaluate", "--dataset", f"jsonl:{data}", "--split", "all", "--scorer",
        "openai:stub", *flags, "--scorer-api", "completion", "--concurrency", str(concurrency),
        "--instruction", "Answer.", "--instruction", "Think, then answer.", "--json", "--no-cache",
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert sum(r["n"] for r in report["instructions"]) == pairs, report
    assert report["usage"]["failures"] == 0, report["usage"]
    return {"seconds": float(report["elapsed_s"]), "cpu_s": cpu}


def bench_servers(args: argparse.Namespace, work: Path) -> list[Row]:
    counts = [int(n) for n in args.servers.split(",")]
    with stub_processes(max(counts), args.server_latency, args.server_concurrency) as urls:
        configs: list[tuple[Row, Callable[[], Row]]] = [
            ({"servers": n}, partial(evaluate_once, urls[:n], args.pairs, work,
                                     2 * n * args.server_concurrency))  # every one busy
            for n in counts
        ]  # fmt: skip
        measured = repeated(configs, args.repeats)
    rows = []
    for key, samples in measured:
        ideal = key["servers"] * args.server_concurrency / args.server_latency
        seconds = statistics.median(s["seconds"] for s in samples)
        rows.append(
            {**key, "ideal_rps": round(ideal, 1), "rps": round(args.pairs / seconds, 1),
             "range_rps": spread([args.pairs / s["seconds"] for s in samples]),
             "rps/ideal": round(args.pairs / seconds / ideal, 2)}
        )  # fmt: skip
    return rows


def bench_overhead(args: argparse.Namespace, work: Path) -> list[Row]:
    with stub_processes(3, 0.0, None) as urls:
        paths = {"OpenAI client, 1 server": urls[:1], "opro pool, 3 servers": urls}

        def measure(urls: list[str]) -> Row:
            small = evaluate_once(urls, SMALL, work, 32)
            big = evaluate_once(urls, args.overhead_pairs, work, 32)
            cpu_s = big["cpu_s"] - small["cpu_s"]
            return {
                "rps": args.overhead_pairs / big["seconds"],
                "cpu_ms": 1000 * cpu_s / (args.overhead_pairs - SMALL),
            }

        configs: list[tuple[Row, Callable[[], Row]]] = [
            ({"path": how}, partial(measure, u)) for how, u in paths.items()
        ]
        measured = repeated(configs, args.repeats)
    return [
        {**key, "rps": round(statistics.median(s["rps"] for s in samples), 1),
         "cpu_ms_per_request": round(statistics.median(s["cpu_ms"] for s in samples), 2),
         "range_ms": f"{min(s['cpu_ms'] for s in samples):.2f}–"
                     f"{max(s['cpu_ms'] for s in samples):.2f}"}
        for key, samples in measured
    ]  # fmt: skip


def table(rows: list[Row]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--server-latency", type=float, default=0.25)
    parser.add_argument("--server-concurrency", type=int, default=4)
    parser.add_argument("--servers", default="1,2,4", help="server counts, e.g. 1,2,4")
    parser.add_argument("--pairs", type=int, default=240)
    parser.add_argument("--overhead-pairs", type=int, default=600)
    parser.add_argument("--only", choices=["sweep", "servers", "overhead"])
    parser.add_argument("--executors", default="local,ray", help="of the sweep: local,ray")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the start; "
          f"{args.repeats} repeats, medians", flush=True)  # fmt: skip
    benches = {"sweep": bench_sweep, "servers": bench_servers, "overhead": bench_overhead}
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in benches.items():
            if args.only in (None, name):
                print(f"\n{name}:\n\n{table(bench(args, Path(tmp)))}\n", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
