"""A failing call cache never fails a command (issue #17, item 5 of the medium list).

Reproduced before (the first release): a read-only cache file, or a full disk under the
cache, ended ``opro evaluate`` with an internal error, exit 70, every result lost; a corrupt
row in the cache was an internal error too. The cache now opens lazily and degrades: a
failure is logged once, that entry is a miss, and a cache that cannot be written is left
alone for the rest of the process — the results still flow. These are the regression tests.

SQLite's own errors are produced for real: a read-only open (``mode=ro``, as a file the user
cannot write gives; root ignores file modes, so the mode is asked for) and a connection
whose writes fail with ``database or disk is full`` (SQLITE_FULL, what a full disk gives).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opro.llm import cache as cache_module
from tests.conftest import SHARED_DATA, Ran

REAL_CONNECT = sqlite3.connect


def evaluate(cache: Path) -> list[str]:
    return ["-q", "evaluate", "--dataset", "bbh:boolean_expressions", "--data-dir",
            str(SHARED_DATA), "--scorer", "fake:tests.doubles:boolean_scorer", "--instruction",
            "Think.", "--max-examples", "20", "--cache", str(cache), "--json"]  # fmt: skip


def filled(opro: Callable[..., Ran], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A cache holding the answers of one evaluation, and that evaluation."""
    cache = tmp_path / "calls.sqlite"
    first = opro(*evaluate(cache))
    assert first.returncode == 0, first.stderr
    return cache, json.loads(first.stdout)["instructions"][0]


def rows(cache: Path) -> int:
    with REAL_CONNECT(cache) as db:
        return int(db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])


def test_a_read_only_cache_still_answers_and_is_left_alone(
    opro: Callable[..., Ran],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache, reference = filled(opro, tmp_path)

    def read_only(path: Any, **kwargs: Any) -> sqlite3.Connection:
        return REAL_CONNECT(f"file:{path}?mode=ro", uri=True, **kwargs)

    monkeypatch.setattr(cache_module.sqlite3, "connect", read_only)
    more = [*evaluate(cache), "--instruction", "Be brief."]  # 20 hits, 20 answers to write
    with caplog.at_level(logging.WARNING):
        result = opro(*more)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["n"], r["failed"]) for r in data["instructions"]] == [(20, 0), (20, 0)]
    assert data["instructions"][0]["correct"] == reference["correct"]
    assert (data["usage"]["cached_calls"], data["usage"]["calls"]) == (20, 20)
    assert caplog.text.count("attempt to write a readonly database") == 1
    monkeypatch.undo()
    assert rows(cache) == 20  # the 20 new answers were not written


def test_a_full_disk_under_the_cache_still_answers(
    opro: Callable[..., Ran],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Full(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.lstrip().upper().startswith("INSERT"):
                raise sqlite3.OperationalError("database or disk is full")
            return super().execute(sql, *args)

    def full(path: Any, **kwargs: Any) -> sqlite3.Connection:
        return REAL_CONNECT(path, factory=Full, **kwargs)

    monkeypatch.setattr(cache_module.sqlite3, "connect", full)
    cache = tmp_path / "calls.sqlite"
    with caplog.at_level(logging.WARNING):
        result = opro(*evaluate(cache))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["n"], r["failed"]) for r in data["instructions"]] == [(20, 0)]
    assert caplog.text.count("database or disk is full") == 1  # said once, then left alone
    monkeypatch.undo()
    assert rows(cache) == 0


def test_a_corrupt_row_is_a_miss_and_is_rewritten(
    opro: Callable[..., Ran], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache, reference = filled(opro, tmp_path)
    with REAL_CONNECT(cache) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM calls ORDER BY key LIMIT 3")]
        db.execute("UPDATE calls SET value = '{not json' WHERE key = ?", (keys[0],))
        db.execute("UPDATE calls SET value = '[1, 2]' WHERE key = ?", (keys[1],))
        db.execute("UPDATE calls SET value = '{\"text\": 5}' WHERE key = ?", (keys[2],))
    with caplog.at_level(logging.WARNING):
        again = opro(*evaluate(cache))
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["usage"]["calls"] == 3  # the three corrupt rows were asked again
    assert data["usage"]["cached_calls"] == 17
    row = data["instructions"][0]
    assert (row["correct"], row["wrong"]) == (reference["correct"], reference["wrong"])
    assert "corrupt entry" in caplog.text
    with REAL_CONNECT(cache) as db:
        values = [v for (v,) in db.execute("SELECT value FROM calls WHERE key IN (?, ?, ?)", keys)]
    assert all(json.loads(v)["text"] for v in values)  # rewritten with the real answers


def test_a_cache_file_that_is_not_a_database_still_answers(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    cache = tmp_path / "calls.sqlite"
    cache.write_bytes(b"this is not an SQLite database at all" * 100)
    result = opro(*evaluate(cache))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["instructions"][0]["n"] == 20
    info = opro("cache", "info", "--cache", str(cache))
    assert info.returncode == 2
    assert info.stderr.startswith("opro: error: the call cache at")
    assert len(info.stderr.splitlines()) == 1  # no warning before it (issue #26)
