"""Benchmark: the client CPU a call of opro's `openai:` backend against the OpenAI SDK.

    .venv/bin/python benchmarks/transports.py [--calls 2000] [--concurrency 256]
        [--latency 0.5] [--repeats 2]

Each client sends ``calls`` chat requests, ``concurrency`` at a time, to the stub server
(``opro.testing.stub_server``, in a process of its own) answering after ``latency`` s:
opro's backend (aiohttp, ``opro/llm/http.py``), the SDK's ``chat.completions.create`` (one
client, its retries off) and httpx alone (the SDK's HTTP library, one pool). Printed per
client and repeat: elapsed time, its ratio to the ideal (ceil(calls / concurrency) x
latency) and this process's CPU per call; last, the SDK's CPU a call over opro's.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import openai

from opro.llm.base import BackendOptions
from opro.llm.openai import OpenAIBackend
from opro.testing.stub_server import stub_process
from opro.types import Request

Call = Callable[[int], Awaitable[Any]]


def question(i: int) -> str:
    return f"What is {i} plus {i % 97}? Answer with the number only."


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """Elapsed seconds and CPU milliseconds a call."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await call(i)

    started, cpu = asyncio.get_running_loop().time(), cpu_s()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = asyncio.get_running_loop().time() - started
    return elapsed, (cpu_s() - cpu) / calls * 1000


async def with_opro(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    backend = OpenAIBackend("stub", BackendOptions(base_url=url))
    try:
        return await measure(
            lambda i: backend.complete(Request(question(i), seed=1)), calls, concurrency
        )
    finally:
        await backend.aclose()


async def with_sdk(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    client = openai.AsyncOpenAI(base_url=url, max_retries=0)

    def call(i: int) -> Awaitable[Any]:
        messages: Any = [{"role": "user", "content": question(i)}]
        return client.chat.completions.create(
            model="stub", messages=messages, max_tokens=256, temperature=0.0, seed=1
        )

    try:
        return await measure(call, calls, concurrency)
    finally:
        await client.close()


async def with_httpx(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    http = openai.DefaultAsyncHttpxClient()  # the SDK's httpx (or httpx2) client

    async def call(i: int) -> Any:
        body = {"model": "stub", "max_tokens": 256, "temperature": 0.0, "seed": 1,
                "messages": [{"role": "user", "content": question(i)}]}  # fmt: skip
        reply = await http.post(f"{url}/chat/completions", json=body)
        return reply.json()

    try:
        return await measure(call, calls, concurrency)
    finally:
        await http.aclose()


CLIENTS = {"opro": with_opro, "sdk": with_sdk, "httpx": with_httpx}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "no-key")  # the SDK insists on one
    ideal = math.ceil(args.calls / args.concurrency) * args.latency
    per_call: dict[str, list[float]] = {name: [] for name in CLIENTS}
    with stub_process(args.latency) as (_, url):
        for repeat in range(args.repeats):
            for name, client in CLIENTS.items():
                elapsed, ms = asyncio.run(client(url, args.calls, args.concurrency))
                per_call[name].append(ms)
                ratio = elapsed / ideal
                line = f"repeat {repeat} {name:6s} elapsed {elapsed:5.2f} s ({ratio:.2f}x ideal)"
                print(f"{line}, {ms:.2f} ms of CPU a call", flush=True)
    medians = {name: statistics.median(values) for name, values in per_call.items()}
    each = ", ".join(f"{name} {ms:.2f} ms" for name, ms in medians.items())
    print(f"median CPU a call: {each}; sdk / opro = {medians['sdk'] / medians['opro']:.1f}x")


if __name__ == "__main__":
    main()
