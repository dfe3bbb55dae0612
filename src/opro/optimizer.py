"""The OPRO loop: propose → parse → dedupe → score → record → stop?

Step 0 scores the starting solutions. Each later step renders the meta-prompt from the
history, draws ``samples_per_step`` samples at temperature T (sample indices 0..N-1, a
seed derived from the run seed and the step, so a cache replays a resumed step exactly),
parses them (a failure is counted, never raised), drops anything seen before, scores the
rest (telling the problem the bar a new solution must reach to be shown next, for a
problem that races) and hands one ``StepRecord`` to the recorder. A step is the unit of
resume: a step cut short by a kill, a budget cap or an LLM failure is simply done again; a
run rebuilt from its records continues as if it had never stopped.

The optimizer knows nothing of run directories (a ``Recorder`` keeps its records: a run
dir, or memory), of budgets (a ``Meter`` reports usage and time for the records) or of
displays (the runner watches the recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from opro import attempts
from opro.errors import BudgetExceeded, LLMError, UserCodeError
from opro.history import History, Scored
from opro.llm.base import LLM
from opro.llm.usage import RoleUsage
from opro.meta_prompt import render_meta_prompt
from opro.problems.base import Invalid, Problem, ScoringContext, SolutionScore
from opro.problems.records import (
    BestSolution,
    Candidate,
    ProposalCounts,
    Refused,
    RunSummary,
    StepRecord,
)
from opro.problems.spec import EngineSpec
from opro.types import FINISHED, Completion, Request, Status, StopReason

S = TypeVar("S")

MAX_STORED_OUTPUT = 64_000
"""Characters of one optimizer output kept in steps.jsonl; the rest is cut, with a mark (a
1 MB reply would grow the run dir by megabytes a step)."""


def stored_output(text: str) -> str:
    """``text`` as steps.jsonl keeps it: whole up to ``MAX_STORED_OUTPUT`` characters, else
    its start and a mark saying how much was cut."""
    if len(text) <= MAX_STORED_OUTPUT:
        return text
    cut = len(text) - MAX_STORED_OUTPUT
    return f"{text[:MAX_STORED_OUTPUT]}\n[opro: output truncated, {cut} more characters]"


class Recorder(Protocol):
    """Where a run's records go (``opro.runlog.RunDir``, or ``MemoryRecorder``)."""

    def read_steps(self) -> list[StepRecord]:
        """The complete steps recorded so far, in order."""

    def append_step(self, record: StepRecord) -> None: ...

    def write_summary(self, summary: RunSummary) -> None: ...


class Meter(Protocol):
    """What the run has spent (``opro.llm.usage.Budget``)."""

    @property
    def elapsed_s(self) -> float: ...

    def usage(self) -> dict[str, RoleUsage]: ...


class MemoryRecorder:
    """Records kept in memory: a run that needs no directory (tests, notebooks)."""

    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.summary: RunSummary | None = None

    def read_steps(self) -> list[StepRecord]:
        return list(self.steps)

    def append_step(self, record: StepRecord) -> None:
        self.steps.append(record)

    def write_summary(self, summary: RunSummary) -> None:
        self.summary = summary


class Stopwatch:
    """The meter of a run without a budget: time only."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def usage(self) -> dict[str, RoleUsage]:
        return {}


@dataclass(frozen=True)
class Proposals(Generic[S]):
    """What one step's sampling gave."""

    outputs: list[str]
    candidates: list[S]
    failures: int
    duplicates: int


class Optimizer(Generic[S]):
    def __init__(
        self,
        problem: Problem[S],
        llm: LLM,
        engine: EngineSpec,
        recorder: Recorder,
        meter: Meter | None = None,
        *,
        optimum_at: int | None = None,
    ) -> None:
        """``optimum_at``: the step a stored summary says reached a known optimum, for
        records that do not mark it (format 1)."""
        self.problem = problem
        self.llm = llm
        self.engine = engine
        self.recorder = recorder
        self.meter: Meter = meter or Stopwatch()
        self.history: History[S] = History(problem.direction)
        self.steps_done = -1
        self.first_optimal_step = optimum_at
        self.best_step = 0
        self.proposals = ProposalCounts()
        """What the proposals of the steps so far came to (restored ones included)."""
        self._start: float | None = None

    # -- resume -------------------------------------------------------------------------

    def restore(self, records: list[StepRecord]) -> None:
        """Rebuild the history from recorded steps."""
        for record in records:
            self._absorb(record)

    def _absorb(self, record: StepRecord) -> None:
        if record.step == 0:
            self._start = record.best_score
        self.proposals = self.proposals.plus(record, self._start, self.problem.direction)
        before = self.history.best()
        for c in record.candidates:
            solution = self.problem.from_json(c.solution)
            key = self.problem.canonical(solution)
            entry = Scored(solution, key, c.score, record.step, c.details, c.partial is not None)
            self.history.add(entry)
        for refused in record.invalid:
            key = self.problem.canonical(self.problem.from_json(refused.solution))
            self.history.refuse(key, refused.reason)
        if self.first_optimal_step is None and any(c.optimal for c in record.candidates):
            self.first_optimal_step = record.step
        after = self.history.best()
        if after is not None and (before is None or self.history.better(after.score, before.score)):
            self.best_step = record.step
        self.steps_done = record.step

    # -- the loop ---------------------------------------------------------------------

    def stop_reason(self) -> StopReason | None:
        if self.first_optimal_step is not None:
            return "optimum"
        if self.steps_done >= self.engine.steps:
            return "max_steps"
        patience = self.engine.patience
        if patience is not None and self.steps_done - self.best_step >= patience:
            return "patience"
        return None

    async def run(self) -> RunSummary:
        """Continue from the recorded steps to a stop; the final summary (also recorded).

        Whatever ends the run, its summary says so: an interruption (Ctrl-C, SIGTERM: the
        task is cancelled) is recorded as stopped, ``interrupted``, a failure of the user's
        code (a metric) as stopped, ``user_code``, and any other error (a full disk, a bug)
        as stopped, ``error``, before it propagates — never a run left "running" that is
        not."""
        self.restore(self.recorder.read_steps())
        try:
            return await self._run()
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._abandon("interrupted", "interrupted")
            raise
        except UserCodeError as exc:  # the user's function failed: fixed, the run resumes
            self._abandon("user_code", str(exc))
            raise
        except Exception as exc:
            self._abandon("error", str(exc) or type(exc).__name__)
            raise

    def _abandon(self, reason: StopReason, message: str) -> None:
        """Record a stop the loop did not choose; a record that cannot be written (the disk
        that failed) leaves the last one, and the error that stopped the run says why."""
        with contextlib.suppress(Exception):
            self.recorder.write_summary(self.summary("stopped", reason, message))

    async def _run(self) -> RunSummary:
        message = ""
        reason: StopReason | None
        while (reason := self.stop_reason()) is None:
            try:
                record = await (self._initial_step() if self.steps_done < 0 else self.step())
            except BudgetExceeded as exc:
                reason, message = "budget", str(exc)
                break
            except LLMError as exc:
                reason, message = "llm_error", str(exc)
                break
            self.recorder.append_step(record)
            self._absorb(record)
            self.recorder.write_summary(self.summary("running", "running", ""))
        final: Mapping[str, object] = {}
        if reason in FINISHED:
            try:
                final = await self.problem.finalize(self.history)
            except BudgetExceeded as exc:
                reason, message = "budget", f"{exc} (during the final evaluation)"
            except LLMError as exc:
                reason, message = "llm_error", f"{exc} (during the final evaluation)"
        status: Status = "finished" if reason in FINISHED else "stopped"
        summary = self.summary(status, reason, message, final)
        self.recorder.write_summary(summary)
        return summary

    async def _initial_step(self) -> StepRecord:
        started = time.monotonic()
        rng = np.random.default_rng([self.engine.seed, 0])
        solutions, duplicates, keys = [], 0, set()
        for solution in self.problem.initial_solutions(rng):
            key = self.problem.canonical(solution)
            if key in keys:
                duplicates += 1
                continue
            keys.add(key)
            solutions.append(solution)
        evaluations = await self.problem.score(solutions, ScoringContext(0))
        proposals = Proposals([], solutions, 0, duplicates)
        return self._record(0, None, 0.0, proposals, evaluations, started)

    async def step(self) -> StepRecord:
        started = time.monotonic()
        number = self.steps_done + 1
        rng = np.random.default_rng([self.engine.seed, number])
        meta_prompt = render_meta_prompt(self.problem, self.history, self.engine, rng)
        temperature = self.engine.temperature_at(number)
        proposals = await self._propose(meta_prompt, number, temperature)
        candidates = proposals.candidates
        context = ScoringContext(number, self._bar())
        evaluations = await self.problem.score(candidates, context) if candidates else []
        return self._record(number, meta_prompt, temperature, proposals, evaluations, started)

    def _bar(self) -> float | None:
        """The score a new solution must reach to be shown in the next meta-prompt: the
        worst of the ``top_k`` shown once there are that many, or the score threshold;
        None while any score would be shown. (A step's own candidates only raise it.)"""
        engine = self.engine
        shown = self.history.top_k(engine.top_k, threshold=engine.score_threshold)
        bars = [engine.score_threshold] if engine.score_threshold is not None else []
        if len(shown) >= engine.top_k:
            bars.append(shown[0].score)
        return max(bars, key=self.history.quality) if bars else None

    async def _propose(self, meta_prompt: str, number: int, temperature: float) -> Proposals[S]:
        """Samples until ``samples_per_step`` new valid solutions, or the attempt cap
        (``attempts.draw``: as if drawn one at a time, each started once sure to be needed)."""
        engine, fmt = self.engine, self.problem.proposal
        grammar = fmt.grammar if engine.constrained else None
        seed = int(np.random.default_rng([engine.seed, number, 1]).integers(2**31 - 1))

        def start(sample: int) -> Awaitable[Completion]:
            request = Request(
                meta_prompt,
                engine.tokens,
                temperature,
                fmt.stops,
                sample,
                seed,
                grammar=grammar,
                shape=fmt.shape,
            )
            return self.llm.complete(request)

        parsed: dict[int, S | None] = {}  # by id: each output is parsed once, judged or taken

        def parse(completion: Completion) -> S | None:
            if id(completion) not in parsed:
                answer = fmt.answer(completion.text, completion.finish_reason)
                parsed[id(completion)] = self.problem.parse(answer)
            return parsed[id(completion)]

        def judge(completion: Completion) -> str | None:
            solution = parse(completion)
            key = None if solution is None else self.problem.canonical(solution)
            return None if key is None or self.history.seen(key) else key

        wanted = engine.samples_per_step
        cap = engine.max_attempts_per_step or wanted
        completions = await attempts.draw(start, judge, wanted, cap)
        candidates: list[S] = []
        keys: set[str] = set()
        failures = duplicates = 0
        for completion in completions:
            solution = parse(completion)
            if solution is None:
                failures += 1
                continue
            key = self.problem.canonical(solution)
            if key in keys or self.history.seen(key):
                duplicates += 1
                continue
            keys.add(key)
            candidates.append(solution)
        return Proposals([c.text for c in completions], candidates, failures, duplicates)

    def _record(
        self,
        number: int,
        meta_prompt: str | None,
        temperature: float,
        proposals: Proposals[S],
        evaluations: Sequence[SolutionScore | Invalid],
        started: float,
    ) -> StepRecord:
        pairs = list(zip(proposals.candidates, evaluations, strict=True))
        scored = [(s, e) for s, e in pairs if isinstance(e, SolutionScore)]
        problem = self.problem
        candidates = tuple(
            Candidate(problem.to_json(s), problem.render(s), e.score, e.details,
                      partial=e.partial, optimal=e.optimal and e.partial is None)
            for s, e in scored
        )  # fmt: skip
        invalid = tuple(
            Refused(problem.to_json(s), problem.render(s), e.reason)
            for s, e in pairs
            if isinstance(e, Invalid)
        )
        previous = self.history.best()
        contenders = [e.score for _, e in scored if e.partial is None]
        contenders += [] if previous is None else [previous.score]
        return StepRecord(
            step=number,
            temperature=temperature,
            meta_prompt=meta_prompt,
            outputs=tuple(stored_output(o) for o in proposals.outputs),
            candidates=candidates,
            parse_failures=proposals.failures,
            duplicates=proposals.duplicates,
            best_score=max(contenders, key=self.history.quality) if contenders else None,
            step_seconds=round(time.monotonic() - started, 3),
            elapsed_s=round(self.meter.elapsed_s, 3),
            usage=self.meter.usage(),
            invalid=invalid,
        )

    def summary(
        self,
        status: Status,
        reason: StopReason,
        message: str,
        final: Mapping[str, Any] | None = None,
    ) -> RunSummary:
        best = self.history.best()
        return RunSummary(
            status=status,
            stop_reason=reason,
            message=message,
            steps_completed=max(self.steps_done, 0),
            best=None
            if best is None
            else BestSolution(
                self.problem.to_json(best.solution),
                self.problem.render(best.solution),
                best.score,
                best.step,
            ),
            first_optimal_step=self.first_optimal_step,
            solutions_evaluated=len(self.history),
            usage=self.meter.usage(),
            elapsed_s=round(self.meter.elapsed_s, 3),
            details={**self.problem.summary(self.history).model_dump(), **(final or {})},
            proposals=self.proposals,
        )
