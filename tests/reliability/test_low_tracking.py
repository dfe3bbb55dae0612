"""Two low items of issue #26: ``--mlflow`` (its URI's credentials never printed or written,
an unreachable server one line in seconds, a control character refused before the run) and
LiteLLM's failures (one stderr line each: no "coroutine ... was never awaited" block, no
traceback, nothing on stdout)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opro.errors import FatalLLMError, TransientLLMError
from opro.testing.stub_server import StubServer
from tests.conftest import Ran, assert_one_line_error, run_cli

TSP = ["-q", "tsp", "--optimizer", "fake:tests.doubles:tsp_shuffler", "--nodes", "6",
       "--steps", "2", "--no-report"]  # fmt: skip
NOWHERE = "127.0.0.1:9"
"""The discard port: nothing listens on loopback's port 9, a connection is refused."""
QUICK = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
         "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_TRACKING_URI")  # fmt: skip


def test_an_unreachable_mlflow_is_one_line_in_seconds_without_its_credentials(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    for name in QUICK:  # MLflow's own defaults: 7 retries with backoff (255 s before)
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "run"
    uri = f"http://alice:hunter2@{NOWHERE}/?token=t0k&user_key=s3cretkey"
    started = time.monotonic()
    ran = opro(*TSP, "--out", str(out), "--mlflow", uri)
    took = time.monotonic() - started
    assert ran.returncode == 2, ran
    assert_one_line_error(ran, "could not log", "MLflow", "cannot connect", "Connection refused")
    assert f"opro resume {out} --mlflow URI" in ran.stderr  # how to log it later
    for secret in ("alice", "hunter2", "t0k", "s3cretkey"):
        assert secret not in ran.stderr + ran.stdout, secret
    assert "WARNING" not in ran.stderr
    assert "Retrying" not in ran.stderr
    assert took < 30, took  # a 2-step run and one retry after a second
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"  # saved
    for name in QUICK[:3]:  # MLflow's settings are the user's again
        assert name not in os.environ


def test_mlflow_credentials_are_scrubbed_from_what_mlflow_says() -> None:
    from opro.tracking import _redacted, scrub

    uri = "https://bob:pw@mlflow.example/?access_token=ab&x=1"
    said = (f"API request to {uri}/api/2.0/mlflow/runs/create failed: url: "
            "/?access_token=ab/api/2.0&x=1 (https://bob:pw@mlflow.example)")  # fmt: skip
    clean = scrub(said, uri)
    for secret in ("=ab", "pw@", "bob"):
        assert secret not in clean, clean
    assert "https://***@mlflow.example" in clean
    assert "access_token=***" in clean
    assert _redacted(uri) == "https://***@mlflow.example/?access_token=***&x=1"
    assert "pw" not in _redacted("http://bob:pw@[::1/")  # not a URL urllib splits


@pytest.mark.parametrize("uri", ["a\nb", "http://u:p@h/\r", "x\x1b[31m"])
def test_a_control_character_in_the_mlflow_uri_is_refused_before_the_run(
    opro: Callable[..., Ran], tmp_path: Path, uri: str
) -> None:
    out = tmp_path / "run"
    ran = opro(*TSP, "--out", str(out), f"--mlflow={uri}")
    assert ran.returncode == 2
    assert_one_line_error(ran, "--mlflow", "control character")
    assert "u:p" not in ran.stderr
    assert not out.exists()  # refused before any run


def _complete(base_url: str, *extra: str) -> list[str]:
    return ["complete", "--model", "litellm:openai/stub", "--base-url", base_url,
            "--api-key-env", "STUB_KEY", "--max-retries", "0", *extra, "Say hi."]  # fmt: skip


def _assert_one_clean_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert_one_line_error(result, *needles)
    assert "never awaited" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""  # no "Give Feedback / Get Help" from LiteLLM


def test_a_litellm_connection_refused_is_one_line() -> None:
    pytest.importorskip("litellm")
    url = f"http://user:pa55word@{NOWHERE}/v1"
    result = run_cli(*_complete(url), env={"STUB_KEY": "sk-stub-secret"}, timeout=120)
    assert result.returncode == 4, result
    _assert_one_clean_line(result, "litellm:openai/stub", "cannot connect", "Connection refused")
    assert "pa55word" not in result.stderr
    assert "sk-stub-secret" not in result.stderr
    assert "HTTP 500" not in result.stderr  # LiteLLM's name for it: no server answered


def test_a_litellm_401_is_one_line() -> None:
    pytest.importorskip("litellm")
    with StubServer(plan=lambda i: "401") as server:
        result = run_cli(*_complete(server.url), env={"STUB_KEY": "sk-stub-secret"}, timeout=120)
    assert result.returncode == 3, result
    _assert_one_clean_line(result, "litellm:openai/stub", "HTTP 401")
    assert "sk-stub-secret" not in result.stderr


def test_litellm_errors_map_to_the_error_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing key is fatal at once (LiteLLM calls it an HTTP 500: six retries in vain);
    a traceback LiteLLM wrote into a message is cut; anything else it raises is one fatal
    line naming its type."""
    pytest.importorskip("litellm")
    from opro.llm.base import BackendOptions
    from opro.llm.registry import create_backend
    from opro.types import Request

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = create_backend(
        "litellm:openai/stub", BackendOptions(base_url=f"http://{NOWHERE}/v1", timeout_s=5)
    )
    with pytest.raises(FatalLLMError, match="no API key"):
        asyncio.run(llm.complete(Request("Say hi.", 8, 0.0)))
    error = llm._error(ValueError('bad thing\nTraceback (most recent call last):\n  File "x"'))  # type: ignore[attr-defined]
    assert isinstance(error, FatalLLMError)
    assert str(error) == "litellm:openai/stub: ValueError: bad thing"
    assert isinstance(llm._error(ConnectionRefusedError(111, "x")), TransientLLMError)  # type: ignore[attr-defined]
