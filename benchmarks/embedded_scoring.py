"""Scoring throughput of the embedded model: batched ``LocalBackend`` vs a naive loop.

    .venv/bin/python benchmarks/embedded_scoring.py [--workload instruction|step]
        [--examples N] [--repeats 4] [--batch B] [--sweep 1,4,8,16,24] [--threads 2]
        [--data-dir ../shared/data] [--show-diffs]

Workloads (greedy, ``max_tokens`` 64, stop ``["\\nQ:", "\\n\\n"]``):

* ``instruction``: what the scorer sends for one instruction on bbh:boolean_expressions.
  The training fold is the 50 examples at ``sorted(RandomState(0).choice(250, 50))`` of
  BIG-Bench-Hard-data/boolean_expressions.json (``--examples N`` takes the first N), each
  asked as ``Q: {instruction}\\n{input}\\n\\nA:`` (Q_begin) with "Let's think step by step.".
* ``step``: what the scorer sends for one step of 8 proposals on bbh:date_understanding at
  A_begin (``Q: {input}\\n\\nA: {instruction}``), the first ``--examples`` (default 12) of
  the same fold, question by question as the scorer sends them: the 8 prompts of a question
  begin alike (its 100-200 tokens), which the engine reads once (``opro.llm.prefix``).

Sides, each measurement in a fresh process:
(a) naive: a fresh ``llama_cpp.Llama(model, n_ctx=2048, n_threads=2)`` called once per
    prompt in a loop, each call from a cleared KV cache (``reset()``; only the loop is
    timed, not the load);
(b) ours: ``LocalBackend("gemma3-270m")`` (``max_batch`` ``--batch``, default
    ``default_batch(2048)``) with every request submitted at once through ``asyncio.gather``
    (timed after warm-up requests have loaded the model and sized its batch engine);
(c) ours without shared starts (every prompt read whole): what (b) owes to them.

Repeats alternate the sides' order (a b c, then c b a). Each repeat prints examples/s of
each, the ratios to the naive loop and how many texts equal the naive loop's (and (b)'s
equal (c)'s). ``--sweep`` then runs (b) once per batch size (1 = one request at a time
through llama-cpp-python). Exits 1 when the median ratio of (b) is under the workload's
target: 1.5 for ``instruction``, 2 for ``step``.
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

from opro.llm import prefix
from opro.llm.base import BackendOptions
from opro.llm.local import LocalBackend, default_batch, model_path
from opro.types import Request

INSTRUCTION = "Let's think step by step."
STEP_INSTRUCTIONS = (
    "",
    "Let's think step by step.",
    "Take a deep breath and work on this problem step-by-step.",
    "Let's solve the problem.",
    "First, find the date in the question. Then count the days forward or backward.",
    "Read the question carefully and pick the option that matches.",
    "The answer is",
    "Let's work this out in a step by step way to be sure we have the right answer.",
)
STOP = ["\nQ:", "\n\n"]
MAX_TOKENS = 64
N_CTX = 2048
TARGETS = {"instruction": 1.5, "step": 2.0}
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def prompts(data_dir: Path, workload: str, n: int) -> list[str]:
    task = "boolean_expressions" if workload == "instruction" else "date_understanding"
    path = data_dir / "BIG-Bench-Hard-data" / f"{task}.json"
    examples = json.loads(path.read_text())["examples"]
    fold = sorted(np.random.RandomState(0).choice(len(examples), 50, replace=False))
    if not 1 <= n <= len(fold):
        raise SystemExit(f"--examples must be within 1..{len(fold)}")
    questions = [examples[int(i)]["input"] for i in fold[:n]]
    if workload == "instruction":
        return [f"Q: {INSTRUCTION}\n{q}\n\nA:" for q in questions]
    return [f"Q: {q}\n\nA: {i}".rstrip() for q in questions for i in STEP_INSTRUCTIONS]


def run_naive(texts: list[str], threads: int) -> tuple[float, list[str]]:
    from llama_cpp import Llama

    from opro.llm.llama_logs import route_llama_logs

    route_llama_logs()
    llm = Llama(str(model_path("gemma3-270m")), n_ctx=N_CTX, n_threads=threads, verbose=False)
    started = time.perf_counter()
    outs = []
    for p in texts:
        llm.reset()  # type: ignore[no-untyped-call]
        out: Any = llm(p, max_tokens=MAX_TOKENS, temperature=0, stop=STOP)  # not a stream
        outs.append(out["choices"][0]["text"])
    wall = time.perf_counter() - started
    llm.close()
    return wall, outs


def run_ours(
    texts: list[str], threads: int, batch: int, share: bool = True
) -> tuple[float, list[str]]:
    if not share:
        prefix.MIN_SHARED = N_CTX + 1  # no start is long enough: every prompt read whole
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
    parser.add_argument("--workload", choices=sorted(TARGETS), default="instruction")
    parser.add_argument("--examples", type=int, help="questions (50 instruction, 12 step)")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="LocalBackend max_batch")
    parser.add_argument("--sweep", default="", help="batch sizes to try once, e.g. 1,4,8,16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show-diffs", action="store_true", help="print differing texts")
    args = parser.parse_args()
    examples = args.examples or (50 if args.workload == "instruction" else 12)
    texts = prompts(args.data_dir, args.workload, examples)
    n = len(texts)
    batch = args.batch or default_batch(N_CTX)
    target = TARGETS[args.workload]

    print(
        f"{args.workload}: {n} prompts, greedy, max_tokens {MAX_TOKENS}, {args.threads} "
        f"threads, batch {batch}"
    )
    print(
        f"{'repeat':>6} {'naive ex/s':>10} {'ours ex/s':>10} {'unshared':>9} {'ratio':>6} "
        f"{'unshared':>9} {'same as naive':>14} {'same unshared':>14}"
    )
    sides: dict[str, tuple[Callable[..., tuple[float, list[str]]], tuple[Any, ...]]] = {
        "naive": (run_naive, (texts, args.threads)),
        "ours": (run_ours, (texts, args.threads, batch)),
        "unshared": (run_ours, (texts, args.threads, batch, False)),
    }
    ratios = []
    outs: dict[str, list[str]] = {}
    for repeat in range(1, args.repeats + 1):
        # Alternate the order (a b c, c b a), so that a drift in the machine's speed
        # (other load, CPU clocks) does not favour one side.
        order = list(sides) if repeat % 2 else list(sides)[::-1]
        wall: dict[str, float] = {}
        for side in order:
            fn, fn_args = sides[side]
            wall[side], outs[side] = isolated(fn, *fn_args)
        ratio = wall["naive"] / wall["ours"]
        ratios.append(ratio)
        same = sum(a == b for a, b in zip(outs["naive"], outs["ours"], strict=True))
        same_unshared = sum(a == b for a, b in zip(outs["unshared"], outs["ours"], strict=True))
        print(
            f"{repeat:>6} {n / wall['naive']:>10.2f} {n / wall['ours']:>10.2f} "
            f"{n / wall['unshared']:>9.2f} {ratio:>6.2f} {wall['naive'] / wall['unshared']:>9.2f} "
            f"{same:>9}/{n:<4} {same_unshared:>9}/{n:<4}",
            flush=True,
        )
    naive_outs, ours_outs = outs["naive"], outs["ours"]
    if args.show_diffs:
        for i, (a, b) in enumerate(zip(naive_outs, ours_outs, strict=True)):
            if a != b:
                print(f"  #{i} naive: {a!r}\n  #{i} ours:  {b!r}")

    sweep = [int(b) for b in args.sweep.split(",") if b.strip()]
    if sweep:
        ref = f"same as batch {batch}"
        print(f"\n{'batch':>6} {'ex/s':>8} {'same as naive':>14} {ref:>16}")
        for size in sweep:
            took, got = isolated(run_ours, texts, args.threads, size)
            same_naive = sum(x == y for x, y in zip(got, naive_outs, strict=True))
            same_ours = sum(x == y for x, y in zip(got, ours_outs, strict=True))
            print(f"{size:>6} {n / took:>8.2f} {same_naive:>9}/{n:<4} {same_ours:>11}/{n:<4}")

    median = statistics.median(ratios)
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"\nratios: {listed}; median {median:.2f} (target >= {target})")
    if median < target:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
