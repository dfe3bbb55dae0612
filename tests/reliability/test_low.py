"""The low items of issue #17, and what the fuzz test found: each an exit 70 or a silent
wrong state before, each one line naming the fix now, with nothing written.

(Covered elsewhere: ``--out ""`` and a stray steps.jsonl in ``test_run_dirs``; ``evaluate
--max-calls`` in ``test_caps``; a corrupt cache row in ``test_cache_faults``; retries
across sessions, SIGINT/SIGTERM and ``.part`` files in ``test_run_dirs`` and
``test_signals``; untrusted code and URL secrets in ``test_untrusted``.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA, Ran, assert_one_line_error

BOOLEAN = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
FAKES = ["--scorer", "fake:tests.doubles:boolean_scorer", "--optimizer", "fake:echo"]
NESTED = "[" * 100_000 + "]" * 100_000


def case(tmp: Path, name: str) -> tuple[list[str], tuple[str, ...]]:
    """A command line written against ``tmp``, and what its one-line error must say."""
    (tmp / "latin1.json").write_bytes(b'{"points": [[0, 0], [1, 1], [2, 3]]} \xe9')
    (tmp / "one.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    (tmp / "nested.jsonl").write_text(NESTED + "\n")
    (tmp / "far.json").write_text('{"points": [[1e400, 0], [1, 1], [2, 2]]}')
    (tmp / "big.json").write_text('{"points": [[' + "9" * 400 + ", 0], [1, 1], [2, 2]]}")
    out = ["--out", str(tmp / "out")]
    cases: dict[str, tuple[list[str], tuple[str, ...]]] = {
        "seed-negative": (["optimize", *BOOLEAN, *FAKES, "--seed", "-1", *out],
                          ("--seed must be >= 0",)),
        "seed-huge": (["evaluate", *BOOLEAN, *FAKES[:2], "--instruction", "x", "--seed",
                       "99999999999999999999"], ("--seed must be <= 2147483647",)),
        "baselines-seed": (["tsp", "baselines", "--nodes", "5", "--seed", "-1"],
                           ("--seed must be >= 0",)),
        "instance-not-utf8": (["tsp", "--instance", str(tmp / "latin1.json"), *out],
                              ("is not UTF-8 text",)),
        "instance-far": (["tsp", "--instance", str(tmp / "far.json"), *out],
                         ("coordinates must lie within",)),
        "instance-bigint": (["tsp", "baselines", "--instance", str(tmp / "big.json")],
                            ("coordinates must lie within",)),
        "w-true-huge": (["linreg", "--optimizer", "fake:echo", "--w-true", "1e300", *out],
                        ("--w-true",)),
        "w-true-big-int": (["linreg", "--optimizer", "fake:echo", "--w-true", "10000000",
                            *out], ("--w-true must be <=",)),
        "scorer-not-gguf": (["optimize", *BOOLEAN, *FAKES, "--scorer", "local:/etc/passwd",
                             *out], ("/etc/passwd is not a GGUF model file",)),
        "price-nan": (["optimize", *BOOLEAN, *FAKES, "--scorer-price", "nan,inf", *out],
                      ("must be two finite, non-negative numbers",)),
        "one-example": (["optimize", "--dataset", f"jsonl:{tmp / 'one.jsonl'}", *FAKES, *out],
                        ("has no training examples", "--train-size", "--test-dataset")),
        "nested-dataset": (["evaluate", "--dataset", f"jsonl:{tmp / 'nested.jsonl'}",
                            *FAKES[:2], "--instruction", "x"], ("JSON nested too deeply",)),
        "n-huge": (["complete", "hi", "--model", "fake:echo", "-n", "100000000"],
                   ("-n must be between 1 and 1000",)),
        "samples-huge": (["optimize", *BOOLEAN, *FAKES, "--samples-per-step", "10000000",
                          *out], ("--samples-per-step must be <= 1000",)),
        "reps-huge": (["linreg", "--optimizer", "fake:echo", "--reps", "10000000", *out],
                      ("--reps must be <= 1000",)),
        "sweep-endless": (["sweep", "/dev/zero", *out], ("/dev/zero is over 4 MB",)),
        "grammar-endless": (["complete", "hi", "--model", "fake:echo", "--grammar",
                             "/dev/zero"], ("/dev/zero is over 1 MB",)),
        "source-empty": (["data", "fetch", "--source", "", "--data-dir", str(tmp / "d")],
                         ("an empty URL",)),
    }  # fmt: skip
    return cases[name]


NAMES = ["seed-negative", "seed-huge", "baselines-seed", "instance-not-utf8", "instance-far",
         "instance-bigint", "w-true-huge", "w-true-big-int", "scorer-not-gguf", "price-nan",
         "one-example", "nested-dataset", "n-huge", "samples-huge", "reps-huge",
         "sweep-endless", "grammar-endless", "source-empty"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_a_low_item_is_one_line_and_writes_nothing(
    opro: Callable[..., Ran], tmp_path: Path, name: str
) -> None:
    args, needles = case(tmp_path, name)
    result = opro(*args)
    assert_one_line_error(result, *needles)
    assert result.returncode == 2
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "d").exists()


def test_terminal_escape_codes_never_reach_the_terminal(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    hostile = "Think.\x1b]0;pwned\x07\x1b[2J\x9b31m"
    result = opro("-q", "evaluate", *BOOLEAN, *FAKES[:2], "--instruction", hostile,
                  "--max-examples", "3", "--no-cache")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\x07" not in result.stdout
    assert "\x9b" not in result.stdout
    assert "Think.\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in result.stdout  # shown, not acted on
    as_json = opro("-q", "evaluate", *BOOLEAN, *FAKES[:2], "--instruction", hostile,
                   "--max-examples", "3", "--no-cache", "--json")  # fmt: skip
    assert json.loads(as_json.stdout)["instructions"][0]["instruction"] == hostile  # exact


def test_a_failed_fetch_leaves_no_empty_folders(opro: Callable[..., Ran], tmp_path: Path) -> None:
    data = tmp_path / "data" / "nested"
    result = opro("data", "fetch", "--only", "aqua", "--source", "http://127.0.0.1:9",
                  "--data-dir", str(data))  # fmt: skip
    assert_one_line_error(result, "could not download", "--source URL")
    assert not (tmp_path / "data").exists()
