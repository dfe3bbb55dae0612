"""opro: Optimization by PROmpting — large language models as optimizers.

Public API re-exports only. A run is a spec run by the runner::

    import opro
    spec = opro.InstructionsSpec(dataset="bbh:navigate", engine={"steps": 10})
    result = opro.start(spec, opro.RunOptions(out="runs/navigate"))

See ``opro.api`` (sync forms, evaluate, complete, report), ``opro.runner`` (start/resume)
and ``opro.problems`` (the kinds and their specs).
"""

from importlib.metadata import version as _version

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
from opro.eval.metrics import score_answer
from opro.llm.config import LLMConfig
from opro.llm.usage import Caps
from opro.problems.instructions.spec import InstructionsEngine, InstructionsSpec
from opro.problems.linreg import LinregEngine, LinregSpec
from opro.problems.records import RunSummary, StepRecord
from opro.problems.runs import JobSummary
from opro.problems.spec import EngineSpec, RunSpec, build_spec
from opro.problems.tsp import TspEngine, TspSpec
from opro.progress import NoProgress, Progress, RunEnd, RunStart, Snapshot
from opro.runner import RunOptions, RunResult, aresume, astart
from opro.types import Completion, Request, Usage

__version__ = _version("opro")
"""The installed version (pyproject.toml holds it; ``opro --version`` prints it)."""

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
