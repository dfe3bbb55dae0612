"""Racing vs full evaluation on a simulated scorer: scorer calls and regret over many seeds.

    .venv/bin/python benchmarks/racing.py [--seeds 50] [--steps 20,50] [--train 50,261]

The real optimizer loop (``Optimizer`` + ``InstructionOptimization``, the paper's top-K 20,
8 proposals a step, start "") runs with two scripted models:

* the optimizer proposes a new instruction per sample, whatever the meta-prompt says, so
  that full and race see the same proposals and differ only in how they score them;
* the scorer gives each instruction a latent accuracy (drawn so that a few are good: one in
  ten from U(0.55, 0.8), the rest from U(0.1, 0.5); the start 0.3) and answers each training
  question right with that probability (a fixed draw per instruction and question).

Per seed and mode: the scorer calls on the training fold, and the regret: the best latent
accuracy among the proposals minus that of the instruction finally selected (best by
training accuracy). Printed: the mean calls of each mode and their ratio, the mean regret of
each, their paired difference with a 95 % interval, and how many seeds selected differently.
Exits 1 when racing saves less than 2x, or its extra regret is outside the noise (the
interval of the paired difference lies above 0) at the longest run given: racing saves more
the longer a run goes, as the bar (the K-th best score shown) climbs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass

from opro.data import Dataset, Example
from opro.llm.fake import FakeLLM
from opro.optimizer import MemoryRecorder, Optimizer
from opro.problems.instructions.problem import InstructionOptimization
from opro.problems.instructions.spec import InstructionsSpec
from opro.types import Request


def latent(seed: int, instruction: str) -> float:
    if not instruction:
        return 0.3
    rng = random.Random(f"{seed}|{instruction}")
    return rng.uniform(0.55, 0.8) if rng.random() < 0.1 else rng.uniform(0.1, 0.5)


def proposer(request: Request) -> str:
    return f" 50 <TEXT>Proposal {request.seed} {request.sample}.</TEXT>"


def scorer(seed: int):  # type: ignore[no-untyped-def]
    def answer(request: Request) -> str:
        question = request.prompt.split("Q: ", 1)[-1].split("\n\nA:", 1)[0]
        instruction = request.prompt.split("\n\nA:", 1)[-1].strip()
        right = random.Random(f"{seed}|{instruction}|{question}").random()
        return " True" if right < latent(seed, instruction) else " False"

    return answer


@dataclass(frozen=True)
class Outcome:
    calls: int
    regret: float
    selected: str


async def one_run(seed: int, mode: str, steps: int, n_train: int) -> Outcome:
    train = tuple(Example(f"question {i}", "True", "boolean", i) for i in range(n_train))
    test = train[:1]
    dataset = Dataset("simulated", "simulated", "boolean", train, test)
    spec = InstructionsSpec.model_validate(
        {
            "dataset": "simulated",
            "scorer_style": "base",
            "position": "A_begin",
            "style": "pretrained",
            "evaluation": mode,
            "test_top": 1,
            "engine": {"steps": steps, "seed": seed, "max_tokens": 64},
        }
    )
    problem = InstructionOptimization(spec, dataset, FakeLLM.from_function(scorer(seed)))
    recorder = MemoryRecorder()
    optimizer = Optimizer(problem, FakeLLM.from_function(proposer), spec.engine, recorder)
    summary = await optimizer.run()
    assert summary.status == "finished", summary.message
    calls = 0
    proposals = []
    for record in recorder.steps:
        for c in record.candidates:
            marks = str((c.details or {})["marks"])
            calls += len(marks) - marks.count("-")
            proposals.append(str(c.solution))
    assert summary.best is not None
    selected = str(summary.best.solution)
    best_latent = max(latent(seed, p) for p in proposals)
    return Outcome(calls, best_latent - latent(seed, selected), selected)


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, mean - half, mean + half


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--steps", default="20,50", help="run lengths, in steps")
    parser.add_argument("--train", default="50,261", help="training fold sizes")
    args = parser.parse_args()
    ok = True
    lengths = [int(n) for n in args.steps.split(",")]
    print(
        f"{args.seeds} seeds, {lengths} steps of 8 proposals, top-K 20, racing delta 0.05, "
        "10 rounds"
    )
    for n_train in (int(n) for n in args.train.split(",")):
        for steps in lengths:
            started = time.monotonic()
            full = [asyncio.run(one_run(s, "full", steps, n_train)) for s in range(args.seeds)]
            race = [asyncio.run(one_run(s, "race", steps, n_train)) for s in range(args.seeds)]
            calls_full = statistics.fmean(f.calls for f in full)
            calls_race = statistics.fmean(r.calls for r in race)
            ratio = calls_full / calls_race
            diff = [r.regret - f.regret for f, r in zip(full, race, strict=True)]
            mean, low, high = mean_interval(diff)
            differ = sum(f.selected != r.selected for f, r in zip(full, race, strict=True))
            print(
                f"train {n_train}, {steps} steps: scorer calls full {calls_full:.0f}, "
                f"race {calls_race:.0f} (ratio {ratio:.2f}x); "
                f"regret full {statistics.fmean(f.regret for f in full):.4f}, "
                f"race {statistics.fmean(r.regret for r in race):.4f}, race - full {mean:+.4f} "
                f"[{low:+.4f}, {high:+.4f}]; selection differs in {differ} of {args.seeds} "
                f"seeds ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
            if steps == max(lengths):
                ok = ok and ratio >= 2 and low <= 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
