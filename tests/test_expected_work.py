"""A long run states what it will ask and how long it may take, before step 1 (#24 point 2):
a notice on stderr with the optimizer and scorer calls, and a time where a model is the
embedded one (an estimate, its rate stated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opro import InstructionsSpec, cli
from opro.problems.registry import kind_of
from tests.conftest import SHARED_DATA


def _optimize(out: Path, train: int) -> int:
    return cli.main([
        "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
        "--scorer", "fake:tests.doubles:boolean_scorer",
        "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "2",
        "--samples-per-step", "8", "--max-train", str(train), "--max-test", "10",
        "--out", str(out), "--no-report", "--no-cache",
    ])  # fmt: skip


def test_the_notice_comes_before_step_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _optimize(tmp_path / "run", 50) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (
        f"opro: {tmp_path / 'run'} will ask up to 16 optimizer calls (2 steps × 8 samples) and "
        "850 scorer calls (17 instructions × 50 training examples)"
    )
    assert _optimize(tmp_path / "short", 10) == 0  # 186 calls: nothing to plan for
    assert "will ask" not in capsys.readouterr().err


def test_embedded_models_give_a_time_said_to_be_an_estimate() -> None:
    kind = kind_of("instructions")
    spec = InstructionsSpec(dataset="bbh:navigate", data_dir=str(SHARED_DATA),
                            scorer="local:gemma3-270m", optimizer="local:gemma3-270m")  # fmt: skip
    spec = kind.resolve(spec, {"scorer": "completion", "optimizer": "completion"})
    problem = kind.build(spec, {"scorer": object(), "optimizer": object()})  # type: ignore[dict-item]
    text = kind.expected_work(spec, problem, spec.engine.steps, fresh=True)
    assert text.startswith("up to 1600 optimizer calls (200 steps × 8 samples) and 80050 scorer")
    assert "about 9.3 hours with the embedded scorer and optimizer (an estimate at" in text
    assert "measured on 2 CPU cores" in text
