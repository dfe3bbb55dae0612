"""The persistent call cache: SQLite, keyed on the whole request and the LLM's identity.

The key covers everything that determines an answer — backend spec, base URL, API style,
prompt, temperature, max_tokens, stop, seed, grammar and the sample index — so 8 samples
at temperature 1 are 8 entries, and a rerun or a resumed run replays them for free. The
API key is never part of the key nor of the value. Only successful completions are stored.
"""

from __future__ import annotations

import hashlib
import json
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
    """A SQLite table ``key → completion JSON``; safe to share between processes (WAL)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls ("
                "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the call cache at {self.path} ({exc}): pass --cache PATH to use "
                "another file, or --no-cache"
            ) from None

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Completion.from_json(json.loads(row[0]), cached=True)

    def put(self, key: str, completion: Completion) -> None:
        value = json.dumps(completion.to_json(), ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (key, value, created) VALUES (?, ?, ?)",
                (key, value, time.time()),
            )
            self._db.commit()

    def stats(self) -> CacheStats:
        with self._lock:
            (entries,) = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return CacheStats(self.path, int(entries), size)

    def clear(self) -> int:
        with self._lock:
            (entries,) = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
            self._db.execute("DELETE FROM calls")
            self._db.commit()
            self._db.execute("VACUUM")
        return int(entries)

    def close(self) -> None:
        with self._lock:
            self._db.close()
