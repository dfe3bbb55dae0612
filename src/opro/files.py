"""Files a user names or reads: reading bounded, the mode of files written by rename, and
the files inside a run dir, never reached through a link.

A stream (``/dev/zero``, a FIFO) or a wrong multi-gigabyte file is refused at a stated size
instead of being read into memory. Each caller picks a limit far above what its file ever
holds (a sweep file, a grammar, a run dir's config.json) and words the refusal; the error is
a one-line ``ConfigError``.

A run dir may come from anyone, or sit in a shared folder: a file in it (``open_inside``)
is opened with ``O_NOFOLLOW`` and must be a regular file, so a planted symbolic link, FIFO
or device is refused instead of followed; one written in place must have no other hard link.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

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


def not_regular(path: Path | str, mode: int | None) -> ConfigError:
    """The refusal of a run dir's file that is not a regular file (``mode``: its ``lstat``
    mode; None: a link found on opening)."""
    if mode is None or stat.S_ISLNK(mode):
        what = "is a symbolic link: opro follows no link inside a run dir (it could point anywhere)"
    elif stat.S_ISDIR(mode):
        what = "is a directory, not a file"
    else:
        what = "is not a regular file (a FIFO, socket or device)"
    return ConfigError(f"{path} {what}: remove it, or put the file itself there")


def check_regular(path: Path | str) -> None:
    """Nothing, or a regular file at ``path`` (not followed if a link); else the refusal."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)


def open_inside(path: Path | str, flags: int, *, write: bool = False) -> int:
    """A descriptor on ``path``, a file inside a run dir: never through a symbolic link (a
    dangling one creates nothing), a regular file only, and with ``write`` one with no other
    hard link (appending to it would change another path). A refusal is a ``ConfigError``;
    other ``OSError``s (a missing file...) propagate for the caller to word."""
    check_regular(path)  # a FIFO or device is refused before it is opened
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a link; a FIFO with no reader
            raise not_regular(path, None if exc.errno == errno.ELOOP else 0) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (write and info.st_nlink > 1):
        os.close(fd)
        if stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"{path} has another hard link: opro writes no file that another path shares: "
                "replace it with a copy of its own"
            )
        raise not_regular(path, info.st_mode)
    os.set_blocking(fd, True)
    return fd


def read_inside(path: Path | str, limit: int, what: str) -> bytes:
    """``read_bounded`` for a file inside a run dir (``open_inside``)."""
    with os.fdopen(open_inside(path, os.O_RDONLY), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{what} {path} is over {limit / MB:g} MB: that cannot be right")
    return data


def cannot_write(path: Path, exc: OSError, *, running: bool = False) -> ConfigError:
    """The one-line error for a failed write under a run dir (a full disk, permissions);
    ``running``: the run exists and can be continued once the cause is fixed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        then = "then continue the run with `opro resume`" if running else "or choose another `out`"
        return ConfigError(
            f"cannot write {path}: no space left on the device: free some space, {then}"
        )
    fix = (
        "fix that, then continue the run with `opro resume`" if running else "choose another `out`"
    )
    return ConfigError(f"cannot write {path} ({exc.strerror or exc}): {fix}")


def json_bytes(data: Any) -> bytes:
    """``data`` as the indented JSON of a run dir's files."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def write_atomic(path: Path, data: bytes, *, running: bool = False, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file and rename: never half-written, and a link
    at ``path`` is replaced, never followed. On failure the old file (if any) is intact, the
    temp file is gone, and a one-line ``ConfigError`` names the problem. ``durable``: fsync
    before the rename (a file that may be lost in a crash need not be)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise cannot_write(path, exc, running=running) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise cannot_write(path, exc, running=running) from None
        raise


def write_json_atomic(path: Path, data: Any, *, running: bool = False) -> None:
    """``write_atomic`` of ``data`` as JSON (a value JSON cannot hold raises before any
    file is made)."""
    write_atomic(path, json_bytes(data), running=running)


def lock_holder(fd: int) -> str:
    """The PID in a lock file another process holds. It writes it just after taking the
    lock: until then the file is empty or names an earlier run, so wait a moment for a
    live one."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        try:
            if text.isdigit() and 0 < int(text) < 2**31:  # 0 and -1 would name a group
                os.kill(int(text), 0)  # signal 0: only whether it is alive
                return text
        except PermissionError:
            return text  # alive, another user's
        except OSError:
            pass  # gone: an earlier run's
        time.sleep(0.025)
    return "another process"
