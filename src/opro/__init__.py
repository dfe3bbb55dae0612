"""opro: Optimization by PROmpting — large language models as optimizers.

Public API re-exports only; see ``opro.api`` for the jobs and ``opro.llm`` for the LLM layer.
"""

from opro.api import (
    Evaluation,
    Samples,
    acomplete,
    aevaluate,
    aoptimize,
    arun_linreg,
    arun_tsp,
    complete,
    evaluate,
    instructions_from,
    open_cache,
    optimize,
    resume,
    run_linreg,
    run_tsp,
)
from opro.config import BudgetConfig, LLMConfig
from opro.errors import (
    BudgetExceeded,
    ConfigError,
    FatalLLMError,
    LLMError,
    OproError,
    RetriesExhausted,
)
from opro.eval.metrics import score_answer
from opro.optimizer import EngineConfig, RunResult
from opro.progress import NoProgress, Progress, RunEnd, RunStart, Snapshot
from opro.types import Completion, Request, Usage

__all__ = [
    "BudgetConfig",
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "EngineConfig",
    "Evaluation",
    "FatalLLMError",
    "LLMConfig",
    "LLMError",
    "NoProgress",
    "OproError",
    "Progress",
    "Request",
    "RetriesExhausted",
    "RunEnd",
    "RunResult",
    "RunStart",
    "Samples",
    "Snapshot",
    "Usage",
    "acomplete",
    "aevaluate",
    "aoptimize",
    "arun_linreg",
    "arun_tsp",
    "complete",
    "evaluate",
    "instructions_from",
    "open_cache",
    "optimize",
    "resume",
    "run_linreg",
    "run_tsp",
    "score_answer",
]
