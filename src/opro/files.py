"""Files a user names or reads: reading bounded, and the mode of files written by rename.

A stream (``/dev/zero``, a FIFO) or a wrong multi-gigabyte file is refused at a stated size
instead of being read into memory. Each caller picks a limit far above what its file ever
holds (a sweep file, a grammar, a run dir's config.json) and words the refusal; the error is
a one-line ``ConfigError``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from opro.errors import ConfigError

MB = 1_000_000


def read_bounded(path: Path | str, limit: int, what: str) -> bytes:
    """The bytes of ``path``, or a ``ConfigError`` naming ``what`` when there are more than
    ``limit``. ``OSError`` (a missing file...) propagates for the caller to word."""
    with Path(path).open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{what} {path} is over {limit / MB:g} MB: that cannot be right")
    return data


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def make_readable(path: Path | str) -> None:
    """Give a temp file (``mkstemp`` makes it 0600) the mode ``open()`` would have given it,
    before it is renamed into place: run dirs and data are read by others (a shared
    filesystem, a Ray cluster's nodes, a teammate), as any file the user writes."""
    os.chmod(path, 0o666 & ~_umask())
