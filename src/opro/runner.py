"""One runner for every kind: ``start(spec, options)`` and ``resume(run_dir, options)``.

Both take the same path: build each model once (a missing key, an unknown model, a bad
dataset fail here, before anything is written), let the kind resolve its spec and build its
problem, lock the run dir, and run the OPRO loop from the steps on disk — none for a new
run — so that a resumed run equals an uninterrupted one. A spec with ``reps > 1`` is a job:
one run dir per repetition (seeds seed, seed+1, ...) under the job's dir, then their means
(``JobSummary``). Progress reaches ``options.progress`` as each step is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opro.errors import ConfigError, Interrupted, LLMError, OproError, UserCodeError
from opro.llm.base import LLM
from opro.llm.usage import Budget, Caps
from opro.optimizer import Optimizer
from opro.problems.base import Problem
from opro.problems.jobs import JobSummary
from opro.problems.records import RunSummary, StepRecord
from opro.problems.registry import Kind, kind_of
from opro.problems.spec import RunSpec
from opro.problems.verdict import step_notice
from opro.progress import Notices, Progress, RunEnd, RunStart, Snapshot, eta
from opro.roles import Models
from opro.run_values import RunOptions as RunOptions  # re-exported: opro.runner's values
from opro.run_values import RunResult as RunResult
from opro.runlog import CONFIG, STEPS, CacheConfig, RunConfig, RunDir

log = logging.getLogger(__name__)


def default_out(command: str) -> Path:
    return Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


async def astart(spec: RunSpec, options: RunOptions | None = None) -> RunResult:
    """Start a run of ``spec`` (see the module docstring)."""
    options = options or RunOptions()
    kind = kind_of(spec.kind)
    caps = options.caps or Caps()
    cache = CacheConfig(options.use_cache, None if options.cache is None else str(options.cache))
    if options.out is not None and not str(options.out).strip():  # Path("") is the cwd
        raise ConfigError("out is empty: name the run directory, e.g. runs/first")
    out = Path(options.out) if options.out is not None else default_out(kind.command)
    async with Models(spec, cache) as models:
        spec = kind.resolve(spec, models.apis)
        if options.if_exists == "continue" and _holds_run_of(out, spec):
            return await aresume(out, _again(spec, options))  # a notebook cell run again
        if spec.reps == 1:
            budget = Budget(caps)
            llms = models.managed(budget)
            problem = kind.build(spec, llms)  # loads the data once: bad data fails here
            run = RunDir.create(out, RunConfig(spec, caps, cache))
            return await _loop(run, spec, problem, llms, budget, options, [], None, new=True)
        kind.build(spec.with_seed(spec.engine.seed), models.managed(Budget()))  # checked first
        names = tuple(f"rep-{i}" for i in range(spec.reps))
        made = [RunDir.create(out, RunConfig(spec, caps, cache, runs=names))]
        try:  # all or nothing: a run dir that cannot be written undoes those made
            for i, name in enumerate(names):
                child = spec.with_seed(spec.engine.seed + i)
                made.append(RunDir.create(out / name, RunConfig(child, caps, cache)))
                made[-1].release()
        except BaseException:
            for run in reversed(made):
                run.discard()
            raise
        job = made[0]
        return await _run_job(job, kind, models, options)


def _holds_run_of(out: Path, spec: RunSpec) -> bool:
    """Whether ``out`` holds a run of this very (resolved) ``spec``, to be continued; a run
    of another spec there is a one-line error (in Python's words: only the Python API
    continues a run on ``start``)."""
    if not (out / CONFIG).is_file():
        return False
    stored = RunDir.open(out).config().spec.model_dump(mode="json")
    given = spec.redacted().model_dump(mode="json")
    if stored == given:
        return True
    differ = [
        f"{name}.{part}" if part else name
        for name in sorted(set(stored) | set(given))
        for part in _differing(stored.get(name), given.get(name))
    ]
    raise ConfigError(
        f"{out} already holds a run of another spec ({', '.join(differ)} differ): continue "
        f"that run with opro.resume({str(out)!r}), or start this spec in another directory, "
        "RunOptions(out=...)"
    )


def _differing(stored: Any, given: Any) -> list[str]:
    """The parts of one setting that differ: "" for the whole, or a nested setting's names."""
    if stored == given:
        return []
    if isinstance(stored, dict) and isinstance(given, dict):
        return [k for k in sorted(set(stored) | set(given)) if stored.get(k) != given.get(k)]
    return [""]


def _again(spec: RunSpec, options: RunOptions) -> RunOptions:
    """How to continue the run of ``spec`` that ``start`` found: the code and the base URLs
    its run dir names are those of the spec the caller gave again, so trusted and given."""
    urls = {
        role: config.base_url
        for role, config in spec.roles().items()
        if isinstance(config.base_url, str) and config.redacted().base_url != config.base_url
    }
    return replace(options, trust_code=True, base_urls=urls)


async def aresume(path: Path | str, options: RunOptions | None = None) -> RunResult:
    """Continue the run or job at ``path`` from its last recorded step; ``options.caps``
    raises (and replaces) its caps."""
    options = options or RunOptions()
    run = RunDir.open(path)
    config, done = _admit(run, options)  # refused: nothing was written, not even the lock
    if done is not None:
        run.tidy()  # a killed writer's temp files, where the lock is free
        return done
    run.lock()
    try:
        config, done = _admit(run, options)  # again, locked: what runs is what was checked
        if done is not None:
            return done
        kind = kind_of(config.spec.kind)
        spec = config.spec.with_base_urls(options.base_urls, str(run.path / CONFIG))
        async with Models(spec, config.cache) as models:
            if config.runs:
                return await _run_job(run, kind, models, options)
            return await _run(run, kind, models, options, config)
    finally:
        run.release()


def _admit(run: RunDir, options: RunOptions) -> tuple[RunConfig, RunResult | None]:
    """``run``'s config once every check of a resume passed, reading only: a finished run
    (the result, then) needs no model, nor its key, nor its code; code is imported only
    from a run dir this user's opro made (signed) or with ``trust_code``; the steps were
    scored under this config's spec. A job's run dirs are checked too."""
    config = run.config()
    previous = run.job_summary() if config.runs else _previous(run)
    if previous is not None and previous.status == "finished":
        return config, RunResult(run.path, config.spec, previous, already_finished=True)
    code = config.spec.imports()
    if code and not options.trust_code and not config.signed:
        raise ConfigError(
            f"{run.path} names code to import ({', '.join(code)}) and was not made by your "
            "opro on this machine (its config.json has no signature of yours): resume it "
            "only if you trust where that run dir came from, with `trust_code`"
        )
    run.read_steps(config)
    for name in config.runs:
        if (run.child(name) / CONFIG).is_file():
            _admit(RunDir.open(run.child(name)), options)
    return config, None


def _keep_caps(run: RunDir, config: RunConfig, caps: Caps | None) -> None:
    """A raised cap holds for later resumes too; written (and signed) once the run is
    known to resume (a refused run dir is left as it was)."""
    if caps is not None and caps != config.caps:
        run.write_config(replace(config, caps=caps))


async def _run(
    run: RunDir, kind: Kind[Any], models: Models, options: RunOptions, config: RunConfig
) -> RunResult:
    """Continue ``run`` (its ``config`` as checked) from its steps on disk, with a budget
    restored from them — or from its summary when that is newer: written at the end of
    every session, it also counts the retries, failures and calls of a step cut short,
    which no step record holds."""
    budget = Budget(options.caps or config.caps)
    records = run.read_steps(config)
    run.truncate_partial()
    previous = _previous(run)
    if previous is not None and (not records or previous.elapsed_s >= records[-1].elapsed_s):
        budget.restore(dict(previous.usage), previous.elapsed_s)
    elif records:
        budget.restore(dict(records[-1].usage), records[-1].elapsed_s)
    llms = models.managed(budget)
    problem = kind.build(config.spec, llms)
    _check_solutions(run, problem, records)
    _keep_caps(run, config, options.caps)
    optimum = None if previous is None else previous.first_optimal_step
    return await _loop(run, config.spec, problem, llms, budget, options, records, optimum)


def _previous(run: RunDir) -> RunSummary | None:
    """The run's summary; None for an unreadable one (a hand edit, a disk fault): it holds
    nothing the steps do not, and the run rewrites it."""
    try:
        return run.summary()
    except ConfigError as exc:
        log.warning("opro: %s; it is rebuilt from the steps", exc)
        return None


def _check_solutions(run: RunDir, problem: Problem[Any], records: list[StepRecord]) -> None:
    """Every recorded solution is one of this problem's (a hand-edited steps.jsonl may hold
    anything JSON allows), or a one-line error naming the step."""
    for record in records:
        for i, candidate in enumerate(record.candidates):
            try:
                problem.canonical(problem.from_json(candidate.solution))
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                raise ConfigError(
                    f"{run.path / STEPS} step {record.step}: candidate {i} is not a solution of "
                    f"this run ({type(exc).__name__}: {exc}): repair or delete that step's "
                    "line and those after it"
                ) from None


async def _loop(
    run: RunDir,
    spec: RunSpec,
    problem: Problem[Any],
    llms: Mapping[str, LLM],
    budget: Budget,
    options: RunOptions,
    records: list[StepRecord],
    optimum_at: int | None = None,
    *,
    new: bool = False,
) -> RunResult:
    """The OPRO loop on ``run``, its steps so far ``records``, watched by the progress."""
    watched = _Watched(run, spec, budget, options.observer)
    optimizer = Optimizer(
        problem, llms["optimizer"], spec.engine, watched, budget, optimum_at=optimum_at
    )
    steps = spec.engine.steps - (records[-1].step if records else 0)
    work = kind_of(spec.kind).expected_work(spec, problem, steps, fresh=not records)
    if steps > 0 and work:  # before step 1: what the run will ask of the models, how long
        tell = options.observer.notice if isinstance(options.observer, Notices) else log.info
        tell(f"opro: {run.path} will ask {work}")
    watched.started(records)
    try:
        summary = await optimizer.run()
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Ctrl-C (asyncio cancels the task) or SIGTERM (the CLI turns it into Ctrl-C): the
        # optimizer recorded the run as stopped; say how to continue it.
        raise Interrupted(
            f"interrupted: {run.path} is saved; continue it with `opro resume {run.path}`"
        ) from None
    except UserCodeError as exc:  # recorded as stopped (user_code): say how to go on
        message = f"{exc}, then continue the run with `opro resume {run.path}` (it is saved)"
        with contextlib.suppress(OproError):
            run.write_summary(optimizer.summary("stopped", "user_code", message))
        raise UserCodeError(message) from exc.__cause__
    finally:
        run.release()
    watched.finished(summary)
    if new and summary.stop_reason == "llm_error" and not run.read_steps():
        run.discard()  # its very first call failed: nothing to resume, as bad input
        raise LLMError(
            f"{summary.message} (no step was recorded, so nothing was kept: run the same "
            "command again)"
        )
    return RunResult(run.path, spec, summary)


async def _run_job(job: RunDir, kind: Kind[Any], models: Models, options: RunOptions) -> RunResult:
    """Run (or continue) a job's runs one after another, until one does not finish."""
    config = job.config()
    results: list[RunResult] = []
    for name in config.runs:
        run = RunDir.open(job.child(name), lock=True)
        try:
            checked, done = _admit(run, options)
        except BaseException:
            run.release()
            raise
        if done is not None:
            run.release()
            results.append(done)
            continue
        try:
            result = await _run(run, kind, models, options, checked)
        except Interrupted:
            with contextlib.suppress(OproError):
                _summarise_job(job, config.runs)
            job.release()
            raise Interrupted(
                f"interrupted: {job.path} is saved; continue it with `opro resume {job.path}`"
            ) from None
        results.append(result)
        if result.status != "finished":
            break
    summary = _summarise_job(job, config.runs)
    _keep_caps(job, config, options.caps)
    job.release()
    already = all(r.already_finished for r in results) and len(results) == len(config.runs)
    return RunResult(job.path, config.spec, summary, tuple(results), already)


def _summarise_job(job: RunDir, runs: tuple[str, ...]) -> JobSummary:
    summaries = [_previous(RunDir(job.child(name))) for name in runs]
    summary = JobSummary.of(runs, summaries)
    job.write_summary(summary)
    return summary


@dataclass
class _Watched:
    """The run dir as the optimizer's recorder, telling ``progress`` of each step."""

    run: RunDir
    spec: RunSpec
    budget: Budget
    progress: Progress
    seconds: list[float] = field(default_factory=list)
    shown: tuple[Snapshot, float] | None = None
    last: tuple[int, float | None] | None = None
    """The last recorded step and its best score so far."""
    noticed: bool = False
    _last: float = field(default_factory=time.monotonic)

    def read_steps(self) -> list[StepRecord]:
        return self.run.read_steps()

    def append_step(self, record: StepRecord) -> None:
        self.run.append_step(record)
        now = time.monotonic()
        self.seconds.append(now - self._last)
        self._last = now
        self.last = (record.step, record.best_score)
        self.progress.step_finished(self._show())
        text = None if self.noticed else step_notice(record, self.spec.engine)
        if text is not None:  # a step that came to nothing: once, with the likely fix
            self.noticed = True
            tell = self.progress.notice if isinstance(self.progress, Notices) else log.warning
            tell(f"opro: {text}")

    def write_summary(self, summary: RunSummary | JobSummary) -> None:
        self.run.write_summary(summary)

    def started(self, records: list[StepRecord]) -> None:
        if records:
            self.last = (records[-1].step, records[-1].best_score)
        start = RunStart(str(self.run.path), self.spec.engine.steps, self._show().step)
        self.progress.run_started(start, self.live)
        self._last = time.monotonic()

    def finished(self, summary: RunSummary) -> None:
        done = summary.status == "finished"
        end = replace(self._show(), eta_s=0.0 if done else None)
        self.progress.run_finished(
            RunEnd(str(self.run.path), summary.status, summary.stop_reason, end)
        )

    def _show(self) -> Snapshot:
        step, best = self.last if self.last is not None else (None, None)
        total = self.budget.total()
        steps = self.spec.engine.steps
        snapshot = Snapshot(
            step=step,
            steps=steps,
            best=best,
            calls=total.calls,
            cached_calls=total.cached_calls,
            tokens=total.total_tokens,
            cost_usd=total.cost_usd,
            elapsed_s=round(self.budget.elapsed_s, 3),
            eta_s=eta(steps - (step or 0), self.seconds),
        )
        self.shown = (snapshot, time.monotonic())
        return snapshot

    def live(self) -> Snapshot:
        """The last step's snapshot with this moment's counters; safe from any thread."""
        if self.shown is None:
            return self._show()
        shown, at = self.shown
        total = self.budget.total()
        return replace(
            shown,
            calls=total.calls,
            cached_calls=total.cached_calls,
            tokens=total.total_tokens,
            cost_usd=total.cost_usd,
            elapsed_s=round(self.budget.elapsed_s, 3),
            eta_s=None if shown.eta_s is None else max(shown.eta_s - (time.monotonic() - at), 0),
        )
