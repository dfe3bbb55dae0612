"""The persistent call cache: SQLite, keyed on the whole request and the LLM's identity.

The key covers everything that determines an answer — backend spec, base URL, API style,
prompt, temperature, max_tokens, stop, seed, grammar and the sample index — so 8 samples
at temperature 1 are 8 entries, and a rerun or a resumed run replays them for free. The
API key is never part of the key nor of the value. Only successful completions are stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from opro.errors import ConfigError
from opro.llm.base import Identity
from opro.types import Completion, Request

SCHEMA_VERSION = 1
logger = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$OPRO_CACHE_DIR/calls.sqlite``, else the user cache dir (e.g. ~/.cache/opro)."""
    root = os.environ.get("OPRO_CACHE_DIR") or platformdirs.user_cache_dir("opro")
    return Path(root) / "calls.sqlite"


def open_cache(cache: Path | str | None, *, enabled: bool = True) -> CallCache | None:
    """The call cache at ``cache`` (default: ``default_cache_path``), or None when disabled:
    the one way a run, the API and the CLI open it."""
    if not enabled:
        return None
    return CallCache(Path(cache) if cache is not None else default_cache_path())


def cache_key(identity: Identity, request: Request) -> str:
    blob = json.dumps(
        {"v": SCHEMA_VERSION, "llm": identity, "request": request.to_json()},
        sort_keys=True,
        ensure_ascii=False,
    )
    # A lone surrogate (from invalid UTF-8 in an argument, or "\\ud800" in JSON) is hashed as
    # is: no text makes the key fail.
    return hashlib.sha256(blob.encode("utf-8", errors="surrogatepass")).hexdigest()


def _looks_like_sqlite(path: Path) -> bool:
    """Whether ``path`` starts as an SQLite database does (a damaged one, for instance)."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


@dataclass(frozen=True)
class CacheStats:
    path: Path
    entries: int
    size_bytes: int


class CallCache:
    """A SQLite table ``key → completion JSON``; safe to share between processes (WAL).

    The file is opened (and made) at the first call that needs it, so a command that makes
    no call leaves no cache behind. A cache that fails (a read-only file, a full disk, a
    corrupt row) never fails a run: the failure is logged once, that entry is a miss, and a
    cache that cannot be written is only read for the rest of the process (one that cannot
    be read is left alone).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._disabled = False
        self._unwritable = False
        self._warned = False
        existing = next(p for p in self.path.parents if p.exists())
        if self.path.is_dir() or not existing.is_dir():
            raise ConfigError(
                f"cannot use {self.path} as the call cache (not a file path): give another "
                "file as `cache`, or `use_cache=False`"
            )

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None and not self._disabled and (create or self.path.exists()):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS calls ("
                    "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
                )
                db.commit()
            except (OSError, sqlite3.Error) as exc:
                self._fail(exc)
                return None
            self._db = db
        return self._db

    def _fail(self, exc: Exception) -> None:
        """Stop using the cache (results still flow); say so once."""
        self._warn(exc)
        self._disabled = True

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            logger.warning(
                "opro: the call cache at %s failed (%s): going on without it; pass --cache "
                "PATH to use another file, or --no-cache",
                self.path,
                exc,
            )
        self._warned = True

    def get(self, key: str) -> Completion | None:
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return None
            try:
                row = db.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                self._fail(exc)
                return None
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return Completion.from_json(data, cached=True)
        except (ValueError, TypeError, KeyError, RecursionError):  # a miss, rewritten later
            logger.warning("opro: a corrupt entry in the call cache %s is ignored", self.path)
            return None

    def put(self, key: str, completion: Completion) -> None:
        if self._unwritable:
            return
        value = json.dumps(completion.to_json(), ensure_ascii=False)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: SQLite takes only UTF-8
                value = json.dumps(completion.to_json())
        with self._lock:
            db = self._connect(create=True)
            if db is None:
                return
            try:
                db.execute(
                    "INSERT OR REPLACE INTO calls (key, value, created) VALUES (?, ?, ?)",
                    (key, value, time.time()),
                )
                db.commit()
            except sqlite3.Error as exc:
                # Read-only, or a full disk: what is cached still answers; nothing more is
                # written (nor retried at every call) for the rest of the process.
                self._warn(exc)
                self._unwritable = True
                with contextlib.suppress(sqlite3.Error):
                    db.rollback()

    def stats(self) -> CacheStats:
        """The entries and size on disk; a ``ConfigError`` (one line) where the file cannot be
        read as a call cache. Nothing is made where no cache is yet."""
        if not self.path.exists():
            return CacheStats(self.path, 0, 0)
        with self._lock:
            try:
                db = sqlite3.connect(self.path, timeout=30)  # reads a read-only file too
                try:
                    (entries,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
                finally:
                    db.close()
            except sqlite3.Error as exc:
                raise self._unusable(exc) from None
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return CacheStats(self.path, int(entries), size)

    def clear(self) -> int | None:
        """Remove every entry: their count; None where the file was a damaged database (or
        an unreadable file at the default place), which is removed whole. A read-only cache,
        or a file that is no call cache, is a ``ConfigError`` and left as it is."""
        if not self.path.exists():
            return 0
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            try:
                db = sqlite3.connect(self.path, timeout=30)
                try:
                    (entries,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
                    db.execute("DELETE FROM calls")
                    db.commit()
                    db.execute("VACUUM")
                finally:
                    db.close()
            except sqlite3.OperationalError as exc:  # read-only, locked, no `calls` table
                raise self._unusable(exc) from None
            except sqlite3.DatabaseError as exc:  # not a database, or a malformed one
                if not (_looks_like_sqlite(self.path) or self.path == default_cache_path()):
                    raise self._unusable(exc) from None
                for suffix in ("", "-wal", "-shm", "-journal"):
                    with contextlib.suppress(FileNotFoundError):
                        Path(f"{self.path}{suffix}").unlink()
                return None
        return int(entries)

    def _unusable(self, exc: sqlite3.Error) -> ConfigError:
        why = " ".join(str(exc).split())
        if "no such table" in why:
            return ConfigError(
                f"{self.path} is an SQLite database but no call cache (it has no `calls` "
                "table): name the cache file, or remove this one yourself"
            )
        if isinstance(exc, sqlite3.OperationalError):
            return ConfigError(
                f"cannot use the call cache at {self.path} ({why}): make it and its folder "
                "writable, or name another file"
            )
        fix = (
            f"`opro cache clear --cache {self.path}` removes it"
            if _looks_like_sqlite(self.path) or self.path == default_cache_path()
            else "it is not an SQLite file: name the cache file, or remove this one yourself"
        )
        return ConfigError(f"the call cache at {self.path} is damaged ({why}): {fix}")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
