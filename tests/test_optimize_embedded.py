"""`opro optimize` end to end on the embedded model (gemma3-270m as scorer and optimizer),
with the offline defaults: pre-trained meta-prompt, Q/A pattern, A_begin."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import SHARED_DATA, run_cli
from tests.doubles import spec_of, steps_of


def test_two_steps_on_boolean_expressions(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
        "--steps", "2", "--candidates-per-step", "3", "--max-train", "6", "--max-test", "6",
        "--scorer-max-tokens", "8", "--constrained", "--initial", "",
        "--initial", "Let's think step by step.", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert summary["steps_completed"] == 2
    config = spec_of(out)
    assert config["scorer"]["spec"] == config["optimizer"]["spec"] == "local:gemma3-270m"
    assert config["position"] == "A_begin"
    assert config["style"] == "pretrained"
    assert config["engine"]["max_tokens"] == 64  # resolved from the style, kept in the spec
    steps = steps_of(out)
    assert [s["step"] for s in steps] == [0, 1, 2]
    for step in steps[1:]:
        assert "Precision:" in step["meta_prompt"]
        assert len(step["outputs"]) == 3
        for output in step["outputs"]:  # constrained: one well-formed Precision line
            assert re.fullmatch(r" \d\d? <TEXT>[A-Za-z][^<>\n]*(</TEXT>)?", output), output
    scored = [c for s in steps for c in s["candidates"]]
    assert all(len(c["details"]["marks"]) == 6 for c in scored)
    assert summary["usage"]["scorer"]["calls"] >= 6 * len(scored)
    assert summary["best_train_score"] == max(c["score"] for c in scored)
    rows = summary["test_evaluation"]
    assert rows[0]["instruction"] == ""
    assert all(r["n"] == 6 and r["failed"] == 0 for r in rows)
    again = run_cli("resume", str(out))
    assert again.returncode == 0
    assert "already finished" in again.stdout
