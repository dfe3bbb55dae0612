"""The Python API: runs of any kind (``start``, ``resume``), scoring instructions
(``evaluate``), sampling a model (``complete``), reports (``report``).

Every entry point has an async form (``a``-prefixed) and a sync form. The sync form works
anywhere, a notebook's running event loop included: there it runs the coroutine on a
worker thread. A run is described by a spec (``opro.InstructionsSpec``, ``opro.TspSpec``,
``opro.LinregSpec``) and run with ``RunOptions`` (where, caps, cache, progress).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from opro import runner
from opro.data import subsample
from opro.errors import BudgetExceeded, ConfigError
from opro.eval.scorer import InstructionScore, score_instructions
from opro.eval.stats import PairedTest, mcnemar_exact
from opro.llm.cache import CallCache, default_cache_path
from opro.llm.config import LLMConfig
from opro.llm.stack import build_llm
from opro.llm.usage import Budget, Caps, RoleUsage
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.instructions.task import task_data, task_metric
from opro.problems.spec import RunSpec
from opro.progress import Progress
from opro.progress_display import in_notebook, notebook_display
from opro.runlog import RunDir
from opro.runner import RunOptions, RunResult
from opro.types import Completion, Request

P = ParamSpec("P")
R = TypeVar("R")
Split = Literal["train", "test", "all"]


def run_sync(coroutine: Coroutine[Any, Any, R]) -> R:
    """Run ``coroutine`` to its end: ``asyncio.run`` here, or on a worker thread when this
    thread already runs an event loop (a notebook), where ``asyncio.run`` would refuse."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:  # (outside the except: an error of the run is not chained to this one)
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="opro") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _sync(job: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The sync form of an async entry point: same parameters, ``run_sync``."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_sync(job(*args, **kwargs))

    run.__name__ = run.__qualname__ = job.__name__.removeprefix("a")
    run.__doc__ = f"Sync form of ``{job.__name__}`` (works inside a running event loop).\n\n" + (
        job.__doc__ or ""
    )
    return run


# -- scoring instructions ------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Instructions scored on one split; ``paired[i]`` tests instruction i against the first."""

    dataset: str
    split: str
    scorer: str
    position: str
    results: tuple[InstructionScore, ...]
    paired: tuple[PairedTest | None, ...]
    elapsed_s: float
    usage: RoleUsage
    stopped: str | None = None
    """Why a cap stopped the evaluation before every example was asked (those are
    ``stopped``, left out of the accuracy); None when it ran to the end."""

    def to_json(self, *, examples: bool = False) -> dict[str, Any]:
        rows = [
            r.to_json(examples=examples)
            | ({} if p is None else {"paired_test_vs_first": p.to_json()})
            for r, p in zip(self.results, self.paired, strict=True)
        ]
        head = {
            "dataset": self.dataset,
            "split": self.split,
            "scorer": self.scorer,
            "position": self.position,
        }
        end = {"stopped": self.stopped} if self.stopped else {}
        if len(rows) == 1:
            return head | rows[0] | {"usage": self.usage.to_json()} | end
        return head | {
            "instructions": rows,
            "elapsed_s": round(self.elapsed_s, 3),
            "usage": self.usage.to_json(),
            **end,
        }


async def aevaluate(
    task: InstructionsSpec | str,
    instructions: Sequence[str],
    *,
    split: Split = "test",
    max_examples: int | None = None,
    seed: int = 0,
    cache: CallCache | None = None,
    caps: Caps | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Score each instruction on ``split`` of ``task`` — the same spec an optimization takes
    (its data, fields, scorer, position, metric...), or a dataset's name with every default —
    with a paired test of each against the first; failed calls are reported apart.
    ``progress`` hears how many (instruction, example) pairs are scored. A cap reached
    stops the evaluation without losing what was answered: the examples not asked are
    ``stopped`` and ``Evaluation.stopped`` says why (rerun with a higher cap: the answered
    calls come from the cache)."""
    if not instructions:
        raise ConfigError("give at least one instruction (or a run dir to take them from)")
    if split not in ("train", "test", "all"):
        raise ConfigError(f"split must be train, test or all, got {split!r}")
    if max_examples is not None and max_examples < 1:
        raise ConfigError(f"max_examples must be >= 1, got {max_examples}")
    spec = task if isinstance(task, InstructionsSpec) else InstructionsSpec(dataset=task)
    budget = Budget(caps)
    roles = {"scorer": spec.scorer} | ({"judge": spec.judge} if spec.judge else {})
    llms = {
        role: build_llm(
            config.spec,
            config.backend_options(),
            config.stack_options(role, seed),
            cache=cache,
            budget=budget,
        )
        for role, config in roles.items()
    }
    try:
        spec = spec.resolved({"scorer": llms["scorer"].api, "optimizer": "chat"})
        examples = task_data(spec.model_copy(update={"max_test": None})).split(split)
        if max_examples is not None:
            examples = subsample(examples, max_examples, seed)
        started = time.monotonic()
        results = await score_instructions(
            llms["scorer"],
            list(instructions),
            examples,
            spec.scorer_options,
            metric=task_metric(spec, llms),
            tolerate_failures=True,
            progress=progress,
        )
        elapsed = time.monotonic() - started
    finally:
        for llm in llms.values():
            await llm.aclose()
    first = results[0].marks
    paired = tuple(None if i == 0 else mcnemar_exact(first, r.marks) for i, r in enumerate(results))
    name = examples[0].dataset if examples else str(spec.dataset)
    position = spec.position if spec.instruction_in == "user" else "system"
    return Evaluation(
        name, split, spec.scorer.spec, str(position), tuple(results), paired, elapsed,
        budget.total(), budget.stopped,
    )  # fmt: skip


def instructions_from(run_dir: Path | str, top: int = 3) -> list[str]:
    """A run's initial instruction(s), then its ``top`` instructions by training score."""
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    run = RunDir.open(run_dir)
    spec = run.config().spec
    if not isinstance(spec, InstructionsSpec):
        raise ConfigError(f"{run_dir} is not an instruction-optimization run (`opro optimize`)")
    steps = run.read_steps()
    if not steps:
        raise ConfigError(f"{run_dir} has no scored instructions yet: resume it first")
    initial = [str(c.solution) for c in steps[0].candidates]
    scored = [(c.score, s.step, str(c.solution)) for s in steps for c in s.candidates]
    ranked = [text for _, _, text in sorted(scored, key=lambda t: (-t[0], t[1]))]
    return list(dict.fromkeys(initial + ranked[:top]))


# -- sampling a model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Samples:
    """``n`` samples of one prompt, and what they cost. A cap reached stops the sampling
    without losing what was answered: ``completions`` are then the samples drawn, at
    ``indices``, and ``stopped`` says why."""

    spec: str
    completions: tuple[Completion, ...]
    usage: RoleUsage
    stopped: str | None = None
    indices: tuple[int, ...] = ()
    """The sample index of each completion (default: 0, 1, ...)."""

    def __post_init__(self) -> None:
        if not self.indices:
            object.__setattr__(self, "indices", tuple(range(len(self.completions))))

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
    caps: Caps | None = None,
) -> Samples:
    """Draw ``n`` samples (sample indices 0..n-1) of ``prompt`` concurrently."""
    config = LLMConfig.model_validate(llm)
    budget = Budget(caps)
    model = build_llm(
        config.spec,
        config.backend_options(),
        config.stack_options("llm"),
        cache=cache,
        budget=budget,
    )
    try:
        requests = [
            Request(prompt, max_tokens, temperature, stop, i, seed, system, grammar)
            for i in range(n)
        ]
        answers = await asyncio.gather(
            *(model.complete(r) for r in requests), return_exceptions=True
        )
    finally:
        await model.aclose()
    for answer in answers:  # an error other than a cap loses the samples, as it should
        if isinstance(answer, BaseException) and not isinstance(answer, BudgetExceeded):
            raise answer
    drawn = [(i, a) for i, a in enumerate(answers) if isinstance(a, Completion)]
    return Samples(
        config.spec,
        tuple(a for _, a in drawn),
        budget.total(),
        budget.stopped,
        tuple(i for i, _ in drawn),
    )


# -- reports -------------------------------------------------------------------------------


def report(
    run_dirs: Sequence[Path | str],
    *,
    out: Path | str | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write an HTML report (and its SVG figures) for run dirs; its path."""
    from opro.report import write_report

    return write_report(
        run_dirs, out=None if out is None else Path(out), labels=labels, title=title
    )


def start(spec: RunSpec, options: RunOptions | None = None) -> RunResult:
    """Sync form of ``opro.runner.astart`` (works inside a running event loop); from a
    notebook, with no progress given, the run's progress shows in the cell."""
    return _watched(runner.astart, spec, options)


def resume(path: Path | str, options: RunOptions | None = None) -> RunResult:
    """Sync form of ``opro.runner.aresume`` (see ``start``)."""
    return _watched(runner.aresume, path, options)


def _watched(
    job: Callable[[Any, RunOptions | None], Coroutine[Any, Any, RunResult]],
    target: Any,
    options: RunOptions | None,
) -> RunResult:
    options = options or RunOptions()
    if options.progress is not None or not in_notebook():
        return run_sync(job(target, options))
    display = notebook_display()
    try:
        return run_sync(job(target, replace(options, progress=display)))
    finally:
        display.close()


evaluate = _sync(aevaluate)
complete = _sync(acomplete)
