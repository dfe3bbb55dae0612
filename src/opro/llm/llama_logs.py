"""Where llama.cpp's own output goes: its log lines to ``logging`` (debug level) instead of
the terminal, and what its C code writes to stderr captured where it must be read (the
grammar parser's complaints).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptor 2 (llama.cpp's grammar parser does);
    the text is in the yielded list once the block ends."""
    captured: list[str] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read())


@functools.cache
def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to ``logging`` (debug level) instead of stderr."""
    import llama_cpp

    llama_log = logging.getLogger("opro.llama_cpp")

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        llama_log.debug("%s", text.decode("utf-8", "replace").rstrip())

    _LOG_CALLBACKS.append(forward)  # ctypes callbacks must outlive the C library's use
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))


_LOG_CALLBACKS: list[Any] = []
