"""Scoring throughput of the embedded model: batched ``LocalBackend`` vs a naive loop.

    .venv/bin/python benchmarks/embedded_scoring.py [--examples 50] [--repeats 4] [--batch B]
        [--sweep 1,4,8,16,24] [--threads 2] [--data-dir ../shared/data] [--show-diffs]

Workload: what the scorer sends for one instruction on bbh:boolean_expressions. The
training fold is the 50 examples at ``sorted(RandomState(0).choice(250, 50))`` of
BIG-Bench-Hard-data/boolean_expressions.json (``--examples N`` takes the first N), each
asked as ``Q: {instruction}\\n{input}\\n\\nA:`` with the instruction "Let's think step by
step.", greedy, ``max_tokens`` 64, stop ``["\\nQ:", "\\n\\n"]``.

(a) naive: a fresh ``llama_cpp.Llama(model, n_ctx=2048, n_threads=2)`` called once per
    prompt in a loop, each call from a cleared KV cache (``reset()``; only the loop is
    timed, not the load);
(b) ours: ``LocalBackend("gemma3-270m")`` (``max_batch`` ``--batch``, default
    ``default_batch(2048)``) with every request submitted at once through ``asyncio.gather``
    (timed after warm-up requests have loaded the model and sized its batch engine).

Each measurement runs in a fresh process; repeats alternate which side goes first. Each
repeat prints examples/s of both, their ratio and how many of the 50 texts are identical.
``--sweep`` then runs (b) once per batch size (1 = one request at a time through
llama-cpp-python). Exits 1 when the median ratio is under 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from opro.llm.base import BackendOptions
from opro.llm.local import LocalBackend, default_batch, model_path
from opro.types import Request

INSTRUCTION = "Let's think step by step."
STOP = ["\nQ:", "\n\n"]
MAX_TOKENS = 64
N_CTX = 2048
TARGET = 1.5
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def prompts(data_dir: Path, n: int) -> list[str]:
    path = data_dir / "BIG-Bench-Hard-data" / "boolean_expressions.json"
    examples = json.loads(path.read_text())["examples"]
    fold = sorted(np.random.RandomState(0).choice(250, 50, replace=False))
    if not 1 <= n <= len(fold):
        raise SystemExit(f"--examples must be within 1..{len(fold)}")
    return [f"Q: {INSTRUCTION}\n{examples[int(i)]['input']}\n\nA:" for i in fold[:n]]


def run_naive(texts: list[str], threads: int) -> tuple[float, list[str]]:
    from llama_cpp import Llama

    from opro.llm.llama_logs import route_llama_logs

    route_llama_logs()
    llm = Llama(str(model_path("gemma3-270m")), n_ctx=N_CTX, n_threads=threads, verbose=False)
    started = time.perf_counter()
    outs = []
    for p in texts:
        llm.reset()
        outs.append(llm(p, max_tokens=MAX_TOKENS, temperature=0, stop=STOP)["choices"][0]["text"])
    wall = time.perf_counter() - started
    llm.close()
    return wall, outs


def run_ours(texts: list[str], threads: int, batch: int) -> tuple[float, list[str]]:
    backend = LocalBackend(
        "gemma3-270m", BackendOptions(n_ctx=N_CTX, n_threads=threads), max_batch=batch
    )
    requests = [Request(p, max_tokens=MAX_TOKENS, stop=tuple(STOP)) for p in texts]

    async def go() -> tuple[float, list[str]]:
        # Warm-up, not timed (as the naive model's load is not): load the model and size
        # the batch engine (its KV cache grows with the demand) with tiny requests.
        warm_up = Request("Q: 1 + 1\nA:", max_tokens=2)
        await asyncio.gather(*(backend.complete(warm_up) for _ in range(backend.max_batch)))
        started = time.perf_counter()
        outs = await asyncio.gather(*(backend.complete(r) for r in requests))
        wall = time.perf_counter() - started
        await backend.aclose()
        return wall, [o.text for o in outs]

    return asyncio.run(go())


def isolated(fn: Callable[..., tuple[float, list[str]]], *args: Any) -> tuple[float, list[str]]:
    """``fn(*args)`` in a fresh process: llama.cpp's OpenMP threads from one measurement
    must not slow down the next one."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="LocalBackend max_batch")
    parser.add_argument("--sweep", default="", help="batch sizes to try once, e.g. 1,4,8,16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show-diffs", action="store_true", help="print differing texts")
    args = parser.parse_args()
    texts = prompts(args.data_dir, args.examples)
    n = len(texts)
    batch = args.batch or default_batch(N_CTX)

    print(f"{n} prompts, greedy, max_tokens {MAX_TOKENS}, {args.threads} threads, batch {batch}")
    print(f"{'repeat':>6} {'naive ex/s':>10} {'ours ex/s':>10} {'ratio':>6} {'same text':>10}")
    ratios = []
    naive_outs: list[str] = []
    ours_outs: list[str] = []
    for repeat in range(1, args.repeats + 1):
        # Alternate which goes first (ABBA), so that a drift in the machine's speed
        # (other load, CPU clocks) does not favour one side.
        if repeat % 2:
            naive_wall, naive_outs = isolated(run_naive, texts, args.threads)
            ours_wall, ours_outs = isolated(run_ours, texts, args.threads, batch)
        else:
            ours_wall, ours_outs = isolated(run_ours, texts, args.threads, batch)
            naive_wall, naive_outs = isolated(run_naive, texts, args.threads)
        ratio = naive_wall / ours_wall
        ratios.append(ratio)
        same = sum(a == b for a, b in zip(naive_outs, ours_outs, strict=True))
        print(
            f"{repeat:>6} {n / naive_wall:>10.2f} {n / ours_wall:>10.2f} {ratio:>6.2f} "
            f"{same:>5}/{n:<4}",
            flush=True,
        )
    if args.show_diffs:
        for i, (a, b) in enumerate(zip(naive_outs, ours_outs, strict=True)):
            if a != b:
                print(f"  #{i} naive: {a!r}\n  #{i} ours:  {b!r}")

    sweep = [int(b) for b in args.sweep.split(",") if b.strip()]
    if sweep:
        ref = f"same as batch {batch}"
        print(f"\n{'batch':>6} {'ex/s':>8} {'same as naive':>14} {ref:>16}")
        for b in sweep:
            wall, outs = isolated(run_ours, texts, args.threads, b)
            same_naive = sum(x == y for x, y in zip(outs, naive_outs, strict=True))
            same_ours = sum(x == y for x, y in zip(outs, ours_outs, strict=True))
            print(f"{b:>6} {n / wall:>8.2f} {same_naive:>9}/{n:<4} {same_ours:>11}/{n:<4}")

    median = statistics.median(ratios)
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"\nratios: {listed}; median {median:.2f} (target >= {TARGET})")
    if median < TARGET:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
