"""Where a prompt may take another's KV cells: the rule that keeps shared prompts exact.

The embedded model's batch engine (``batch.py``) reads each prompt alone, so that a
request's text does not depend on what else runs. Many prompts begin alike: one question
under the 8 instructions of a step (A_begin, Q_end), one meta-prompt for 8 samples. A
prompt that begins as a seated sequence's does takes the KV cells of the shared start from
that sequence (a copy of its stream, cut) and reads only the rest, so the start is read once.

The rest must come out as a whole read's numbers. llama.cpp's CPU matrix kernels take a
batch's rows in groups of ``ROW_GROUP``, treat the rows past the last full group apart, and
run other kernels for batches under ``PAD_ROWS`` rows; a row's numbers depend on nothing
else. So a prompt read in pieces that start at multiples of 4 and hold at least 8 rows gets
every number of a whole read (checked bit for bit on BBH prompts split at many points; a
split at 37, or a last piece of 3 rows, changes the logits). The prompt is read in
``n_batch`` chunks anyway, so the first piece after the cut ends at the next multiple of
``n_batch`` (or the prompt's end). ``tests/test_local_batch.py`` holds the engine to it: the
same texts alone and sharing, and the first token of llama-cpp-python's own read.

A sliding-window layer (gemma 3) keeps ``n_swa + n_ubatch`` cells or more per stream and
reuses the oldest past that, so a donor longer than that may no longer hold its first
cells in order: it is not used.
"""

from __future__ import annotations

import numpy as np

PAD_ROWS = 8
"""The fewest rows a piece of a prompt may hold (fewer take other kernels)."""
ROW_GROUP = 4
"""llama.cpp's matrix kernels take rows in groups of this many: a cut is a multiple of it."""
MIN_SHARED = 16
"""The fewest prompt tokens worth copying: a copy moves a whole KV stream (about 18 MB at
``n_ctx`` 2048)."""


def common_length(a: list[int], b: list[int], limit: int) -> int:
    """How many first tokens ``a`` and ``b`` share, at most ``limit``."""
    n = min(len(a), len(b), limit)
    if n <= 0:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if differ.size else n


def cut_point(prompt_length: int, shared: int, n_batch: int) -> int:
    """The most tokens of a prompt of ``prompt_length`` that may be copied, of the ``shared``
    first ones it has in common with a donor: a multiple of ``ROW_GROUP`` after which the
    first piece read (up to the next multiple of ``n_batch``, or the end) holds at least
    ``PAD_ROWS`` tokens. 0 when none is."""
    cut = min(shared, prompt_length - PAD_ROWS) // ROW_GROUP * ROW_GROUP
    while cut > 0 and min(prompt_length, (cut // n_batch + 1) * n_batch) - cut < PAD_ROWS:
        cut -= ROW_GROUP
    return max(cut, 0)


def shareable_length(n_swa: int, n_batch: int, n_ctx: int) -> int:
    """The longest stream (prompt and answer so far) a donor may have: past ``n_swa +
    n_batch`` a sliding-window layer may have reused its first cells."""
    return n_swa + n_batch if n_swa > 0 else n_ctx
