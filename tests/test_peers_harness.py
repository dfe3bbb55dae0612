"""The peers benchmark's harness (benchmarks/peers/), against the stub server: the counting
proxy renders every tool's scorer request into the prompt opro sends itself, byte for byte,
splits ``n > 1``, pins decoding, refuses what is not a fold's question, and counts each call.
No peer package is imported (they live in .venv-peers, never in opro's environment)."""

from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import opro
from opro.testing.stub_server import StubServer
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.subprocess  # the proxy is a process of its own

PEERS = ROOT / "benchmarks" / "peers"
ROWS = [
    {"question": "Which sentence has the correct adjective order:\nOptions:\n(A) big old red "
     "car\n(B) red old big car", "answer": "(A)", "kind": "choice", "index": 4},
    {"question": "If you follow these instructions, do you return to the starting point? "
     "Take 2 steps.\nOptions:\n- Yes\n- No", "answer": "No", "kind": "choice", "index": 9},
    {"question": "Which sentence has the correct adjective order:\nOptions:\n(A) wool small "
     "hat\n(B) small wool hat", "answer": "(B)", "kind": "choice", "index": 11},
]  # fmt: skip


def peers_module(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(PEERS))
    return importlib.import_module(name)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Harness:
    def __init__(self, stub: StubServer, urls: dict[str, str], log: Path, train: Path) -> None:
        self.stub, self.urls, self.log, self.train = stub, urls, log, train

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    servers = peers_module("servers", monkeypatch)
    train, test = tmp_path / "toy.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:2]))
    test.write_text(json.dumps(ROWS[2]) + "\n")
    log = tmp_path / "calls.jsonl"
    with (
        StubServer(reply=lambda body: " (A)") as stub,
        servers.proxy(stub.url, [("train", train), ("test", test)], log) as urls,
    ):
        servers.control(urls["scorer"], "toy/tool/s0", 7)
        yield Harness(stub, urls, log, train)


def test_a_peer_scorer_request_is_sent_as_opro_itself_sends_it(harness: Harness) -> None:
    instruction = "Answer with the option's letter."
    # opro's own scorer calls through the proxy: the prompts it sends, unchanged
    result = run_cli(
        "evaluate", "--dataset", f"jsonl:{harness.train}", "--split", "all",
        "--scorer", "openai:gemma3-270m", "--scorer-base-url", harness.urls["scorer"],
        "--scorer-api", "completion", "--position", "A_begin", "--scorer-max-tokens", "16",
        "--instruction", instruction, "--no-cache", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from_opro = {b["prompt"] for b in harness.stub.requests}
    assert len(from_opro) == 2
    harness.stub.requests.clear()
    # a peer's: [system: instruction, user: question], rendered by the proxy
    for row in ROWS[:2]:
        messages = [
            {"role": "system", "content": instruction},
            {"role": "user", "content": row["question"]},
        ]
        status, reply = post(
            harness.urls["scorer"] + "/chat/completions",
            {"model": "any", "messages": messages, "temperature": 0.7, "max_tokens": 400},
        )
        assert status == 200, reply
        assert reply["object"] == "chat.completion"
        assert reply["choices"][0]["message"]["content"] == " (A)"
    from_peer = [b["prompt"] for b in harness.stub.requests]
    assert set(from_peer) == from_opro  # byte-identical
    spec = opro.InstructionsSpec(
        dataset="bbh:hyperbaton", position="A_begin", scorer_style="base", scorer_max_tokens=16
    )
    expected = [spec.prompt_for(row["question"], instruction) for row in ROWS[:2]]
    assert from_peer == [p.prompt for p in expected]
    assert from_peer[0] == f"Q: {ROWS[0]['question']}\n\nA: {instruction}"
    for body in harness.stub.requests:  # decoding pinned: greedy, 16 tokens, opro's stop
        assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.0, 16, ["\nQ:"])
        assert (body["top_p"], body["top_k"], body["model"]) == (0.95, 40, "gemma3-270m")
    # the empty instruction: no system message at all, or an empty one, is opro's "" prompt
    harness.stub.requests.clear()
    for messages in (
        [{"role": "user", "content": ROWS[0]["question"]}],
        [{"role": "system", "content": ""}, {"role": "user", "content": ROWS[0]["question"]}],
    ):
        assert post(harness.urls["scorer"] + "/chat/completions", {"messages": messages})[0] == 200
    empty = spec.prompt_for(ROWS[0]["question"], "").prompt
    assert [b["prompt"] for b in harness.stub.requests] == [empty, empty]


def test_calls_are_counted_split_and_refused_at_the_proxy(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = ROWS[0]["question"]
    status, reply = post(
        harness.urls["scorer"] + "/chat/completions",
        {"messages": [{"role": "user", "content": question}], "n": 3},
    )
    assert status == 200
    assert len(reply["choices"]) == 3
    assert len(harness.stub.requests) == 3  # n = 3: three upstream calls
    status, reply = post(
        harness.urls["optimizer"] + "/chat/completions",
        {"messages": [{"role": "user", "content": "Propose."}], "n": 2, "max_tokens": 4096,
         "temperature": 1.4},
    )  # fmt: skip
    assert status == 200
    assert len(reply["choices"]) == 2
    optimizer = harness.stub.requests[3:]
    assert [b["max_tokens"] for b in optimizer] == [256, 256]  # capped
    assert [b["temperature"] for b in optimizer] == [1.0, 1.0]  # harmonised
    assert len({b["seed"] for b in optimizer}) == 2  # one seed per call, from the run's
    # the model's own chat template (the GGUF has none), the same for every tool
    gemma = "<bos><start_of_turn>user\nPropose.<end_of_turn>\n<start_of_turn>model\n"
    assert [b["prompt"] for b in optimizer] == [gemma, gemma]
    assert optimizer[0]["stop"] == ["<end_of_turn>"]
    # not a fold's question, or not [system, user]: refused, never forwarded
    for messages in (
        [{"role": "user", "content": "What is 2 + 2?"}],
        [{"role": "system", "content": "x"}, {"role": "user", "content": question},
         {"role": "assistant", "content": "(A)"}, {"role": "user", "content": question}],
    ):  # fmt: skip
        status, reply = post(harness.urls["scorer"] + "/chat/completions", {"messages": messages})
        assert status == 400
        assert "benchmark proxy" in reply["error"]["message"]
    status, _ = post(harness.urls["scorer"] + "/completions", {"prompt": "Q: anything\n\nA:"})
    assert status == 400
    assert len(harness.stub.requests) == 5
    records = harness.records()
    assert {r["run"] for r in records} == {"toy/tool/s0"}
    run = peers_module("run", monkeypatch)
    calls = run.count(records)
    assert calls["scorer"]["calls"] == 3
    assert calls["scorer"]["by_phase"] == {"train": 3}
    assert calls["scorer"]["refused"] == 3
    assert calls["optimizer"]["calls"] == 2
    assert calls["optimizer"]["requested_temperatures"] == {"1.4": 2}
    assert calls["scorer"]["prompt_tokens"] == 30  # the stub's usage, summed
    scored = [r for r in records if r.get("role") == "scorer" and r.get("status") == 200]
    assert [(r["index"], r["correct"], r["instruction"]) for r in scored] == [(4, True, "")] * 3


def test_the_selection_at_the_budget_and_holm(monkeypatch: pytest.MonkeyPatch) -> None:
    run = peers_module("run", monkeypatch)

    def call(instruction: str, index: int, correct: bool) -> dict[str, Any]:
        return {"role": "scorer", "phase": "train", "status": 200, "instruction": instruction,
                "index": index, "correct": correct}  # fmt: skip

    records = [call("", 0, False), call("", 1, True), call("a", 0, True), call("a", 1, True),
               call("b", 0, True), call("b", 1, True), call("c", 0, True)]  # fmt: skip
    assert run.uniform_best(records, budget=4, n_train=2) == {
        "instruction": "a", "train_accuracy": 1.0, "complete": 2
    }  # fmt: skip
    assert run.uniform_best(records, budget=3, n_train=2)["instruction"] == ""
    assert run.train_accuracy(records, "") == 0.5
    assert run.holm({"x": 0.01, "y": 0.04, "z": 0.03}) == {"x": 0.03, "z": 0.06, "y": 0.06}


def test_optimizer_chat_is_gemmas_template(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = peers_module("proxy", monkeypatch)
    messages = [
        {"role": "system", "content": "You are an instruction optimizer."},
        {"role": "user", "content": "Propose one. "},
        {"role": "assistant", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Another."}]},
    ]
    assert proxy.gemma_chat(messages) == (
        "<bos><start_of_turn>user\nYou are an instruction optimizer.\n\nPropose one."
        "<end_of_turn>\n<start_of_turn>model\nBe brief.<end_of_turn>\n"
        "<start_of_turn>user\nAnother.<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_grammar_is_forwarded_and_a_restart_goes_on_numbering_seeds(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = peers_module("servers", monkeypatch)
    grammar = 'root ::= "x"'

    def propose(extra: dict[str, Any]) -> int:
        status, _ = post(harness.urls["optimizer"] + "/completions", {"prompt": "P", **extra})
        assert status == 200
        return int(harness.stub.requests[-1]["seed"])

    first = propose({"grammar": grammar})  # opro --constrained through a llama.cpp server
    assert harness.stub.requests[-1]["grammar"] == grammar
    second = propose({})
    assert "grammar" not in harness.stub.requests[-1]
    assert [r["grammar"] for r in harness.records()] == [True, False]
    servers.control(harness.urls["scorer"], "toy/tool/s0/restarted", 7, restarted=True)
    assert propose({}) not in (first, second)  # a restart's next call: the run's third seed
    servers.control(harness.urls["scorer"], "toy/tool/s0/again", 7)
    assert propose({}) == first  # a new run numbers its calls from the start


def test_training_calls_are_counted_from_the_growing_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = peers_module("run", monkeypatch)
    log = tmp_path / "calls.jsonl"

    def line(run_name: str, role: str = "scorer", phase: str = "train", status: int = 200) -> str:
        return json.dumps({"run": run_name, "role": role, "phase": phase, "status": status})

    calls = run.TrainCalls(log, "t/x/s0/killed")
    assert calls() == 0  # no log yet
    log.write_text(
        "\n".join([line("t/x/s0/killed"), line("t/x/s0/killed", phase="test"),
                   line("t/x/s0/killed", role="optimizer"), line("t/x/s0/killed", status=500),
                   line("t/x/s0/uninterrupted"), line("t/x/s0/killed")]) + "\n"
        + line("t/x/s0/killed")[:20]  # the proxy mid-write: not a line yet
    )  # fmt: skip
    assert calls() == 2
    with open(log, "a") as f:
        f.write(line("t/x/s0/killed")[20:] + "\n")
    assert calls() == 3  # the rest of the half-written line, read once


def results(
    started: str, runs: list[tuple[str, str]], marks: dict[str, str], budget: int = 10
) -> Any:
    """A results file of run.py, as much of one as the page's merge reads."""
    return {
        "kind": "full", "started": started, "wall_s": 60.0, "protocol": {"seeds": [0]},
        "machine": {"server_threads": int(started[-1])}, "folds": {started: {"n_train": 1}},
        "runs": [{"task": "t", "tool": tool, "seed": 0, "budget": budget, "instruction": ins}
                 for tool, ins in runs],
        "heldout": {"t": {"instructions": {
            ins: {"marks": m, "accuracy": None, "answers": {}} for ins, m in marks.items()}}},
    }  # fmt: skip


def test_the_pages_merge_of_results_files(monkeypatch: pytest.MonkeyPatch) -> None:
    page = peers_module("page", monkeypatch)

    first = results("2026-01-01", [("opro", "a"), ("peer", "b")],
                    {"": "0000000000", "a": "0000000000", "b": "1111111111"})  # fmt: skip
    rerun = results("2026-01-02", [("opro", "c")], {"": "0000000000", "c": "1111111110"})
    merged = page.combine([rerun, first])  # in the order run, whatever the order given
    assert [(r["tool"], r["instruction"]) for r in merged["runs"]] == [("peer", "b"), ("opro", "c")]
    peer = merged["runs"][0]
    assert peer["test_accuracy"] == 1.0
    assert peer["vs_start"]["only_other"] == 10
    assert peer["vs_opro"]["only_base"] == 0  # against the rerun's "c", not "a"
    assert peer["vs_opro"]["only_other"] == 1
    assert merged["wall_s"] == 120.0
    assert [r["threads"] for r in merged["runs"]] == [1, 2]  # each run its invocation's
    assert list(merged["folds"]) == ["2026-01-01", "2026-01-02"]  # every invocation's tasks
    assert page.server_threads(merged).startswith("threads by invocation, 1 in 1, 2 in 1")
    broken = results("2026-01-03", [("opro", "d")], {"": "00", "d": "11"})
    with pytest.raises(AssertionError, match="held-out folds differ"):
        page.combine([first, broken])


def test_runs_at_another_budget_are_kept_apart_and_paired_within_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = peers_module("page", monkeypatch)
    marks = {"": "0000000000", "a": "0000000000", "b": "1111111111", "c": "1111100000"}
    small = results("2026-01-01", [("opro", "a"), ("peer", "b")], marks)
    large = results("2026-01-02", [("opro", "c"), ("peer", "b")], marks, budget=20)
    merged = page.combine([small, large])
    assert [(r["tool"], r["budget"]) for r in merged["runs"]] == [
        ("opro", 10), ("peer", 10), ("opro", 20), ("peer", 20)
    ]  # a larger budget is not a rerun of the same seed  # fmt: skip
    assert merged["protocol"]["budgets"] == [10, 20]
    peer_small, peer_large = merged["runs"][1], merged["runs"][3]
    assert peer_small["vs_opro"]["only_other"] == 10  # against "a", opro at its budget
    assert peer_large["vs_opro"]["only_other"] == 5  # against "c"
    assert page.pooled_vs_opro(merged, "t", "peer", 20).startswith("0 / 5, p")
    tables = [line for line in page.summary(merged, None) if line.startswith("bbh:t, a budget")]
    assert [t.split(",")[1] for t in tables] == [
        " a budget of 10 training scorer calls", " a budget of 20 training scorer calls"
    ]  # fmt: skip


def test_results_are_rebuilt_from_a_work_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invocation whose orchestrator stopped before writing its results: each run, and
    the held-out marks of every instruction answered on the whole fold, from the folder."""
    run = peers_module("run", monkeypatch)
    work = tmp_path / "work"
    (work / "folds" / "toy").mkdir(parents=True)
    train = work / "folds" / "toy" / "toy.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:2]))
    test = [{**ROWS[2], "index": 11}, {**ROWS[0], "index": 4}]  # the log names rows by index
    (work / "folds" / "toy" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    folder = work / "runs" / "toy-peer-s0"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(
        json.dumps({"tool": "peer", "task": "toy", "train": str(train), "budget": 4, "seed": 0})
    )
    (folder / "found.json").write_text(json.dumps({"instruction": "Be brief.", "notes": []}))

    def call(run_name: str, phase: str, ins: str, index: int, ok: bool, text: str) -> str:
        return json.dumps({"run": run_name, "t": 1.0 + index, "role": "scorer", "phase": phase,
                           "status": 200, "instruction": ins, "index": index, "correct": ok,
                           "completion": text})  # fmt: skip

    log = [
        call("toy/peer/s0", "train", i, x, ok, " (A)")
        for i, x, ok in [
            ("", 4, True),
            ("", 9, False),
            ("Be brief.", 4, True),
            ("Be brief.", 9, True),
        ]
    ]
    log += [call("toy/heldout", "test", "", 4, True, " (A)"),
            call("toy/heldout", "test", "", 11, False, " the hat"),
            call("toy/heldout", "test", "Be brief.", 11, True, " (B)"),
            call("toy/heldout", "test", "Be brief.", 4, True, " (A)"),
            call("toy/heldout", "test", "Half.", 4, True, " (A)")]  # fmt: skip
    (work / "calls.jsonl").write_text("\n".join(log) + "\n")
    rebuilt = run.rebuild(work, tmp_path / "out.json", "2026-01-01T00:00:00")
    (row,) = rebuilt["runs"]
    assert (row["tool"], row["instruction"], row["train_accuracy_proxy"]) == (
        "peer",
        "Be brief.",
        1.0,
    )
    assert row["calls"]["scorer"]["by_phase"] == {"train": 4}
    assert row["budget_used"] == 1.0
    assert row["rebuilt"] is True
    held = rebuilt["heldout"]["toy"]["instructions"]
    assert set(held) == {"", "Be brief."}  # "Half." answered one question: not an evaluation
    assert held[""]["marks"] == "01"  # in the fold's order: row 11, then row 4
    assert held["Be brief."]["marks"] == "11"
    assert held[""]["answers"] == {"(A)": 0.5, "other": 0.5}
