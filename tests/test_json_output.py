"""Every command that prints JSON prints only JSON on stdout: nothing before it or after it
(a solver's banner, a notice, a progress line), so `opro ... --json | jq` always works."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from opro.cli import build_parser
from tests.conftest import run_cli

FAKE = "fake:tests.doubles:instruction_proposer"


def _dataset(tmp_path: Path) -> Path:
    rows = [{"question": f"True and {b} is", "answer": str(b)} for b in [True, False] * 10]
    path = tmp_path / "bools.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _instance(tmp_path: Path) -> Path:
    path = tmp_path / "i.json"
    path.write_text(json.dumps({"points": [[0, 0], [10, 0], [10, 10], [0, 10], [5, 3]]}))
    return path


def _stopped_run(tmp_path: Path) -> Path:
    out = tmp_path / "stopped"
    made = run_cli("linreg", "--optimizer", "fake:tests.doubles:linreg_walker", "--steps", "3",
                   "--reps", "1", "--max-calls", "8", "--out", str(out), "-q")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out


def _instruction_run(tmp_path: Path) -> Path:
    out = tmp_path / "instructions"
    made = run_cli("optimize", "--dataset", f"jsonl:{_dataset(tmp_path)}", "--scorer",
                   "fake:tests.doubles:boolean_scorer", "--optimizer", FAKE, "--steps", "1",
                   "--out", str(out), "--no-report", "-q")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out


def noisy(solution: str) -> float:
    """An objective that prints, as users' do: its prints must not reach stdout."""
    print(f"scoring {solution!r}")
    return float(len(solution))


# (name, argv builder): one case per command that has --json, plus the run commands whose
# summary is JSON.
CASES = {
    "models": lambda tmp: ["models", "--json"],
    "complete": lambda tmp: ["complete", "hello", "--model", "fake:echo", "-n", "2", "--json"],
    "tsp baselines": lambda tmp: [
        "tsp",
        "baselines",
        "--instance",
        str(_instance(tmp)),
        "--json",
    ],
    "evaluate": lambda tmp: [
        "evaluate",
        "--dataset",
        f"jsonl:{_dataset(tmp)}",
        "--scorer",
        "fake:tests.doubles:boolean_scorer",
        "--instruction",
        "",
        "--instruction",
        "Think.",
        "--split",
        "all",
        "--json",
    ],
    "tsp run": lambda tmp: [
        "tsp",
        "--instance",
        str(_instance(tmp)),
        "--optimizer",
        "fake:tests.doubles:tsp_shuffler",
        "--steps",
        "2",
        "--out",
        str(tmp / "tsp-run"),
        "--json",
    ],
    "linreg": lambda tmp: [
        "linreg",
        "--optimizer",
        "fake:tests.doubles:linreg_walker",
        "--steps",
        "2",
        "--reps",
        "2",
        "--out",
        str(tmp / "linreg-job"),
        "--json",
    ],
    "resume": lambda tmp: ["resume", str(_stopped_run(tmp)), "--json", "--trust-code"],
    "export": lambda tmp: ["export", str(_instruction_run(tmp)), "--json"],
    "solve": lambda tmp: [
        "solve",
        "--objective",
        "tests.test_json_output:noisy",
        "--task",
        "Write a long word.",
        "--initial",
        "ab",
        "--optimizer",
        "fake:tests.test_objective:propose_words",
        "--steps",
        "1",
        "--out",
        str(tmp / "solve-run"),
        "--json",
    ],
    "optimize": lambda tmp: [
        "optimize",
        "--dataset",
        f"jsonl:{_dataset(tmp)}",
        "--scorer",
        "fake:tests.doubles:boolean_scorer",
        "--optimizer",
        FAKE,
        "--steps",
        "1",
        "--out",
        str(tmp / "opt-run"),
        "--json",
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_stdout_is_exactly_one_json_document(tmp_path: Path, name: str) -> None:
    result = run_cli(*CASES[name](tmp_path), "-q")
    assert result.returncode == 0, result.stderr
    # json.loads refuses anything but whitespace around the one document.
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert data


def test_every_json_flag_has_a_case() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    with_json = {
        name
        for name, sub in subparsers.choices.items()
        if any("--json" in action.option_strings for action in sub._actions)
    }
    covered = {name.split()[0] for name in CASES}
    assert with_json <= covered, f"add a case for: {sorted(with_json - covered)}"
