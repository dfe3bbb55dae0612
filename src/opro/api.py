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
import contextlib
import functools
import re
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from opro import runner
from opro.errors import BudgetExceeded, OproError
from opro.evaluation import Evaluation, Split, aevaluate, instructions_from
from opro.llm.cache import CallCache, open_cache
from opro.llm.config import LLMConfig
from opro.llm.usage import Budget, Caps, RoleUsage
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.spec import RunSpec
from opro.progress import NoProgress, Progress
from opro.progress_display import Display, in_notebook, notebook_display, script_display
from opro.run_values import caps_of
from opro.runner import RunOptions, RunResult
from opro.types import Completion, Request

__all__ = [
    "Evaluation", "Samples", "acomplete", "aevaluate", "complete", "evaluate",
    "instructions_from", "open_cache", "report", "resume", "run_sync", "start",
]  # fmt: skip

P = ParamSpec("P")
R = TypeVar("R")


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
    model = config.build("llm", cache=cache, budget=budget)
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
    """Sync form of ``opro.runner.astart`` (works inside a running event loop), showing the
    run's progress unless ``options.progress`` says otherwise: in a notebook's cell, else on
    stderr. Started again into the same ``out`` (a notebook cell run again), it returns
    that run: finished, as it is; not finished, resumed (``RunOptions.if_exists``)."""
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
    with _shown(options.progress) as progress, _in_python():
        return run_sync(job(target, replace(options, progress=progress)))


def evaluate(
    task: InstructionsSpec | str,
    instructions: Sequence[str],
    *,
    split: Split = "test",
    max_examples: int | None = None,
    seed: int = 0,
    cache: CallCache | Path | str | None = None,
    use_cache: bool = True,
    caps: Caps | Mapping[str, object] | None = None,
    progress: Progress | bool | None = None,
    trained_on: InstructionsSpec | None = None,
    allow_overlap: bool = False,
) -> Evaluation:
    """Sync form of ``aevaluate`` (works inside a running event loop), through the call
    cache as runs are (``cache``: its file or a ``CallCache``, default the user cache dir;
    ``use_cache=False``: none), showing its progress as ``start`` does (``progress=False``:
    none). ``caps`` may be a dict of ``Caps``' settings."""
    calls = cache if isinstance(cache, CallCache) else open_cache(cache, enabled=use_cache)
    with _shown(progress) as shown, _in_python():
        return run_sync(
            aevaluate(
                task,
                instructions,
                split=split,
                max_examples=max_examples,
                seed=seed,
                cache=calls,
                caps=caps_of(caps),
                progress=shown,
                trained_on=trained_on,
                allow_overlap=allow_overlap,
            )
        )


evaluate.__doc__ = (evaluate.__doc__ or "") + "\n\n" + (aevaluate.__doc__ or "")


@contextlib.contextmanager
def _shown(progress: Progress | bool | None) -> Iterator[Progress]:
    """The progress to show: the one given, none for False, else a display in a notebook's
    cell or on stderr (closed at the end)."""
    if progress is False:
        yield NoProgress()
        return
    if progress is not None and progress is not True:
        yield progress
        return
    display: Display = notebook_display() if in_notebook() else script_display()
    try:
        yield display
    finally:
        display.close()


_RESUME = re.compile(r"`opro resume ([^`\s]+)( --trust-code)?`")


@contextlib.contextmanager
def _in_python() -> Iterator[None]:
    """An error's hint in Python's words: ``opro.resume('DIR')`` for ``opro resume DIR``."""
    try:
        yield
    except OproError as exc:
        text = str(exc)
        python = _RESUME.sub(_resume_call, text)
        if python != text:
            exc.args = (python,)
        raise


def _resume_call(match: re.Match[str]) -> str:
    trust = ", opro.RunOptions(trust_code=True)" if match.group(2) else ""
    return f"`opro.resume({match.group(1)!r}{trust})`"


complete = _sync(acomplete)
