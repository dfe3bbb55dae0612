"""No input reaches an internal error (issue #26, finding 5).

Reproduced before, each an ``opro: internal error`` (exit 70): usage counts of 1e308+ (the
cost became infinite and ``Infinity`` was written into steps.jsonl); JSON integers over 4,300
digits in a dataset, config.json, summary.json or steps.jsonl (Python's int max_str_digits);
invalid UTF-8 in an argument or a lone surrogate in a dataset (the cache key failed even with
``--no-cache``); an API key ending in "\\r" ("Forbidden control character in headers");
``opro cache info|clear`` on a damaged cache. Now: absurd usage is a malformed reply (never
scored), a number too long to read or a lone surrogate is a one-line error naming the file
(and line), a key's surrounding whitespace is dropped (a control character inside it is a
one-line error naming the variable), and the cache commands answer in one line, ``clear``
removing a damaged database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opro.testing.stub_server import StubServer, plan_from
from tests.conftest import SHARED_DATA, Ran, assert_one_line_error

BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
BIG = "9" * 5000
REAL_CONNECT = sqlite3.connect


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-internal")


def evaluate(server: StubServer, *more: str) -> list[str]:
    return ["-q", "evaluate", *BOOLEAN, "--scorer", "openai:stub", "--scorer-base-url",
            server.url, "--instruction", "Think.", "--max-examples", "4",
            "--scorer-max-retries", "0", "--scorer-concurrency", "1", "--no-cache", "--json",
            *more]  # fmt: skip


# -- absurd usage -------------------------------------------------------------------------


def test_absurd_usage_is_a_malformed_reply_never_scored(opro: Callable[..., Ran]) -> None:
    with StubServer(plan=plan_from(["absurd_usage", "absurd_usage"])) as server:
        result = opro(*evaluate(server))
    assert result.returncode == 4, result.stderr
    assert "internal error" not in result.stderr
    assert "absurd usage" in result.stderr
    data = json.loads(result.stdout)
    assert (data["instructions"][0]["failed"], data["instructions"][0]["n"]) == (2, 4)
    assert "Infinity" not in result.stdout


def test_absurd_optimizer_usage_leaves_steps_jsonl_readable(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with StubServer(plan=lambda i: "absurd_usage") as server:
        result = opro("-q", "optimize", *BOOLEAN, "--scorer", "fake:tests.doubles:boolean_scorer",
                      "--optimizer", "openai:stub", "--optimizer-base-url", server.url,
                      "--optimizer-max-retries", "0", "--steps", "1", "--max-train", "3",
                      "--max-test", "2", "--no-cache", "--no-report",
                      "--out", str(out))  # fmt: skip
    assert "internal error" not in result.stderr, result.stderr
    assert "Infinity" not in (out / "steps.jsonl").read_text()
    assert "Infinity" not in (out / "summary.json").read_text()
    report = opro("report", str(out))
    assert report.returncode == 0, report.stderr


# -- integers over 4,300 digits -------------------------------------------------------------


def test_a_huge_integer_in_a_dataset_is_a_one_line_error(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"input": "1+1", "target": 2}\n{"input": "x", "target": ' + BIG + "}\n")
    result = opro("-q", "evaluate", "--dataset", f"jsonl:{data}", "--scorer",
                  "fake:tests.doubles:boolean_scorer", "--instruction", "Think.",
                  "--no-cache")  # fmt: skip
    assert_one_line_error(result, str(data), "line 2", "number too long")


@pytest.fixture
def finished_run(opro: Callable[..., Ran], tmp_path: Path) -> Path:
    out = tmp_path / "run"
    result = opro("-q", "optimize", *BOOLEAN, "--scorer", "fake:tests.doubles:boolean_scorer",
                  "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "1",
                  "--max-train", "3", "--max-test", "2", "--no-cache", "--no-report",
                  "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def _with_big_number(path: Path) -> None:
    """Put a 5,000-digit integer into the first line of a JSON(L) file: a number field."""
    lines = path.read_text().split("\n")
    data = json.loads(lines[0]) if path.suffix == ".jsonl" else json.loads(path.read_text())
    data["big"] = 1
    text = json.dumps(data).replace('"big": 1', f'"big": {BIG}')
    if path.suffix == ".jsonl":
        lines[0] = text
        path.write_text("\n".join(lines))
    else:
        path.write_text(text)


@pytest.mark.parametrize("name", ["config.json", "summary.json", "steps.jsonl"])
def test_a_huge_integer_in_a_run_dir_file_is_a_one_line_error(
    name: str, finished_run: Path, opro: Callable[..., Ran]
) -> None:
    _with_big_number(finished_run / name)
    assert_one_line_error(opro("report", str(finished_run)), name)
    result = opro("-q", "resume", str(finished_run), "--trust-code")
    if name != "config.json":  # a finished run's resume reads no steps, and rebuilds a summary
        assert result.returncode == 0, result.stderr
    else:
        assert_one_line_error(result, name)
    assert "internal error" not in result.stderr


# -- invalid UTF-8, lone surrogates ---------------------------------------------------------


def test_invalid_utf8_in_an_argument_is_a_one_line_error(opro: Callable[..., Ran]) -> None:
    # What Python makes of the bytes b"Think\xff" in argv: a lone surrogate.
    bad = b"Think\xff".decode("utf-8", "surrogateescape")
    result = opro("-q", "evaluate", *BOOLEAN, "--scorer", "fake:tests.doubles:boolean_scorer",
                  "--instruction", bad, "--no-cache")  # fmt: skip
    assert_one_line_error(result, "not valid UTF-8", "\\udcff")


def test_a_lone_surrogate_in_a_dataset_is_a_one_line_error(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"input": "ok \\ud83d\\ude00", "target": "1"}\n'  # an emoji: fine
                    '{"input": "bad \\ud800", "target": "1"}\n')  # fmt: skip
    result = opro("-q", "evaluate", "--dataset", f"jsonl:{data}", "--scorer",
                  "fake:tests.doubles:boolean_scorer", "--instruction", "Think.",
                  "--no-cache")  # fmt: skip
    assert_one_line_error(result, str(data), "line 2", "surrogate")


def test_a_lone_surrogate_in_a_reply_is_replaced_and_cached(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    cache = tmp_path / "calls.sqlite"
    with StubServer(reply=lambda body: "True \ud800") as server:
        args = evaluate(server)
        args[args.index("--no-cache")] = "--cache"
        result = opro(*args[:-1], str(cache), "--json")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(cache) as db:
        texts = [json.loads(v)["text"] for (v,) in db.execute("SELECT value FROM calls")]
    assert texts
    assert all(t == "True \ufffd" for t in texts)


def test_the_cache_key_takes_any_text() -> None:
    from opro.llm.cache import cache_key
    from opro.types import Request

    assert len(cache_key({"spec": "x"}, Request("bad \udcff", 8, 0.0))) == 64


# -- API keys from CRLF files -----------------------------------------------------------------


def test_a_key_ending_in_cr_is_sent_without_it(
    opro: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-a-crlf-file\r")
    with StubServer() as server:
        result = opro(*evaluate(server))
    assert result.returncode == 0, result.stderr
    assert server.headers_seen[0]["authorization"] == "Bearer sk-from-a-crlf-file"


def test_a_control_character_inside_a_key_is_a_one_line_error_that_leaves_no_run_dir(
    opro: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-one\r\nsk-two")
    out = tmp_path / "run"
    args = ["-q", "optimize", *BOOLEAN, "--scorer", "openai:stub", "--scorer-base-url",
            "http://127.0.0.1:9/v1", "--scorer-api-key-env", "MY_KEY", "--optimizer",
            "fake:tests.doubles:instruction_proposer", "--steps", "1", "--no-cache",
            "--no-report", "--out", str(out)]  # fmt: skip
    first = opro(*args)
    assert_one_line_error(first, "MY_KEY")
    assert "sk-one" not in first.stderr
    assert not out.exists()
    again = opro(*args)  # the same command meets the same error, not a run dir in its way
    assert_one_line_error(again, "MY_KEY")


# -- opro cache info | clear on a damaged or read-only cache ----------------------------------


def test_cache_commands_on_a_damaged_database(opro: Callable[..., Ran], tmp_path: Path) -> None:
    cache = tmp_path / "calls.sqlite"
    cache.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    assert_one_line_error(opro("cache", "info", "--cache", str(cache)), "damaged", "clear")
    cleared = opro("cache", "clear", "--cache", str(cache))
    assert cleared.returncode == 0, cleared.stderr
    assert "removed the damaged call cache" in cleared.stdout
    assert not cache.exists()
    info = opro("cache", "info", "--cache", str(cache))
    assert (info.returncode, info.stderr) == (0, "")
    assert "0 cached calls" in info.stdout


def test_cache_commands_leave_a_file_that_is_no_database(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n" * 100)
    for action in ("info", "clear"):
        result = opro("cache", action, "--cache", str(notes))
        assert_one_line_error(result, str(notes))
        assert "--no-cache" not in result.stderr
    assert notes.read_text() == "my notes\n" * 100


def test_cache_commands_on_a_read_only_cache(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "calls.sqlite"
    with REAL_CONNECT(cache) as db:
        db.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, value TEXT, created REAL)")
        db.execute("INSERT INTO calls VALUES ('k', '{}', 0)")

    def read_only(path: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = REAL_CONNECT(f"file:{path}?mode=ro", uri=True, **kwargs)
        return db

    monkeypatch.setattr(sqlite3, "connect", read_only)
    info = opro("cache", "info", "--cache", str(cache))
    assert info.returncode == 0, info.stderr
    assert "1 cached calls" in info.stdout
    assert_one_line_error(opro("cache", "clear", "--cache", str(cache)), "readonly", "writable")
    monkeypatch.undo()
    assert cache.exists()
