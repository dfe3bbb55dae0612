"""From a run's stored configuration to a running optimizer, for new runs and resumes alike.

A run's ``config.json`` holds everything needed to rebuild it: the problem (kind and
parameters), the engine settings, the optimizer's LLM config (never a key), the budget and
the cache. ``run_stored`` rebuilds those objects and runs (or continues) the loop, so that
``opro resume DIR`` and a fresh run follow the very same path. A job of several runs
(linear regression repetitions) keeps one run dir per repetition under its own dir.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from opro.budget import Budget
from opro.config import BudgetConfig, LLMConfig
from opro.errors import ConfigError, LLMError
from opro.llm.base import LLM, BackendOptions
from opro.llm.cache import CallCache, default_cache_path
from opro.llm.stack import ManagedLLM, build_llm
from opro.meta_prompt import MetaPromptOptions
from opro.optimizer import EngineConfig, Optimizer, RunResult
from opro.problems.base import Problem
from opro.progress import Progress
from opro.runlog import CONFIG, FORMAT, RunDir, versions, write_json_atomic


def engine_from_json(data: dict[str, Any]) -> EngineConfig:
    values = dict(data)
    values["meta"] = MetaPromptOptions(**values["meta"])
    return EngineConfig(**values)


def _linreg(params: dict[str, Any], llms: dict[str, LLM]) -> Problem[Any]:
    from opro.problems.linreg import LinearRegression

    return LinearRegression(**params)


def _tsp(params: dict[str, Any], llms: dict[str, LLM]) -> Problem[Any]:
    from opro.problems.tsp import TravellingSalesman

    return TravellingSalesman(
        [tuple(p) for p in params["points"]],
        num_initial=params["num_initial"],
        optimal_length=params.get("optimal_length"),
    )


def _instructions(params: dict[str, Any], llms: dict[str, LLM]) -> Problem[Any]:
    from opro.problems.instructions import InstructionOptimization, InstructionTask

    task = InstructionTask.from_json(params)
    return InstructionOptimization(task, task.load_data(), llms["scorer"])


PROBLEMS: dict[str, Callable[[dict[str, Any], dict[str, LLM]], Problem[Any]]] = {
    "linreg": _linreg,
    "tsp": _tsp,
    "instructions": _instructions,
}
"""Problem kind (as stored in config.json) → builder from its parameters and extra LLMs."""
EXTRA_ROLES = ("scorer",)


def build_problem(kind: str, params: dict[str, Any], llms: dict[str, LLM]) -> Problem[Any]:
    if kind not in PROBLEMS:
        raise ConfigError(f"unknown problem kind {kind!r} in the run config")
    return PROBLEMS[kind](params, llms)


def run_config(
    kind: str,
    params: dict[str, Any],
    engine: EngineConfig,
    optimizer: LLMConfig,
    budget: BudgetConfig,
    cache: Path | None,
    use_cache: bool,
    scorer: LLMConfig | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "problem": params,
        "engine": asdict(engine),
        "optimizer": optimizer.model_dump(mode="json"),
        **({} if scorer is None else {"scorer": scorer.model_dump(mode="json")}),
        "budget": budget.model_dump(mode="json"),
        "cache": {"enabled": use_cache, "path": None if cache is None else str(cache)},
    }


def _open_cache(config: dict[str, Any]) -> CallCache | None:
    if not config["cache"]["enabled"]:
        return None
    path = config["cache"]["path"]
    return CallCache(Path(path) if path else default_cache_path())


async def run_stored(
    run: RunDir, budget_override: BudgetConfig | None = None, progress: Progress | None = None
) -> RunResult:
    """Run or continue the run in ``run`` from its config.json, reporting to ``progress``."""
    config = run.config()
    if budget_override is not None:  # a raised cap holds for later resumes too
        config["budget"] = budget_override.model_dump(mode="json")
        write_json_atomic(run.path / CONFIG, config)
    budget_config = BudgetConfig(**config["budget"])
    engine = engine_from_json(config["engine"])
    budget = Budget(budget_config.caps())
    cache = _open_cache(config)
    llms: dict[str, ManagedLLM] = {}
    backends: dict[tuple[str, BackendOptions], LLM] = {}
    try:
        for role in ("optimizer", *EXTRA_ROLES):
            if role in config:
                llm_config = LLMConfig(**config[role])
                shared = (llm_config.spec, llm_config.backend_options())
                llms[role] = build_llm(
                    llm_config.spec,
                    llm_config.backend_options(),
                    llm_config.stack_options(role, engine.seed),
                    cache=cache,
                    budget=budget,
                    backend=backends.get(shared),
                )
                backends[shared] = llms[role].backend
        problem = build_problem(config["kind"], config["problem"], dict(llms))
        optimizer = Optimizer(problem, llms["optimizer"], engine, run, budget, progress)
        return await optimizer.run()
    finally:
        for backend in backends.values():
            await backend.aclose()


async def run_new(run: RunDir, progress: Progress | None = None) -> RunResult:
    """Run a run dir just made by ``RunDir.create``. A run whose very first LLM call failed
    (a server that is not there, a key it refuses) recorded nothing, so there is nothing to
    resume: its dir is removed again and the error raised, as for any other bad input."""
    result = await run_stored(run, progress=progress)
    if result.stop_reason == "llm_error" and not run.read_steps():
        run.discard()
        raise LLMError(result.message)
    return result


# -- jobs of several runs ---------------------------------------------------------------


def create_job(
    path: Path, kind: str, runs: dict[str, dict[str, Any]], extra: dict[str, Any]
) -> None:
    """A job dir holding one run dir per entry of ``runs`` (name → run config); all or
    nothing: if one cannot be written (a full disk), those already made are removed."""
    made = [RunDir.create(path, {"kind": kind, "runs": list(runs), **extra})]
    try:
        for name, config in runs.items():
            made.append(RunDir.create(made[0].path / name, config))
    except BaseException:
        for run in reversed(made):
            run.discard()
        raise


async def run_job(
    path: Path, budget_override: BudgetConfig | None = None, progress: Progress | None = None
) -> list[RunResult]:
    """Run (or continue) a job's runs one after another, until one does not finish."""
    config = RunDir.open(path).config()
    results = []
    for name in config["runs"]:
        result = await run_stored(RunDir.open(path / name), budget_override, progress)
        results.append(result)
        if result.status != "finished":
            break
    return results


def aggregate_linreg(path: Path, results: list[RunResult]) -> dict[str, Any]:
    """Mean ± std across repetitions, as the paper reports them."""
    config = RunDir.open(path).config()
    summaries = [RunDir.open(path / name).summary() or {} for name in config["runs"]]
    done = [s for s in summaries if s.get("status") == "finished"]
    steps = [s["steps_to_optimum"] for s in done if s.get("steps_to_optimum") is not None]
    unique = [s["unique_pairs_explored"] for s in done]

    def mean_std(values: list[int]) -> dict[str, float | None]:
        if not values:
            return {"mean": None, "std": None}
        return {
            "mean": statistics.fmean(values),
            "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        }

    summary = {
        "kind": "linreg-reps",
        "status": "finished" if len(done) == len(summaries) else "stopped",
        "stop_reason": results[-1].stop_reason if results else "none",
        "message": results[-1].message if results else "",
        "reps": len(summaries),
        "reps_finished": len(done),
        "reps_reaching_optimum": len(steps),
        "steps_to_optimum": mean_std(steps),
        "unique_pairs_explored": mean_std(unique),
        "per_rep": [
            {
                "run": name,
                "steps_to_optimum": s.get("steps_to_optimum"),
                "unique_pairs_explored": s.get("unique_pairs_explored"),
                "status": s.get("status"),
            }
            for name, s in zip(config["runs"], summaries, strict=True)
        ],
        "versions": versions(),
        "format": FORMAT,
    }
    write_json_atomic(path / "summary.json", summary)
    return summary


def resume(
    path: Path, budget_override: BudgetConfig | None = None, progress: Progress | None = None
) -> tuple[dict[str, Any], bool]:
    """Continue the run or job at ``path``: (its summary, whether it was already finished)."""
    run = RunDir.open(path)
    previous = run.summary()
    if previous is not None and previous.get("status") == "finished":
        return previous, True
    config = run.config()
    if "runs" in config:
        results = asyncio.run(run_job(path, budget_override, progress))
        return aggregate_linreg(path, results), False
    return asyncio.run(run_stored(run, budget_override, progress)).summary, False
