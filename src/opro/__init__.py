"""opro: Optimization by PROmpting — large language models as optimizers.

Public API re-exports only; see ``opro.api`` for the jobs and ``opro.llm`` for the LLM layer.
"""

from opro.api import Samples, acomplete, complete, open_cache
from opro.config import BudgetConfig, LLMConfig
from opro.errors import (
    BudgetExceeded,
    ConfigError,
    FatalLLMError,
    LLMError,
    OproError,
    RetriesExhausted,
)
from opro.types import Completion, Request, Usage

__all__ = [
    "BudgetConfig",
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "FatalLLMError",
    "LLMConfig",
    "LLMError",
    "OproError",
    "Request",
    "RetriesExhausted",
    "Samples",
    "Usage",
    "acomplete",
    "complete",
    "open_cache",
]
