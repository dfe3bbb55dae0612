"""Importing LiteLLM the way opro needs it: offline and quiet; its price map without it."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

from pydantic import JsonValue

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"
"""The price map LiteLLM ships, which ``litellm.model_cost`` holds when loaded offline."""


def import_litellm() -> ModuleType:
    """``litellm``, imported with its network and its aiohttp sessions off; ImportError when
    it is not installed."""
    # At import LiteLLM fetches its price map from GitHub unless told not to: seconds lost and
    # warnings on stderr offline; the copy it ships is the same map, as of its release. Its
    # aiohttp sessions outlive a run's event loop (warnings at exit): httpx instead.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("DISABLE_AIOHTTP_TRANSPORT", "True")
    import litellm

    # A failure prints "Give Feedback / Get Help..." on stdout (under --json's object) unless
    # told not to; the coroutines its logging leaves un-awaited warn at exit, a block of
    # lines after opro's one-line error.
    litellm.suppress_debug_info = True
    warnings.filterwarnings(
        "ignore", message=r"coroutine '.*' was never awaited", category=RuntimeWarning
    )
    module: ModuleType = litellm  # untyped: Any to mypy
    return module


def price_map() -> dict[str, JsonValue]:
    """LiteLLM's price map (model name -> its costs per token): ``litellm.model_cost`` once
    LiteLLM is imported, else the file it loads that from, read without importing LiteLLM
    (seconds of start-up for a run that only needs a price); {} without LiteLLM."""
    module = sys.modules.get("litellm")
    if module is not None:
        table = getattr(module, "model_cost", None)
        return table if isinstance(table, dict) else {}
    return _shipped_price_map()


@functools.cache
def _shipped_price_map() -> dict[str, JsonValue]:
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):  # sys.modules holds None for it: blocked
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}
