"""opro: Optimization by PROmpting — large language models as optimizers.

Public API re-exports only; see ``opro.api`` for the jobs and ``opro.llm`` for the LLM layer.
"""

from opro.api import (
    Samples,
    acomplete,
    arun_linreg,
    arun_tsp,
    complete,
    open_cache,
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
from opro.optimizer import EngineConfig, RunResult
from opro.types import Completion, Request, Usage

__all__ = [
    "BudgetConfig",
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "EngineConfig",
    "FatalLLMError",
    "LLMConfig",
    "LLMError",
    "OproError",
    "Request",
    "RetriesExhausted",
    "RunResult",
    "Samples",
    "Usage",
    "acomplete",
    "arun_linreg",
    "arun_tsp",
    "complete",
    "open_cache",
    "resume",
    "run_linreg",
    "run_tsp",
]
