"""The opro command as a user meets it: bad input → one line naming the fix, exit != 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opro.testing.stub_server import StubServer
from tests.conftest import PYTHONPATH, SENTINEL_KEY, assert_one_line_error, run_cli


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["complete", "--model", "opnai:gpt-4o", "hi"], ["did you mean openai:gpt-4o?"]),
        (["complete", "--model", "gpt-4o", "hi"], ["no backend prefix", "openai:gpt-4o-mini"]),
        (["complete", "--model", "local:gemma-9b", "hi"], ["local:gemma3-270m"]),
        (["complete", "--model", "local:/nope/m.gguf", "hi"], ["does not exist"]),
        (["complete", "--model", "openai:gpt-4o-mini", "hi"], ["OPENAI_API_KEY is not set"]),
        (["complete", "--model", "openai:m", "--api-key-env", "NOPE_KEY", "hi"], ["NOPE_KEY"]),
        (
            ["complete", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "hi"],
            ["cannot connect to http://127.0.0.1:9/v1"],
        ),
        (["complete", "--model", "openai:m", "--base-url", "localhost:8000", "hi"], ["http://"]),
        (["complete", "--model", "local:smollm2", "--concurrency", "0", "hi"], ["--concurrency"]),
        (["complete", "--model", "local:smollm2", "--max-calls", "0", "hi"], ["--max-calls"]),
        (["complete", "--model", "local:smollm2", "--temperature", "5", "hi"], ["temperature"]),
        (["complete", "--model", "local:smollm2", "--price", "cheap", "hi"], ["IN,OUT"]),
        (["complete", "--model", "local:smollm2", "--grammar", "/nope.gbnf", "hi"], ["grammar"]),
        (["complete", "hi"], ["--model"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_gets_one_line_naming_the_fix(args: list[str], needles: list[str]) -> None:
    assert_one_line_error(run_cli(*args), *needles)


def test_an_invalid_grammar_is_reported_not_crashed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gbnf"
    bad.write_text("root ::= (")
    assert_one_line_error(
        run_cli("complete", "--model", "local:smollm2", "--grammar", str(bad), "--no-cache", "hi"),
        "grammar",
    )


def test_a_rejected_key_never_appears_in_the_message_or_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "calls.sqlite"
    with StubServer(plan=lambda i: "401") as server:
        result = run_cli(
            "complete",
            "--model",
            "openai:m",
            "--base-url",
            server.url,
            "--cache",
            str(cache),
            "hi",
            env={"OPENAI_API_KEY": SENTINEL_KEY},
        )
    assert_one_line_error(result, "refused the API key", "OPENAI_API_KEY")
    assert SENTINEL_KEY not in result.stderr + result.stdout
    with StubServer() as server:
        ok = run_cli(
            "complete",
            "--model",
            "openai:m",
            "--base-url",
            server.url,
            "--cache",
            str(cache),
            "-n",
            "3",
            "hi",
            env={"OPENAI_API_KEY": SENTINEL_KEY},
        )
        assert ok.returncode == 0, ok.stderr
        assert server.headers_seen[0]["authorization"] == f"Bearer {SENTINEL_KEY}"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path


def test_models_lists_embedded_models_and_backends() -> None:
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    specs = {m["spec"]: m for m in data["embedded"]}
    assert specs["local:gemma3-270m"]["installed"] is True
    assert specs["local:smollm2"]["size_mb"] == 98
    assert {b["prefix"] for b in data["backends"]} == {"openai:", "litellm:", "local:", "fake:"}
    human = run_cli("models")
    assert "local:gemma3-270m" in human.stdout
    assert "installed" in human.stdout


@pytest.mark.embedded
def test_complete_on_the_embedded_model_then_from_cache(tmp_path: Path) -> None:
    args = (
        "complete",
        "--model",
        "local:gemma3-270m",
        "--max-tokens",
        "8",
        "-n",
        "2",
        "--temperature",
        "1",
        "--json",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "Q: 1+1?\nA:",
    )
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["usage"]["calls"] == 2
    second = json.loads(run_cli(*args).stdout)
    assert [s["text"] for s in second["samples"]] == [s["text"] for s in data["samples"]]
    assert second["usage"]["cached_calls"] == 2
    info = run_cli("cache", "info", "--cache", str(tmp_path / "c.sqlite"))
    assert "2 cached calls" in info.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("opro ")


def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`opro ... --json | head -c 10`: no "internal error", no traceback; the shell's 141."""
    data = tmp_path / "d.csv"
    data.write_text("question,answer\n" + "".join(f"q{i},a\n" for i in range(10)))
    read, write = os.pipe()
    os.close(read)  # nobody will read: the first write fails with EPIPE
    done = subprocess.run(
        [sys.executable, "-m", "opro.cli", "-q", "evaluate", "--dataset", f"csv:{data}",
         "--scorer", "fake:echo", "--instruction", "x", "--json", "--no-cache"],
        stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=PYTHONPATH),
    )  # fmt: skip
    os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
