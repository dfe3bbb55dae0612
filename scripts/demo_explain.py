"""The last words of `make demo`: what OPRO found and why it helps, in one sentence, from the
run's own numbers — the test answers under the empty start and under the found instruction
(replayed from the call cache, so this costs no model time): a constant answer, a format
fix, or neither.

    .venv/bin/python scripts/demo_explain.py RUN_DIR
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import opro
from opro.llm.cache import CallCache, default_cache_path
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.instructions.task import task_data
from opro.runlog import RunDir


def _first_label(prediction: str, labels: dict[str, str]) -> str | None:
    """The first of the task's labels the answer names (as written in the data), if any."""
    for word in re.findall(r"[A-Za-z]+", prediction):
        if word.lower() in labels:
            return labels[word.lower()]
    return None


def main(run_dir: Path) -> int:
    folder = RunDir.open(run_dir)
    spec = folder.config().spec
    summary = folder.summary()
    assert isinstance(spec, InstructionsSpec)
    assert summary is not None
    assert summary.best is not None
    details = summary.details
    start, found = details["initial_instruction"], summary.best.text
    cache = CallCache(default_cache_path())  # the run's own answers: no model time
    scored = opro.evaluate(
        spec, [start, found], max_examples=details["n_test"], seed=1, cache=cache
    )
    test = task_data(spec).test
    labels = {str(e.answer).lower(): str(e.answer) for e in test}
    paired = details["paired_test"]
    p_value = paired["p_value"]
    verdict = "a real gain" if p_value < 0.05 else "not a significant gain"
    sentence = (
        f"OPRO found {found!r}: on {details['n_test']} held-out questions gemma3-270m is right "
        f"{details['best_test_score']:.0f} % of the time with it against "
        f"{details['initial_test_score']:.0f} % with the empty start (McNemar p = {p_value:.2g}, "
        f"{verdict})"
    )
    named = [[_first_label(r.prediction, labels) for r in res.results] for res in scored.results]
    n = len(named[1])
    top, count = Counter(named[1]).most_common(1)[0]
    starts = [
        sum(r.prediction.strip().lower().startswith(tuple(labels)) for r in res.results)
        for res in scored.results
    ]
    empty = scored.results[0].count("empty")
    if len(labels) <= 4 and top is not None and count >= 0.8 * n:
        share = 100 * sum(str(e.answer) == top for e in test) / len(test)
        sentence += (
            f", because it makes the model answer {top} to almost every question ({count} of "
            f"{n}), and {top} is the right answer to {share:.0f} % of them; the start answered "
            f"at random or not at all ({empty} empty) — a constant answer, not better reasoning."
        )
    elif len(labels) <= 4 and starts[1] >= starts[0] + 0.1 * n:
        sentence += (
            f", because it makes the model begin its answer with "
            f"{' or '.join(sorted(labels.values()))} ({starts[1]} of {n} answers against "
            f"{starts[0]}) — a format fix, not better reasoning."
        )
    else:
        sentence += (
            f": it answers {paired['only_other']} questions right that the start got wrong and "
            f"{paired['only_baseline']} wrong that the start got right."
        )
    print(sentence)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
