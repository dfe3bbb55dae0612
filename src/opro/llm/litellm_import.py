"""Importing LiteLLM the way opro needs it: offline and quiet."""

from __future__ import annotations

import os
from types import ModuleType


def import_litellm() -> ModuleType:
    """``litellm``, imported with its network and its aiohttp sessions off; ImportError when
    it is not installed."""
    # At import LiteLLM fetches its price map from GitHub unless told not to: seconds lost and
    # warnings on stderr offline; the copy it ships is the same map, as of its release. Its
    # aiohttp sessions outlive a run's event loop (warnings at exit): httpx instead.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("DISABLE_AIOHTTP_TRANSPORT", "True")
    import litellm

    module: ModuleType = litellm  # untyped: Any to mypy
    return module
