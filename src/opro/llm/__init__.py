"""The LLM layer: one async contract, backends chosen by spec string, and the wrappers
(cache, retries, concurrency, budget) that make them fit for a run."""

from opro.llm.base import LLM, BackendOptions
from opro.llm.cache import CallCache
from opro.llm.limits import RetryPolicy
from opro.llm.stack import ManagedLLM, StackOptions, build_llm

__all__ = [
    "LLM",
    "BackendOptions",
    "CallCache",
    "ManagedLLM",
    "RetryPolicy",
    "StackOptions",
    "build_llm",
]
