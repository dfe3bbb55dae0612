"""Benchmark of the LLM layer against a latency-bound local OpenAI-compatible server.

    .venv/bin/python benchmarks/llm_layer.py [--calls 1000] [--concurrency 32] [--latency 0.5]

1. Throughput: K distinct calls through the full stack (cache on, retries, budget,
   concurrency limit, openai SDK) to a stub server (separate process) answering each after
   ``latency`` seconds. Ideal wall time = ceil(K / concurrency) * latency; ratio = wall / ideal
   (target <= 1.15).
2. Cache hit path: the same K calls again, all answered by the SQLite cache (calls/s).

Prints one JSON object per repeat and a summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from pathlib import Path

from opro.llm.base import BackendOptions
from opro.llm.cache import CallCache
from opro.llm.stack import ManagedLLM, StackOptions, build_llm
from opro.llm.usage import Budget
from opro.testing.stub_server import stub_process
from opro.types import Request


async def run_calls(llm: ManagedLLM, calls: int) -> float:
    requests = [Request(f"Question {i}: what is {i} + {i}?", max_tokens=16) for i in range(calls)]
    started = time.perf_counter()
    await asyncio.gather(*(llm.complete(r) for r in requests))
    return time.perf_counter() - started


def one_repeat(url: str, args: argparse.Namespace, cache_path: Path) -> dict[str, float]:
    def stack() -> ManagedLLM:
        return build_llm(
            "openai:stub",
            BackendOptions(base_url=url),
            StackOptions(concurrency=args.concurrency),
            cache=CallCache(cache_path),
            budget=Budget(),
        )

    async def go() -> tuple[float, float]:
        llm = stack()
        wall = await run_calls(llm, args.calls)
        await llm.aclose()
        replay = stack()
        hit_wall = await run_calls(replay, args.calls)
        assert replay.budget.usage()["llm"].cached_calls == args.calls
        await replay.aclose()
        return wall, hit_wall

    wall, hit_wall = asyncio.run(go())
    ideal = math.ceil(args.calls / args.concurrency) * args.latency
    return {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "wall_s": round(wall, 3),
        "ideal_s": ideal,
        "ratio": round(wall / ideal, 3),
        "cache_hits_per_s": round(args.calls / hit_wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("OPENAI_API_KEY", None)
    results = []
    with stub_process(args.latency) as (_, url):
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                result = one_repeat(url, args, Path(tmp) / "calls.sqlite")
            print(json.dumps(result), flush=True)
            results.append(result)
    ratios = sorted(r["ratio"] for r in results)
    hits = sorted(r["cache_hits_per_s"] for r in results)
    print(
        f"\nK={args.calls} calls, concurrency {args.concurrency}, latency {args.latency}s, "
        f"ideal {results[0]['ideal_s']:.1f}s"
    )
    print(
        f"wall/ideal: median {ratios[len(ratios) // 2]:.3f} (min {ratios[0]:.3f}, "
        f"max {ratios[-1]:.3f}); target <= 1.15"
    )
    print(f"cache hit path: median {hits[len(hits) // 2]:.0f} calls/s")


if __name__ == "__main__":
    main()
