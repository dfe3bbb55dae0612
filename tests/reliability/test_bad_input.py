"""Bad input, through the real ``opro`` command: one line on stderr naming the fix, a
non-zero exit, no traceback, and nothing half-written.

Each case runs ``opro`` in a subprocess with ``--out`` in a temporary folder (where the
command has one) and checks that the folder does not exist afterwards; the ``opro resume``
cases check that what they were pointed at is unchanged byte for byte. The models are
scripted ``fake:`` doubles (``tests/doubles.py``) so that nothing slow is loaded: a case
that would need a real model must fail before loading it.

An unreachable scorer server in ``opro optimize`` is met at the first call, after the run
dir is made; since nothing was recorded, the dir is removed again and the error is one line
like any other (``test_optimize_against_an_unreachable_server_leaves_nothing``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opro.testing.stub_server import StubServer
from tests.conftest import ROOT, SHARED_DATA, assert_one_line_error, run_cli

FAKES = {"PYTHONPATH": str(ROOT)}
SCORER = ["--scorer", "fake:tests.doubles:boolean_scorer"]
OPTIMIZER = ["--optimizer", "fake:tests.doubles:instruction_proposer"]
BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there


@dataclass(frozen=True)
class Case:
    """``args(tmp)`` is the command line; ``--out`` is appended for commands that write."""

    id: str
    args: Callable[[Path], list[str]]
    needles: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    writes: bool = True


def fixed(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: list(args)


def optimize(*extra: str) -> Callable[[Path], list[str]]:
    """optimize on BBH boolean_expressions with the fakes; a later flag wins (argparse)."""
    return fixed("optimize", *BOOLEAN, *SCORER, *OPTIMIZER, *extra)


def on_file(name: str, content: str, kind: str) -> Callable[[Path], list[str]]:
    """optimize on a dataset file written into the test's folder."""

    def args(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_text(content, encoding="utf-8")
        return ["optimize", "--dataset", f"{kind}:{path}", *SCORER, *OPTIMIZER]

    return args


def tsp_on(content: str) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        path = tmp / "instance.json"
        path.write_text(content, encoding="utf-8")
        return ["tsp", "--instance", str(path), "--optimizer", "fake:tests.doubles:tsp_shuffler"]

    return args


GOOD_ROW = '{"question": "True and False is", "answer": "False"}\n'

CASES = [
    # -- datasets
    Case("unknown-dataset", optimize("--dataset", "gsm9k"), ("did you mean gsm8k?",)),
    Case(
        "unknown-bbh-task",
        optimize("--dataset", "bbh:boolean_expresions"),
        ("unknown BBH task", "did you mean boolean_expressions?"),
    ),
    Case(
        "jsonl-bad-json-line-2",
        on_file("bad.jsonl", GOOD_ROW + '{"question": "x", answer\n', "jsonl"),
        ("bad JSON at line 2", "fix the file"),
    ),
    Case(
        "jsonl-row-without-answer",
        on_file("noanswer.jsonl", GOOD_ROW + '{"question": "x"}\n', "jsonl"),
        ("line 2 has no field 'answer'", "fix the file"),
    ),
    Case("jsonl-empty", on_file("empty.jsonl", "", "jsonl"), ("no examples", "fix the file")),
    Case(
        "csv-without-question-column",
        on_file("noquestion.csv", "query,answer\nTrue is,True\n", "csv"),
        ("no field 'question'", "fix the file"),
    ),
    Case(
        "missing-data-dir",
        fixed(
            "optimize",
            "--dataset",
            "bbh:navigate",
            "--data-dir",
            "/nonexistent",
            *SCORER,
            *OPTIMIZER,
        ),
        ("/nonexistent not found", "--data-dir", "opro data fetch"),
    ),
    # -- models and keys
    Case(
        "unknown-backend",
        optimize("--scorer", "nope:x"),
        ("unknown backend 'nope'", "did you mean openai:x?"),
    ),
    Case(
        "backend-without-model",
        optimize("--optimizer", "openai"),
        ("no backend prefix", "openai:gpt-4o-mini"),
    ),
    Case(
        "missing-openai-key",
        optimize("--scorer", "openai:gpt-4o-mini"),
        ("OPENAI_API_KEY is not set", "export OPENAI_API_KEY="),
    ),
    Case(
        "missing-named-key",
        optimize("--scorer", "openai:gpt-4o-mini", "--scorer-api-key-env", "MY_KEY"),
        ("MY_KEY", "is not set", "export MY_KEY="),
    ),
    Case(
        "unreachable-server-evaluate",
        fixed(
            "evaluate",
            *BOOLEAN,
            "--scorer",
            "openai:m",
            "--scorer-base-url",
            UNREACHABLE,
            "--instruction",
            "Think.",
            "--max-examples",
            "3",
        ),
        (f"cannot connect to {UNREACHABLE}", "start the server"),
        env={"OPENAI_API_KEY": "dummy-key-for-an-unreachable-server"},
        writes=False,
    ),
    Case(
        "linreg-missing-key",  # was: a run dir with only config.json left behind
        fixed("linreg", "--optimizer", "openai:gpt-4o-mini", "--reps", "2"),
        ("OPENAI_API_KEY is not set",),
    ),
    Case(
        "tsp-unknown-embedded-model",  # was: a run dir with only config.json left behind
        fixed("tsp", "--nodes", "5", "--optimizer", "local:gemma-9b"),
        ("unknown embedded model", "local:gemma3-270m"),
    ),
    # -- the loop's numbers
    Case("steps-zero", optimize("--steps", "0"), ("--steps must be >= 1",)),
    Case("steps-negative", optimize("--steps", "-3"), ("--steps must be >= 1",)),
    Case(
        "candidates-zero",
        optimize("--candidates-per-step", "0"),
        ("--samples-per-step must be >= 1",),
    ),
    Case(
        "candidates-negative",
        optimize("--candidates-per-step", "-2"),
        ("--samples-per-step must be >= 1",),
    ),
    Case("top-k-zero", optimize("--top-k", "0"), ("--top-k must be >= 1",)),
    Case("top-k-negative", optimize("--top-k", "-1"), ("--top-k must be >= 1",)),
    Case("exemplars-negative", optimize("--exemplars", "-1"), ("--exemplars must be >= 0",)),
    Case("max-train-zero", optimize("--max-train", "0"), ("--max-train must be >= 1",)),
    Case("max-test-zero", optimize("--max-test", "0"), ("--max-test must be >= 1",)),
    Case("linreg-steps-zero", fixed("linreg", "--steps", "0"), ("--steps must be >= 1",)),
    # -- options that disagree (fails before the embedded model is loaded)
    Case(
        "a-begin-with-a-chat-scorer",
        optimize("--dataset", "bbh:navigate", "--scorer", "local:smollm2", "--position", "A_begin"),
        ("A_begin needs a pre-trained (completion) scorer", "Q_begin"),
    ),
    # -- TSP instances
    Case(
        "tsp-duplicate-points",
        tsp_on('{"points": [[0, 0], [5, 5], [0, 0]]}'),
        ("duplicate point",),
    ),
    Case(
        "tsp-non-numeric-coordinate",
        tsp_on('{"points": [[0, 0], [1, "a"], [2, 2]]}'),
        ("point 1", "not a pair of numbers [x, y]"),
    ),
    Case(
        "tsp-two-points",
        tsp_on('{"points": [[0, 0], [1, 1]]}'),
        ("at least 3 points", "got 2"),
    ),
    Case("tsp-malformed-json", tsp_on('{"points": [[0, 0],'), ("not valid JSON",)),
    Case("tsp-wrong-shape", tsp_on('{"pts": [[0, 0]]}'), ('{"points": [[x, y], ...]}',)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = case.args(tmp_path)
    if case.writes:
        args += ["--out", str(out)]
    result = run_cli(*args, env=FAKES | case.env, timeout=60)
    assert_one_line_error(result, *case.needles)
    assert result.stdout == ""
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


# -- opro resume on what is not (or no longer) a run ----------------------------------------


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) at or under ``path``."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {
        str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
        for p in sorted(path.rglob("*"))
    }


def test_resume_an_empty_dir(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("resume", str(empty))
    assert_one_line_error(result, "not an opro run directory", "no config.json", "--out")
    assert snapshot(empty) == {}


def test_resume_a_file(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("not a run\n")
    result = run_cli("resume", str(file))
    assert_one_line_error(result, f"{file} is not an opro run directory")
    assert file.read_text() == "not a run\n"


def test_resume_a_missing_dir_does_not_create_it(tmp_path: Path) -> None:
    result = run_cli("resume", str(tmp_path / "nope"))
    assert_one_line_error(result, "not an opro run directory")
    assert not (tmp_path / "nope").exists()


def test_resume_a_run_of_an_incompatible_format(tmp_path: Path) -> None:
    run = tmp_path / "run"
    made = run_cli(
        "linreg",
        "--optimizer",
        "fake:tests.doubles:linreg_walker",
        "--steps",
        "1",
        "--reps",
        "1",
        "--out",
        str(run),
        env=FAKES,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["format"] == 2
    (run / "config.json").write_text(json.dumps(config | {"format": 999}, indent=2))
    before = snapshot(run)
    assert "steps.jsonl" in before
    result = run_cli("resume", str(run), env=FAKES, timeout=60)
    assert_one_line_error(result, "incompatible opro", "run format 999", "this opro reads 1, 2")
    assert snapshot(run) == before


# -- the one case met after the run dir is made ---------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_optimize_against_an_unreachable_server_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    out = tmp_path / "out"
    env = FAKES | {"OPENAI_API_KEY": "dummy-key-for-a-local-server"}
    args = [*BOOLEAN, "--scorer", "openai:m", "--scorer-base-url", url, *OPTIMIZER]
    args += ["--steps", "1", "--max-train", "4", "--max-test", "4", "--out", str(out)]
    result = run_cli("optimize", *args, env=env, timeout=60)
    assert_one_line_error(result, f"cannot connect to {url}")
    assert not out.exists()

    with StubServer(port=port) as server:  # the same command works once the server is up
        again = run_cli("optimize", *args, env=env, timeout=60)
        assert server.requests
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"
    steps = (out / "steps.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in steps] == [0, 1]
