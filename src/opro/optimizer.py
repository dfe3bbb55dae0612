"""The OPRO loop: propose → parse → dedupe → score → record → stop?

Step 0 scores the starting solutions. Each later step renders the meta-prompt from the
history, draws ``samples_per_step`` samples at temperature T (sample indices 0..N-1, a seed
derived from the run seed and the step, so the cache replays a resumed step exactly),
parses them (a failure is counted, never raised), drops anything seen before, scores the
rest concurrently and appends one record to ``steps.jsonl``. A step is the unit of resume:
a step cut short by a kill, a budget cap or an LLM failure is simply done again.
A ``Progress`` observer hears of each recorded step (``opro.progress``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np

from opro.budget import Budget, RoleUsage
from opro.errors import BudgetExceeded, ConfigError, LLMError
from opro.history import History, Scored
from opro.llm.base import LLM, gather_or_cancel
from opro.meta_prompt import MetaPromptOptions, render_meta_prompt
from opro.problems.base import Problem
from opro.progress import NoProgress, Progress, RunEnd, RunStart, Snapshot, eta
from opro.runlog import RunDir
from opro.types import Completion, Request

S = TypeVar("S")
FINISHED = ("max_steps", "optimum", "patience")


@dataclass(frozen=True)
class EngineConfig:
    steps: int = 500
    samples_per_step: int = 8
    max_attempts_per_step: int | None = None
    """Samples drawn at most per step to collect ``samples_per_step`` valid new solutions
    (default: ``samples_per_step``, one round, as the paper's linear regression)."""
    temperature: float = 1.0
    temperature_end: float | None = None
    """If set, the temperature moves linearly from ``temperature`` to this by the last step."""
    meta: MetaPromptOptions = field(default_factory=MetaPromptOptions)
    patience: int | None = None
    """Stop after this many steps without a better best score."""
    max_tokens: int = 256
    constrained: bool = False
    """Constrain proposals with the problem's GBNF grammar (embedded models, llama.cpp)."""
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "--steps must be >= 1": self.steps >= 1,
            "--samples-per-step must be >= 1": self.samples_per_step >= 1,
            "--max-attempts-per-step must be >= --samples-per-step": (
                self.max_attempts_per_step is None
                or self.max_attempts_per_step >= self.samples_per_step
            ),
            "--top-k must be >= 1": self.meta.top_k >= 1,
            "--max-tokens must be >= 1": self.max_tokens >= 1,
            "--patience must be >= 1": self.patience is None or self.patience >= 1,
            "--temperature and --temperature-end must be within [0, 2]": (
                0 <= self.temperature <= 2
                and (self.temperature_end is None or 0 <= self.temperature_end <= 2)
            ),
        }
        for rule, ok in checks.items():
            if not ok:
                raise ConfigError(rule)

    def temperature_at(self, step: int) -> float:
        if self.temperature_end is None or self.steps <= 1:
            return self.temperature
        fraction = (step - 1) / (self.steps - 1)
        return self.temperature + (self.temperature_end - self.temperature) * fraction


@dataclass(frozen=True)
class RunResult:
    run_dir: str
    status: str
    """``finished`` (max steps, optimum, patience) or ``stopped`` (budget, LLM failure)."""
    stop_reason: str
    message: str
    steps_completed: int
    best_solution: Any
    best_score: float | None
    summary: dict[str, Any]


class Optimizer(Generic[S]):
    def __init__(
        self,
        problem: Problem[S],
        llm: LLM,
        config: EngineConfig,
        run: RunDir,
        budget: Budget,
        progress: Progress | None = None,
    ) -> None:
        self.problem = problem
        self.llm = llm
        self.config = config
        self.run_dir = run
        self.budget = budget
        self.progress: Progress = progress or NoProgress()
        self._step_seconds: list[float] = []
        """Durations of the steps recorded in this session (for the ETA)."""
        self._shown: tuple[Snapshot, float] | None = None
        """The last step's snapshot and when it was taken (one value, for ``live``)."""
        self.history: History[S] = History(problem.direction)
        self.steps_done = -1
        self.first_optimal_step: int | None = None
        self.best_step = 0

    # -- resume -------------------------------------------------------------------------

    def restore(self) -> None:
        """Rebuild the history and usage from the complete steps on disk."""
        self.run_dir.truncate_partial()
        records = self.run_dir.read_steps()
        for record in records:
            self._absorb(record)
        if records:
            last = records[-1]
            self.budget.restore(
                {role: RoleUsage.from_json(u) for role, u in last["usage"].items()},
                float(last["elapsed_s"]),
            )

    def _absorb(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        before = self.history.best()
        for c in record["candidates"]:
            solution = self.problem.from_json(c["solution"])
            score = float(c["score"])
            if c.get("details") is not None:
                self.problem.restore_details(solution, c["details"])
            self.history.add(Scored(solution, self.problem.canonical(solution), score, step))
            if self.first_optimal_step is None and self.problem.is_optimal(solution, score):
                self.first_optimal_step = step
        after = self.history.best()
        if after is not None and (before is None or self.history.better(after.score, before.score)):
            self.best_step = step
        self.steps_done = step

    # -- the loop ---------------------------------------------------------------------

    def _stop_reason(self) -> str | None:
        if self.first_optimal_step is not None:
            return "optimum"
        if self.steps_done >= self.config.steps:
            return "max_steps"
        patience = self.config.patience
        if patience is not None and self.steps_done - self.best_step >= patience:
            return "patience"
        return None

    async def run(self) -> RunResult:
        self.restore()
        last_step = self.steps_done if self.steps_done >= 0 else None
        self._show()
        self.progress.run_started(
            RunStart(str(self.run_dir.path), self.config.steps, last_step), self.live
        )
        message = ""
        while True:
            reason = self._stop_reason()
            if reason is not None:
                break
            began = time.monotonic()
            try:
                record = await (self._initial_step() if self.steps_done < 0 else self.step())
            except BudgetExceeded as exc:
                reason, message = "budget", str(exc)
                break
            except LLMError as exc:
                reason, message = "llm_error", str(exc)
                break
            self.run_dir.append_step(record)
            self._absorb(record)
            self.run_dir.write_summary(self.summary("running", "running", ""))
            self._step_seconds.append(time.monotonic() - began)
            self.progress.step_finished(self._show())
        final: dict[str, Any] = {}
        if reason in FINISHED:
            try:
                final = await self.problem.finalize(self.history)
            except BudgetExceeded as exc:
                reason, message = "budget", f"{exc} (during the final evaluation)"
            except LLMError as exc:
                reason, message = "llm_error", f"{exc} (during the final evaluation)"
        status = "finished" if reason in FINISHED else "stopped"
        summary = self.summary(status, reason, message) | final
        self.run_dir.write_summary(summary)
        end = replace(self._show(), eta_s=0.0 if status == "finished" else None)
        self.progress.run_finished(RunEnd(str(self.run_dir.path), status, reason, end))
        best = self.history.best()
        return RunResult(
            run_dir=str(self.run_dir.path),
            status=status,
            stop_reason=reason,
            message=message,
            steps_completed=max(self.steps_done, 0),
            best_solution=None if best is None else best.solution,
            best_score=None if best is None else best.score,
            summary=summary,
        )

    async def _initial_step(self) -> dict[str, Any]:
        started = time.monotonic()
        rng = np.random.default_rng([self.config.seed, 0])
        solutions, duplicates, keys = [], 0, set()
        for solution in self.problem.initial_solutions(rng):
            key = self.problem.canonical(solution)
            if key in keys:
                duplicates += 1
                continue
            keys.add(key)
            solutions.append(solution)
        scores = await self.problem.score(solutions)
        return self._record(0, None, 0.0, [], solutions, scores, 0, duplicates, started)

    async def step(self) -> dict[str, Any]:
        started = time.monotonic()
        number = self.steps_done + 1
        config = self.config
        rng = np.random.default_rng([config.seed, number])
        meta_prompt = render_meta_prompt(self.problem, self.history, config.meta, rng)
        temperature = config.temperature_at(number)
        grammar = self.problem.grammar() if config.constrained else None
        seed = int(np.random.default_rng([config.seed, number, 1]).integers(2**31 - 1))
        wanted = config.samples_per_step
        max_attempts = config.max_attempts_per_step or wanted
        outputs: list[str] = []
        candidates: list[S] = []
        keys: set[str] = set()
        failures = duplicates = 0
        while len(candidates) < wanted and len(outputs) < max_attempts:
            draw = min(wanted - len(candidates), max_attempts - len(outputs))
            requests = [
                Request(
                    meta_prompt,
                    config.max_tokens,
                    temperature,
                    self.problem.stop_sequences(),
                    len(outputs) + i,
                    seed,
                    grammar=grammar,
                )
                for i in range(draw)
            ]
            completions: list[Completion] = await gather_or_cancel(
                [self.llm.complete(r) for r in requests]
            )
            for completion in completions:
                outputs.append(completion.text)
                solution = self.problem.parse(completion.text)
                if solution is None:
                    failures += 1
                    continue
                key = self.problem.canonical(solution)
                if key in keys or self.history.seen(key):
                    duplicates += 1
                    continue
                keys.add(key)
                candidates.append(solution)
        scores = await self.problem.score(candidates) if candidates else []
        return self._record(
            number,
            meta_prompt,
            temperature,
            outputs,
            candidates,
            scores,
            failures,
            duplicates,
            started,
        )

    def _record(
        self,
        number: int,
        meta_prompt: str | None,
        temperature: float,
        outputs: list[str],
        solutions: list[S],
        scores: list[float],
        failures: int,
        duplicates: int,
        started: float,
    ) -> dict[str, Any]:
        candidates = [
            {
                "solution": self.problem.to_json(s),
                "text": self.problem.render(s),
                "score": score,
                **({} if (d := self.problem.details(s)) is None else {"details": d}),
            }
            for s, score in zip(solutions, scores, strict=True)
        ]
        previous = self.history.best()
        contenders = list(scores) + ([] if previous is None else [previous.score])
        best_score = max(contenders, key=self.history.quality) if contenders else None
        return {
            "step": number,
            "temperature": temperature,
            "meta_prompt": meta_prompt,
            "outputs": outputs,
            "candidates": candidates,
            "parse_failures": failures,
            "duplicates": duplicates,
            "best_score": best_score,
            "step_seconds": round(time.monotonic() - started, 3),
            "elapsed_s": round(self.budget.elapsed_s, 3),
            "usage": {role: u.to_json() for role, u in self.budget.usage().items()},
        }

    # -- progress ---------------------------------------------------------------------

    def _show(self) -> Snapshot:
        """The snapshot after the last recorded step, kept for ``live``."""
        best = self.history.best()
        done = self.steps_done if self.steps_done >= 0 else None
        total = self.budget.total()
        snapshot = Snapshot(
            step=done,
            steps=self.config.steps,
            best=None if best is None else best.score,
            calls=total.calls,
            cached_calls=total.cached_calls,
            tokens=total.total_tokens,
            cost_usd=total.cost_usd,
            elapsed_s=round(self.budget.elapsed_s, 3),
            eta_s=eta(self.config.steps - (done or 0), self._step_seconds),
        )
        self._shown = (snapshot, time.monotonic())
        return snapshot

    def live(self) -> Snapshot:
        """The last step's snapshot with this moment's counters; safe from any thread (it
        reads the budget, never the history)."""
        if self._shown is None:  # not started yet
            return self._show()
        shown, at = self._shown
        total = self.budget.total()
        since = time.monotonic() - at
        return replace(
            shown,
            calls=total.calls,
            cached_calls=total.cached_calls,
            tokens=total.total_tokens,
            cost_usd=total.cost_usd,
            elapsed_s=round(self.budget.elapsed_s, 3),
            eta_s=None if shown.eta_s is None else max(shown.eta_s - since, 0.0),
        )

    def summary(self, status: str, reason: str, message: str) -> dict[str, Any]:
        best = self.history.best()
        total = self.budget.total()
        return {
            "status": status,
            "stop_reason": reason,
            "message": message,
            "steps_completed": max(self.steps_done, 0),
            "best": None
            if best is None
            else {
                "solution": self.problem.to_json(best.solution),
                "text": self.problem.render(best.solution),
                "score": best.score,
                "step": best.step,
            },
            "first_optimal_step": self.first_optimal_step,
            "solutions_evaluated": len(self.history),
            "usage": {role: u.to_json() for role, u in self.budget.usage().items()},
            "calls": total.calls,
            "cached_calls": total.cached_calls,
            "retries": total.retries,
            "tokens": total.total_tokens,
            "cost_usd": total.cost_usd,
            "elapsed_s": round(self.budget.elapsed_s, 3),
            **self.problem.summary(self.history),
        }
