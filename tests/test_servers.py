"""Servers and prices: a reasoning model's token field, per-role rate limits, prices from
LiteLLM's map — against the OpenAI-compatible stub server on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from opro import LLMConfig, complete
from opro.llm.limits import RateLimiter
from opro.llm.usage import Price, known_price, litellm_price
from opro.testing.stub_server import StubServer


def test_a_reasoning_model_gets_max_completion_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with StubServer(reasoning=True) as server:
        model = LLMConfig(spec="openai:o4-mini", base_url=server.url)
        samples = complete(model, "Say hi", n=3, max_tokens=40)
        assert len(samples.texts) == 3
        refused = [r for r in server.requests if "max_tokens" in r]
        answered = [r for r in server.requests if "max_completion_tokens" in r]
        # Each refused (400, naming the field) and sent again with it, once.
        assert (len(refused), len(answered)) == (3, 3)
        assert all(r["max_completion_tokens"] == 40 for r in answered)
        fixed = LLMConfig(spec="openai:o4-mini", base_url=server.url, token_limit="max_tokens")
        with pytest.raises(Exception, match="max_completion_tokens"):
            complete(fixed, "Say hi", max_tokens=40)  # named explicitly: no switch


def test_the_rate_limiter_holds_both_limits() -> None:
    now = [0.0]
    limiter = RateLimiter(3, 1000, clock=lambda: now[0])
    assert limiter.delay(100) == 0
    for _ in range(3):
        limiter._starts.append((now[0], 100))
    assert limiter.delay(100) == pytest.approx(60.0)  # a 4th request waits for the 1st to age
    now[0] = 30.0
    assert limiter.delay(100) == pytest.approx(30.0)
    tokens = RateLimiter(None, 1000, clock=lambda: now[0])
    tokens._starts = [(0.0, 600.0), (10.0, 300.0)]
    assert tokens.delay(50) == 0
    assert tokens.delay(200) == pytest.approx(30.0)  # the first 600 must leave the window
    assert tokens.delay(900) == pytest.approx(40.0)

    async def paced() -> float:
        live = RateLimiter(1200, None)  # one start every 50 ms, averaged over a minute
        live._starts = [(time.monotonic() - 59.9, 1.0)] * 1200  # a full window ending soon
        started = time.monotonic()
        await live.acquire(1.0)
        return time.monotonic() - started

    assert 0.05 <= asyncio.run(paced()) < 2.0


def test_a_role_passes_its_rate_limits_to_its_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from opro.llm.stack import build_llm

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config = LLMConfig(spec="openai:m", requests_per_minute=30, tokens_per_minute=9000)
    llm = build_llm(config.spec, config.backend_options(), config.stack_options("scorer"))
    assert (llm._rate.rpm, llm._rate.tpm) == (30, 9000)


def test_prices_come_from_litellms_map_when_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = litellm_price("gpt-4o-mini")  # with LiteLLM installed: its maintained map
    if real is not None:
        assert real.input_per_mtok > 0
    table = {"my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 3e-6}}
    monkeypatch.setitem(sys.modules, "litellm", types.SimpleNamespace(model_cost=table))
    assert litellm_price("my-model") == Price(1.0, 3.0)
    assert known_price("openai:my-model") == Price(1.0, 3.0)
    assert known_price("litellm:someprovider/my-model") == Price(1.0, 3.0)
    assert known_price("openai:gpt-4o") == Price(2.50, 10.00)  # not in the map: ours
    assert known_price("openai:unknown") is None
    assert known_price("local:gemma3-270m") == Price(0, 0)


def test_prices_are_read_without_importing_litellm_and_equal_its_own() -> None:
    """Importing LiteLLM took seconds of a run's start-up for one price; the file it loads
    its map from offline is read instead, and gives what ``litellm.model_cost`` gives."""
    names = ["gpt-4o-mini", "gpt-4o", "anthropic/claude-3-5-haiku-latest", "mistral-small"]
    code = (
        "import sys, json; from opro.llm.usage import litellm_price; "
        f"prices = [litellm_price(n) for n in {names!r}]; "
        "print(json.dumps([[p.input_per_mtok, p.output_per_mtok] if p else None for p in prices]),"
        " 'litellm' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shipped, imported = done.stdout.rsplit(" ", 1)
    assert imported.strip() == "False"
    assert json.loads(shipped)[0] is not None  # gpt-4o-mini is in the map
    from opro.llm.litellm_import import import_litellm

    table = import_litellm().model_cost
    for name, price in zip(names, json.loads(shipped), strict=True):
        entry = table.get(name) or table.get(name.rsplit("/", 1)[-1])
        if entry is None or "input_cost_per_token" not in entry:
            assert price is None, name
        else:
            assert price == pytest.approx(
                [entry["input_cost_per_token"] * 1e6, entry["output_cost_per_token"] * 1e6]
            ), name


def test_a_run_logs_to_mlflow_with_a_local_file_store(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from opro.cli import main

    store = f"file://{tmp_path / 'mlruns'}"
    out = tmp_path / "run"
    args = ["-q", "tsp", "--optimizer", "fake:tests.doubles:tsp_shuffler", "--nodes", "6",
            "--steps", "3", "--out", str(out), "--mlflow", store]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "mlflow.json").read_text())
    mlflow.set_tracking_uri(store)
    run = MlflowClient().get_run(record["run_id"])
    assert run.data.params["nodes"] == "6"
    assert run.data.params["steps"] == "3"
    assert run.data.tags["status"] == "finished"
    history = MlflowClient().get_metric_history(record["run_id"], "best_score")
    steps = [json.loads(line)["best_score"] for line in (out / "steps.jsonl").open()]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(steps)
    artifacts = {a.path for a in MlflowClient().list_artifacts(record["run_id"])}
    assert {"summary.json", "config.json", "report.html", "best.txt"} <= artifacts


def test_a_litellm_model_completes_through_a_real_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``litellm:openai/MODEL`` with a base URL: LiteLLM's own client speaks to a real
    OpenAI-compatible server on loopback; the key comes from the variable named, sent as
    the server expects and never kept in the backend's identity."""
    from opro.llm.base import BackendOptions
    from opro.llm.registry import create_backend
    from opro.types import Request

    monkeypatch.setenv("STUB_KEY", "sk-stub-secret")
    server = StubServer(reply=lambda body: f" echo: {body['messages'][-1]['content']}").start()
    try:
        options = BackendOptions(base_url=server.url, api_key_env="STUB_KEY")
        llm = create_backend("litellm:openai/stub-model", options)
        request = Request("Say hi.", 8, 0.0, system="Be brief.")
        completion = asyncio.run(llm.complete(request))
    finally:
        server.stop()
    assert completion.text == " echo: Say hi."
    [body] = server.requests
    assert body["model"] == "stub-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi."},
    ]
    assert body["max_tokens"] == 8
    assert server.headers_seen[0]["authorization"] == "Bearer sk-stub-secret"
    assert "sk-stub-secret" not in json.dumps(llm.identity())
