"""An API key never lands in a file opro writes, in its output or logs, or in an error.

The scorer is ``openai:stub`` on a local OpenAI-compatible server (``opro.testing.stub_server``)
and the key is ``SENTINEL_KEY``. Each test first checks that the server did receive the key
in its Authorization header, so the key really went through the code paths under test; then
it looks for the key in every file under the run dir and the cache dir (OPRO_CACHE_DIR), in
stdout and in stderr (with ``-v``, so the logs are covered): on success, on a 401, and when a
server error body echoes the key back.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from opro.testing.stub_server import StubServer, plan_from
from tests.conftest import ROOT, SENTINEL_KEY, SHARED_DATA, run_cli

DATA = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
OPTIMIZER = ["--optimizer", "fake:tests.doubles:instruction_proposer"]


def environment(key_env: str = "OPENAI_API_KEY") -> dict[str, str]:
    return {
        key_env: SENTINEL_KEY,
        "PYTHONPATH": str(ROOT),
        "OPRO_CACHE_DIR": os.environ["OPRO_CACHE_DIR"],  # set per test by conftest
    }


def optimize_args(url: str, out: Path, *extra: str) -> list[str]:
    return [
        "-v",
        "optimize",
        *DATA,
        "--scorer",
        "openai:stub",
        "--scorer-base-url",
        url,
        *OPTIMIZER,
        "--steps",
        "2",
        "--max-train",
        "5",
        "--max-test",
        "5",
        "--out",
        str(out),
        *extra,
    ]


def files_holding_the_key(*roots: Path) -> list[Path]:
    """Every file under ``roots`` whose bytes contain the key; checks there are files."""
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing written under {roots}: the check would be vacuous"
    return [p for p in files if SENTINEL_KEY.encode() in p.read_bytes()]


def assert_server_got_the_key(server: StubServer) -> None:
    assert server.headers_seen, "the server saw no request"
    assert {h.get("authorization") for h in server.headers_seen} == {f"Bearer {SENTINEL_KEY}"}


@pytest.mark.parametrize("key_env", ["OPENAI_API_KEY", "MY_SCORER_KEY"])
def test_a_whole_run_writes_and_prints_no_key(tmp_path: Path, key_env: str) -> None:
    out = tmp_path / "run"
    cache = Path(os.environ["OPRO_CACHE_DIR"])
    extra = [] if key_env == "OPENAI_API_KEY" else ["--scorer-api-key-env", key_env]
    with StubServer() as server:
        result = run_cli(*optimize_args(server.url, out, *extra), env=environment(key_env))
    assert result.returncode == 0, result.stderr
    assert_server_got_the_key(server)
    assert len(server.requests) >= 10  # step 0 and the test fold, at least
    assert "INFO" in result.stderr  # -v logged: the logs are part of what is checked
    assert SENTINEL_KEY not in result.stdout + result.stderr
    assert {p.name for p in out.iterdir()} >= {"config.json", "steps.jsonl", "summary.json"}
    assert (cache / "calls.sqlite").stat().st_size > 0
    assert files_holding_the_key(out, cache) == []
    config = json.loads((out / "config.json").read_text())
    if key_env != "OPENAI_API_KEY":  # the variable's name is kept, never its value
        assert config["spec"]["scorer"]["api_key_env"] == key_env


def test_a_rejected_key_is_not_in_the_message(tmp_path: Path) -> None:
    cache = Path(os.environ["OPRO_CACHE_DIR"])
    with StubServer(plan=plan_from(["401"])) as server:
        evaluated = run_cli(
            "-v",
            "evaluate",
            *DATA,
            "--scorer",
            "openai:stub",
            "--scorer-base-url",
            server.url,
            "--instruction",
            "Think.",
            "--max-examples",
            "1",
            env=environment(),
        )
    assert_server_got_the_key(server)
    assert evaluated.returncode == 3
    assert "opro: error: openai:stub: the server refused the API key (401)" in evaluated.stderr
    assert "check the key in OPENAI_API_KEY" in evaluated.stderr
    assert SENTINEL_KEY not in evaluated.stdout + evaluated.stderr

    out = tmp_path / "run"
    with StubServer(plan=plan_from(["401"])) as server:
        optimized = run_cli(*optimize_args(server.url, out), env=environment())
    assert_server_got_the_key(server)
    assert optimized.returncode == 3  # refused at the first call: nothing recorded, nothing kept
    assert "opro: error: openai:stub: the server refused the API key (401)" in optimized.stderr
    assert SENTINEL_KEY not in optimized.stdout + optimized.stderr
    assert not out.exists()
    # The calls answered before the 401, if any (it may come back first): none holds the key.
    written = [p for root in (tmp_path, cache) for p in root.rglob("*") if p.is_file()]
    assert [p for p in written if SENTINEL_KEY.encode() in p.read_bytes()] == []


class EchoingServer(StubServer):
    """Answers the first ``ok_first`` requests, then every request with ``status`` and an
    error body quoting its Authorization header, as a careless proxy might."""

    status: int = 400
    ok_first: int = 5  # step 0: the initial instruction on the 5 training examples

    async def _respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if len(self.requests) < self.ok_first:
            return await super()._respond(method, path, headers, raw, writer)
        self.headers_seen.append(headers)
        self.requests.append(json.loads(raw or b"{}"))
        message = f"bad request from {headers.get('authorization')}"
        self._write(writer, self.status, {"error": {"message": message, "type": "echo"}})
        await writer.drain()
        return True


@pytest.mark.parametrize("status", [400, 500])
def test_a_key_echoed_by_a_server_error_is_redacted(tmp_path: Path, status: int) -> None:
    """400 fails at once; 500 is retried (and logged with -v) before the run stops — after
    step 0 was recorded, so the run is kept, stopped, with the message in summary.json."""
    out = tmp_path / "run"
    cache = Path(os.environ["OPRO_CACHE_DIR"])
    server = EchoingServer()
    server.status = status
    with server:
        optimized = run_cli(
            *optimize_args(server.url, out, "--scorer-max-retries", "1"), env=environment()
        )
        evaluated = run_cli(
            "-v",
            "evaluate",
            *DATA,
            "--scorer",
            "openai:stub",
            "--scorer-base-url",
            server.url,
            "--scorer-max-retries",
            "1",
            "--instruction",
            "Think.",
            "--max-examples",
            "2",
            "--json",
            "--examples",
            env=environment(),
        )
    assert_server_got_the_key(server)
    assert optimized.returncode == 4
    assert evaluated.returncode in (3, 4)  # 400: one-line error; 500: failed examples
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    # the echoed body reached the message, with the key blanked out
    assert f"{status}" in summary["message"]
    assert "Bearer ***" in summary["message"]
    assert "Bearer ***" in optimized.stderr
    for result in (optimized, evaluated):
        assert SENTINEL_KEY not in result.stdout + result.stderr
    assert files_holding_the_key(out, cache) == []
