"""Scripted optimizers for engine tests, reachable from the CLI as fake:tests.doubles:NAME."""

from __future__ import annotations

import random
import time

from opro.types import Request


def garbage(request: Request) -> str:
    """Never a parsable proposal."""
    return "I am not sure what to say here. [w, b] <trace> x </trace>"


def linreg_walker(request: Request) -> str:
    """A deterministic pseudo-optimizer: a pair drawn from the request's seed and sample."""
    rng = random.Random(f"{request.seed}-{request.sample}-{len(request.prompt)}")
    time.sleep(0.02)  # slow enough for a kill to land mid-run
    return f"My proposal is [{rng.randint(0, 30)}, {rng.randint(0, 30)}]"


def tsp_shuffler(request: Request) -> str:
    """A random permutation of the points listed in the prompt."""
    n = request.prompt.count("): (")
    rng = random.Random(f"{request.seed}-{request.sample}")
    tour = list(range(n))
    rng.shuffle(tour)
    return "<trace> " + ",".join(map(str, tour)) + " </trace>"
