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
from typing import Any

import platformdirs

from opro.errors import ConfigError
from opro.types import Completion, Request

SCHEMA_VERSION = 1
logger = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$OPRO_CACHE_DIR/calls.sqlite``, else the user cache dir (e.g. ~/.cache/opro)."""
    root = os.environ.get("OPRO_CACHE_DIR") or platformdirs.user_cache_dir("opro")
    return Path(root) / "calls.sqlite"


def cache_key(identity: dict[str, Any], request: Request) -> str:
    blob = json.dumps(
        {"v": SCHEMA_VERSION, "llm": identity, "request": request.to_json()},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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

    def _open(self) -> sqlite3.Connection:
        db = self._connect(create=True)
        if db is None:
            raise ConfigError(
                f"cannot open the call cache at {self.path}: give another file as `cache`, or "
                "`use_cache=False`"
            )
        return db

    def stats(self) -> CacheStats:
        with self._lock:
            (entries,) = self._open().execute("SELECT COUNT(*) FROM calls").fetchone()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return CacheStats(self.path, int(entries), size)

    def clear(self) -> int:
        with self._lock:
            db = self._open()
            (entries,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
            db.execute("DELETE FROM calls")
            db.commit()
            db.execute("VACUUM")
        return int(entries)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
