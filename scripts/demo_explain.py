"""The last words of `make demo`: what OPRO found and why it helps, in one sentence, from the
run's own numbers — the test answers under the empty start and under the found instruction
(replayed from the call cache, so this costs no model time).

    .venv/bin/python scripts/demo_explain.py RUN_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import opro
from opro.problems.instructions.spec import InstructionsSpec
from opro.runlog import RunDir

WORDS = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def main(run_dir: Path) -> int:
    folder = RunDir.open(run_dir)
    spec = folder.config().spec
    summary = folder.summary()
    assert isinstance(spec, InstructionsSpec)
    assert summary is not None
    assert summary.best is not None
    details = summary.details
    start, found = details["initial_instruction"], summary.best.text
    scored = opro.evaluate(spec, [start, found], max_examples=details["n_test"], seed=1)
    shares = []
    for result in scored.results:
        answered = [r for r in result.results if r.status != "failed"]
        said = sum(bool(WORDS.match(r.prediction.strip())) for r in answered)
        shares.append(100 * said / max(len(answered), 1))
    p_value = details["paired_test"]["p_value"]
    verdict = "a real gain" if p_value < 0.05 else "not a significant gain"
    print(
        f"OPRO found {found!r}: on {details['n_test']} held-out questions gemma3-270m is right "
        f"{details['best_test_score']:.0f} % of the time with it against "
        f"{details['initial_test_score']:.0f} % with the empty start (McNemar p = {p_value:.2g}, "
        f"{verdict}), because it makes the model begin its answer with yes or no "
        f"({shares[1]:.0f} % of its answers against {shares[0]:.0f} %) — a format fix, not "
        "better reasoning."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
