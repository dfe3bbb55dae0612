"""One module per tool: ``run(job) -> Found``, run by tool.py in a process of its own.

Every adapter gets the same job (the exported training fold, a budget of training-phase
scorer calls, a seed, the proxy's two base URLs) and returns the instruction its tool found.
Every tool's metric is ``opro.score_answer`` (strict) on the scorer's raw answer; every
scorer call it makes is one question under one instruction, sent through the proxy's scorer
port as ``[system: instruction, user: question]`` (opro: its own completion prompt), which
the proxy renders into opro's scorer prompt.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import opro

TOOLS = {
    "opro": "opro_fair",
    "opro-native": "opro_fair",  # embedded, in its own process: outside the comparison
    "opro-redraw": "opro_fair",  # the same, drawing again for proposals that did not parse
    "opro-chat": "opro_fair",  # the optimizer through the chat API, as every peer's
    "opro-constrained": "opro_fair",  # the optimizer's proposals held to the form (grammar)
    "opro-pool": "opro_fair",  # the fair row started from EvoPromptGA's and CAPO's pool
    "promptolution-opro": "promptolution_tools",
    "promptolution-evoga": "promptolution_tools",
    "promptolution-capo": "promptolution_tools",
    "dspy-copro": "dspy_tools",
    "dspy-mipro": "dspy_tools",
    "dspy-gepa": "dspy_tools",
    "gepa": "gepa_standalone",
    "textgrad": "textgrad_tool",
}
"""Tool name -> its adapter module (in this package)."""

MODEL = "gemma3-270m"


@dataclass(frozen=True)
class Job:
    tool: str
    task: str
    train: str
    """The exported training fold (JSON lines; folds.py)."""
    budget: int
    """Training-phase scorer calls the tool is configured to spend (counted at the proxy)."""
    seed: int
    scorer_url: str
    optimizer_url: str
    work: str
    """A folder of the tool's own (its run directory, logs)."""
    as_user: bool = False
    """Run with the tool's own defaults for what a restart keeps (its caches, its state on
    disk) instead of the comparison's settings: the kill-halfway measurement (run.py
    --kill-halfway). The tool's calls and budget are the same."""
    restart: bool = False
    """This process restarts a run that was killed in ``work``, as the tool's docs say to
    continue one (a tool without a way to continue runs again from the start)."""

    def rows(self) -> list[dict[str, Any]]:
        text = Path(self.train).read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Found:
    instruction: str
    settings: dict[str, Any]
    """What the tool was configured with (the budget's translation into its own knobs)."""
    planned_scorer_calls: int
    optimize_s: float = 0.0
    """Wall time of the optimisation call alone (imports and set-up excluded)."""
    train_accuracy: float | None = None
    """The found instruction's training accuracy, as the tool reports it."""
    parse_failures: int = 0
    """Optimizer replies the tool could not parse (and what it did then: notes)."""
    notes: list[str] = field(default_factory=list)
    own_scorer_calls: int | None = None
    """Training scorer calls the tool counted itself: only for a run whose calls do not
    reach the proxy (opro native)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Adapter(Protocol):
    def run(self, job: Job) -> Found: ...


def adapter(tool: str) -> Adapter:
    module: Any = importlib.import_module(f"adapters.{TOOLS[tool]}")
    return module  # type: ignore[no-any-return]


def correct(prediction: str, row: dict[str, Any]) -> bool:
    """The metric every tool uses: opro's strict answer check."""
    return opro.score_answer(prediction, row["answer"], kind=row["kind"], question=row["question"])


POOL = ("", "Answer with the option letter.", "Let's think step by step.", "The answer is")
"""The frozen starting population of the tools that need one (EvoPromptGA, CAPO), and of
opro-pool (opro started from the same, to tell the pool's part from the optimizer's)."""


def proposals(budget: int, n_train: int, starts: int = 1) -> tuple[int, int]:
    """(steps, proposals per step) of an OPRO-like tool for ``budget`` scorer calls: the
    ``starts`` and each proposal are scored on the whole training fold; at most 8 per step,
    as in the paper."""
    total = max(1, budget // n_train - starts)
    per_step = min(8, total)
    return max(1, total // per_step), per_step
