"""The openai: backend against a real OpenAI-compatible server: llama.cpp's, on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from opro.llm.models import EMBEDDED
from tests.conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving gemma3-270m (base) and smollm2 (chat)."""
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {"model": str(EMBEDDED["gemma3-270m"].locate()), "model_alias": "gemma", "n_ctx": 2048},
            {
                "model": str(EMBEDDED["smollm2"].locate()),
                "model_alias": "smollm2",
                "n_ctx": 2048,
                "chat_format": "chatml",
            },
        ],
    }
    path = Path(tmp_path_factory.mktemp("server")) / "config.json"
    path.write_text(json.dumps(config))
    log = open(path.with_suffix(".log"), "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--config_file", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "llama_cpp.server did not start: "
                        + path.with_suffix(".log").read_text()[-2000:]
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def complete_json(url: str, *args: str) -> dict:  # type: ignore[type-arg]
    result = run_cli("complete", "--base-url", url, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_chat_through_the_openai_backend(llama_server: str) -> None:
    out = complete_json(
        llama_server,
        "--model",
        "openai:smollm2",
        "--max-tokens",
        "16",
        "What is the capital of France? Answer in one word.",
    )
    (sample,) = out["samples"]
    assert "paris" in sample["text"].lower()
    assert sample["usage"]["completion_tokens"] >= 1
    assert out["usage"]["calls"] == 1


def test_completions_through_the_openai_backend_with_samples_and_cache(llama_server: str) -> None:
    args = (
        "--model",
        "openai:gemma",
        "--api",
        "completion",
        "--max-tokens",
        "12",
        "-n",
        "4",
        "--temperature",
        "1",
        "--seed",
        "3",
        "Q: Name a colour.\nA:",
    )
    first = complete_json(llama_server, *args)
    texts = [s["text"] for s in first["samples"]]
    assert len(set(texts)) == 4, texts
    assert first["usage"]["calls"] == 4
    again = complete_json(llama_server, *args)
    assert [s["text"] for s in again["samples"]] == texts
    assert (again["usage"]["calls"], again["usage"]["cached_calls"]) == (0, 4)


def test_grammar_reaches_the_llama_server(llama_server: str, tmp_path: Path) -> None:
    grammar = tmp_path / "yes_no.gbnf"
    grammar.write_text('root ::= " yes" | " no"')
    out = complete_json(
        llama_server,
        "--model",
        "openai:gemma",
        "--api",
        "completion",
        "--grammar",
        str(grammar),
        "--max-tokens",
        "4",
        "Is the sky blue? Answer:",
    )
    assert out["samples"][0]["text"] in (" yes", " no")


def test_evaluate_against_the_llama_server(llama_server: str) -> None:
    """`opro evaluate` with a base scorer (Q/A pattern, A_begin by default) and a chat scorer
    on llama.cpp's server; a prediction equals an independent completion of its prompt."""
    from opro.data import load_dataset
    from opro.eval.scorer import scorer_prompt
    from tests.conftest import SHARED_DATA

    common = ["evaluate", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
    common += ["--split", "train", "--max-examples", "6", "--scorer-max-tokens", "12", "--json"]
    base = run_cli(
        *common,
        "--scorer", "openai:gemma", "--scorer-api", "completion", "--scorer-base-url", llama_server,
        "--instruction", "", "--instruction", "The answer is", "--examples", "--no-cache",
    )  # fmt: skip
    assert base.returncode == 0, base.stderr
    report = json.loads(base.stdout)
    assert report["position"] == "A_begin"
    first, second = report["instructions"]
    for row in (first, second):
        assert row["n"] == 6
        assert row["failed"] == 0
        assert row["correct"] + row["wrong"] + row["empty"] == 6
    assert second["paired_test_vs_first"]["n"] == 6
    assert report["usage"]["calls"] == 12
    example = second["examples"][0]
    question = next(
        e.question
        for e in load_dataset("bbh:boolean_expressions", SHARED_DATA).train
        if e.index == example["index"]
    )
    prompt = scorer_prompt("The answer is", question, "A_begin", "base")
    direct = complete_json(
        llama_server, "--model", "openai:gemma", "--api", "completion", "--max-tokens", "12",
        "--stop", "\nQ:", "--no-cache", prompt,
    )  # fmt: skip
    assert direct["samples"][0]["text"] == example["prediction"]

    chat = run_cli(
        *common, "--scorer", "openai:smollm2", "--scorer-base-url", llama_server,
        "--instruction", "Answer True or False.",
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    shown = json.loads(chat.stdout)
    assert shown["position"] == "Q_begin"
    (row,) = shown["instructions"]
    assert row["n"] == 6
    assert row["failed"] == 0
    refused = run_cli(
        *common, "--scorer", "openai:smollm2", "--scorer-base-url", llama_server,
        "--position", "A_begin", "--instruction", "x",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "A_begin" in refused.stderr


def test_optimize_with_both_roles_on_the_server(llama_server: str, tmp_path: Path) -> None:
    """The README's Servers recipe: scorer and optimizer on one local server, no key."""
    from tests.conftest import SHARED_DATA

    out = tmp_path / "run"
    result = run_cli(
        "optimize", "--dataset", "bbh:navigate", "--data-dir", str(SHARED_DATA),
        "--scorer", "openai:gemma", "--scorer-base-url", llama_server, "--scorer-api", "completion",
        "--optimizer", "openai:gemma", "--optimizer-base-url", llama_server,
        "--optimizer-api", "completion", "--steps", "1", "--samples-per-step", "2",
        "--max-train", "3", "--max-test", "3", "--scorer-max-tokens", "8", "--constrained",
        "--scorer-price", "0,0", "--optimizer-price", "0,0", "--budget-usd", "1",
        "--out", str(out), "--json", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert summary["usage"]["optimizer"]["calls"] == 2
    assert summary["usage"]["scorer"]["calls"] >= 3
    spec = json.loads((out / "config.json").read_text())["spec"]
    assert (spec["style"], spec["position"]) == ("pretrained", "A_begin")  # from the API
