"""opro: Optimization by PROmpting — large language models as optimizers.

Public API re-exports only. A run is a spec run by the runner::

    import opro
    spec = opro.InstructionsSpec(dataset="bbh:navigate", engine={"steps": 10})
    result = opro.start(spec, opro.RunOptions(out="runs/navigate"))

See ``opro.api`` (sync forms, evaluate, complete, report), ``opro.runner`` (start/resume)
and ``opro.problems`` (the kinds and their specs).

The names below load on first use (PEP 562): ``import opro`` itself imports nothing heavy,
so ``opro --version`` and every command start fast; ``opro.start`` then loads the runner,
a report loads the plotting, a kind its solver. ``tests/test_startup.py`` holds that.
"""

from __future__ import annotations

import importlib

# No import of typing here: a Ctrl-C in the first milliseconds of `opro` should land in
# opro's own code (which answers it in one line), not in this module's imports; type
# checkers read the name TYPE_CHECKING as true whatever its value.
TYPE_CHECKING = False
if TYPE_CHECKING:  # the static view of the lazy names below, for type checkers and IDEs
    from typing import Any

    from opro.api import (
        Evaluation,
        Samples,
        acomplete,
        aevaluate,
        complete,
        evaluate,
        instructions_from,
        open_cache,
        report,
        resume,
        run_sync,
        start,
    )
    from opro.errors import (
        BudgetExceeded,
        ConfigError,
        FatalLLMError,
        LLMError,
        OproError,
        RetriesExhausted,
    )
    from opro.eval.answers import score_answer
    from opro.llm.config import LLMConfig
    from opro.llm.usage import Caps
    from opro.problems.instructions.spec import InstructionsEngine, InstructionsSpec
    from opro.problems.jobs import JobSummary
    from opro.problems.linreg import LinregEngine, LinregSpec
    from opro.problems.objective import ObjectiveEngine, ObjectiveSpec
    from opro.problems.records import RunSummary, StepRecord
    from opro.problems.spec import EngineSpec, RunSpec, build_spec
    from opro.problems.tsp import TspEngine, TspSpec
    from opro.progress import NoProgress, Progress, RunEnd, RunStart, Snapshot
    from opro.run_values import RunOptions, RunResult
    from opro.runner import aresume, astart
    from opro.types import Completion, Request, Usage

    __version__: str

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "Evaluation",
            "Samples",
            "acomplete",
            "aevaluate",
            "complete",
            "evaluate",
            "instructions_from",
            "open_cache",
            "report",
            "resume",
            "run_sync",
            "start",
        ),
        "opro.api",
    ),
    **dict.fromkeys(
        (
            "BudgetExceeded",
            "ConfigError",
            "FatalLLMError",
            "LLMError",
            "OproError",
            "RetriesExhausted",
        ),
        "opro.errors",
    ),
    "score_answer": "opro.eval.answers",
    "LLMConfig": "opro.llm.config",
    "Caps": "opro.llm.usage",
    "InstructionsEngine": "opro.problems.instructions.spec",
    "InstructionsSpec": "opro.problems.instructions.spec",
    "LinregEngine": "opro.problems.linreg",
    "LinregSpec": "opro.problems.linreg",
    "ObjectiveEngine": "opro.problems.objective",
    "ObjectiveSpec": "opro.problems.objective",
    "RunSummary": "opro.problems.records",
    "StepRecord": "opro.problems.records",
    "JobSummary": "opro.problems.jobs",
    "EngineSpec": "opro.problems.spec",
    "RunSpec": "opro.problems.spec",
    "build_spec": "opro.problems.spec",
    "TspEngine": "opro.problems.tsp",
    "TspSpec": "opro.problems.tsp",
    **dict.fromkeys(("NoProgress", "Progress", "RunEnd", "RunStart", "Snapshot"), "opro.progress"),
    **dict.fromkeys(("RunOptions", "RunResult"), "opro.run_values"),
    **dict.fromkeys(("aresume", "astart"), "opro.runner"),
    **dict.fromkeys(("Completion", "Request", "Usage"), "opro.types"),
}
"""Public name → the module that defines it, imported when the name is first read."""


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("opro")  # pyproject.toml holds it; `opro --version` prints it
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'opro' has no attribute {name!r}")
    globals()[name] = value  # read once: later reads are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BudgetExceeded",
    "Caps",
    "Completion",
    "ConfigError",
    "EngineSpec",
    "Evaluation",
    "FatalLLMError",
    "InstructionsEngine",
    "InstructionsSpec",
    "JobSummary",
    "LLMConfig",
    "LLMError",
    "LinregEngine",
    "LinregSpec",
    "NoProgress",
    "ObjectiveEngine",
    "ObjectiveSpec",
    "OproError",
    "Progress",
    "Request",
    "RetriesExhausted",
    "RunEnd",
    "RunOptions",
    "RunResult",
    "RunSpec",
    "RunStart",
    "RunSummary",
    "Samples",
    "Snapshot",
    "StepRecord",
    "TspEngine",
    "TspSpec",
    "Usage",
    "__version__",
    "acomplete",
    "aevaluate",
    "aresume",
    "astart",
    "build_spec",
    "complete",
    "evaluate",
    "instructions_from",
    "open_cache",
    "report",
    "resume",
    "run_sync",
    "score_answer",
    "start",
]
