"""The Python API: the same jobs as the CLI, as functions returning typed values.

Each job has an async form (``a``-prefixed) and a sync wrapper that calls ``asyncio.run``
once. The CLI is a thin layer over these functions.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from opro import jobs
from opro.budget import Budget, RoleUsage
from opro.config import BudgetConfig, LLMConfig
from opro.errors import ConfigError
from opro.llm.cache import CallCache, default_cache_path
from opro.llm.registry import probe_backend
from opro.llm.stack import build_llm
from opro.meta_prompt import MetaPromptOptions
from opro.optimizer import EngineConfig, RunResult
from opro.progress import Progress
from opro.prompt_api import Evaluation as Evaluation
from opro.prompt_api import aevaluate as aevaluate
from opro.prompt_api import aoptimize as aoptimize
from opro.prompt_api import instructions_from as instructions_from
from opro.runlog import RunDir
from opro.types import Completion, Request

P = ParamSpec("P")
R = TypeVar("R")


def _sync(job: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The sync form of an async job: same parameters, one ``asyncio.run``."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(job(*args, **kwargs))

    run.__name__ = run.__qualname__ = job.__name__.removeprefix("a")
    run.__doc__ = f"Sync form of ``{job.__name__}``.\n\n{job.__doc__ or ''}"
    return run


@dataclass(frozen=True)
class Samples:
    """``n`` samples of one prompt, and what they cost."""

    spec: str
    completions: tuple[Completion, ...]
    usage: RoleUsage

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.completions]


def open_cache(cache: Path | str | None, *, enabled: bool = True) -> CallCache | None:
    """The call cache at ``cache`` (default: the user cache dir), or None when disabled."""
    if not enabled:
        return None
    return CallCache(Path(cache) if cache is not None else default_cache_path())


async def acomplete(
    llm: LLMConfig | str,
    prompt: str,
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 256,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
    system: str | None = None,
    grammar: str | None = None,
    cache: CallCache | None = None,
    budget: BudgetConfig | None = None,
) -> Samples:
    """Draw ``n`` samples (sample indices 0..n-1) of ``prompt`` concurrently."""
    config = llm if isinstance(llm, LLMConfig) else LLMConfig(spec=llm)
    shared_budget = Budget((budget or BudgetConfig()).caps())
    model = build_llm(
        config.spec,
        config.backend_options(),
        config.stack_options("llm"),
        cache=cache,
        budget=shared_budget,
    )
    try:
        requests = [
            Request(prompt, max_tokens, temperature, stop, i, seed, system, grammar)
            for i in range(n)
        ]
        completions = await asyncio.gather(*(model.complete(r) for r in requests))
    finally:
        await model.aclose()
    return Samples(config.spec, tuple(completions), shared_budget.total())


# -- the paper's motivating problems ------------------------------------------------------


def default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _llm(optimizer: LLMConfig | str) -> LLMConfig:
    return optimizer if isinstance(optimizer, LLMConfig) else LLMConfig(spec=optimizer)


async def arun_linreg(
    optimizer: LLMConfig | str = "local:gemma3-270m",
    *,
    w_true: int = 15,
    b_true: int = 14,
    reps: int = 5,
    num_initial: int = 5,
    engine: EngineConfig | None = None,
    out: Path | str | None = None,
    budget: BudgetConfig | None = None,
    cache: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Linear regression as in the paper (§2): ``reps`` runs, each its own run dir under
    ``out``; returns the aggregate summary (mean ± std of steps to optimum, unique pairs).
    ``progress`` hears of each run and step (``opro.progress``)."""
    if reps < 1:
        raise ConfigError(f"--reps must be >= 1, got {reps}")
    if num_initial < 1:
        raise ConfigError(f"--num-initial must be >= 1, got {num_initial}")
    engine = engine or EngineConfig()
    path = Path(out) if out is not None else default_out("linreg")
    budget = budget or BudgetConfig()
    runs = {
        f"rep-{rep}": jobs.run_config(
            "linreg",
            {
                "w_true": w_true,
                "b_true": b_true,
                "data_seed": engine.seed + rep,
                "num_initial": num_initial,
            },
            replace(engine, seed=engine.seed + rep),
            _llm(optimizer),
            budget,
            cache,
            use_cache,
        )
        for rep in range(reps)
    }
    await probe_backend(_llm(optimizer).spec, _llm(optimizer).backend_options())
    jobs.create_job(path, "linreg-reps", runs, {"w_true": w_true, "b_true": b_true})
    results = await jobs.run_job(path, progress=progress)
    return jobs.aggregate_linreg(path, results)


TSP_ENGINE = EngineConfig(meta=MetaPromptOptions(top_k=10), max_attempts_per_step=24)


async def arun_tsp(
    optimizer: LLMConfig | str = "local:gemma3-270m",
    *,
    points: list[tuple[int, int]] | None = None,
    nodes: int | None = None,
    instance_seed: int = 0,
    num_initial: int = 5,
    engine: EngineConfig | None = None,
    out: Path | str | None = None,
    budget: BudgetConfig | None = None,
    cache: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> RunResult:
    """TSP as in the paper (§3), on ``points`` or a seeded random instance of ``nodes``;
    ``progress`` hears of each step."""
    from opro.problems.tsp import validate_points
    from opro.problems.tsp_solvers import distance_matrix, random_instance, solve_exact

    if num_initial < 1:
        raise ConfigError(f"--num-initial must be >= 1, got {num_initial}")
    if points is None:
        if nodes is None or nodes < 3:
            raise ConfigError("--nodes must be >= 3 (or give --instance FILE)")
        points = random_instance(nodes, instance_seed)
    points = validate_points(list(points), "instance")
    optimal = solve_exact(distance_matrix(points)).length
    engine = engine or TSP_ENGINE
    path = Path(out) if out is not None else default_out("tsp")
    config = jobs.run_config(
        "tsp",
        {
            "points": [list(p) for p in points],
            "num_initial": num_initial,
            "optimal_length": optimal,
        },
        engine,
        _llm(optimizer),
        budget or BudgetConfig(),
        cache,
        use_cache,
    )
    await probe_backend(_llm(optimizer).spec, _llm(optimizer).backend_options())
    return await jobs.run_new(RunDir.create(path, config), progress)


complete = _sync(acomplete)
run_linreg = _sync(arun_linreg)
run_tsp = _sync(arun_tsp)
optimize = _sync(aoptimize)
evaluate = _sync(aevaluate)


def resume(
    path: Path | str, budget: BudgetConfig | None = None, progress: Progress | None = None
) -> tuple[dict[str, Any], bool]:
    """Continue a killed or stopped run (or job); (summary, whether it had already finished)."""
    return jobs.resume(Path(path), budget, progress)


def report(
    run_dirs: Sequence[Path | str],
    *,
    out: Path | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write an HTML report (and its PNGs) for run dirs: ``opro.report.write_report``."""
    from opro.report import write_report

    return write_report(run_dirs, out=out, labels=labels, title=title)
