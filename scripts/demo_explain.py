"""The last words of `make demo`: what OPRO found and why it helps, in one sentence, from the
run's own numbers — the test answers under the empty start and under the found instruction
(replayed from the call cache, so this costs no model time): a constant answer, a format
fix (more answers the scorer can read), or neither; and, for a task with few labels, how
it compares with answering at random.

    .venv/bin/python scripts/demo_explain.py RUN_DIR
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import opro
from opro.eval.answers import normalize_prediction
from opro.llm.cache import CallCache, default_cache_path
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.instructions.task import task_data
from opro.runlog import RunDir


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
    n_test = details["n_test"]
    scored = opro.evaluate(spec, [start, found], max_examples=n_test, seed=1, cache=cache)
    examples = {e.index: e for e in task_data(spec).test}
    # What the scorer's answer reads as (a label, an option, a number; "" if none).
    read = [
        [
            normalize_prediction(
                r.prediction, kind=examples[r.index].kind, question=examples[r.index].question
            )
            for r in res.results
        ]
        for res in scored.results
    ]
    labels = Counter(str(e.answer) for e in examples.values())
    paired = details["paired_test"]
    p_value = paired["p_value"]
    verdict = "a real gain" if p_value < 0.05 else "not a significant gain"
    sentence = (
        f"OPRO found {found!r}: on {n_test} held-out questions gemma3-270m is right "
        f"{details['best_test_score']:.0f} % of the time with it against "
        f"{details['initial_test_score']:.0f} % with the empty start (McNemar p = {p_value:.2g}, "
        f"{verdict})"
    )
    n = len(read[1])
    answered = [sum(bool(a) for a in answers) for answers in read]
    given = Counter(a for a in read[1] if a)  # the answers it gives, when it gives one
    top, count = given.most_common(1)[0] if given else ("", 0)
    if len(labels) <= 8 and count >= 0.5 * n and count >= 0.9 * answered[1]:
        share = 100 * sum(_same(top, str(e.answer)) for e in examples.values()) / len(examples)
        first = ", the first option listed," if top == "(A)" else ""
        sentence += (
            f", because with it the model answers {top}{first} whenever it answers ({count} of "
            f"{n} questions; {n - answered[1]} without an answer), and {top} is the right "
            f"answer to {share:.0f} % of them — a constant answer, not better reasoning"
        )
    elif answered[1] >= answered[0] + 0.1 * n:
        sentence += (
            f", because with it the model gives an answer the scoring can read more often "
            f"({answered[1]} of {n} against {answered[0]} with the start) — a format fix, not "
            "better reasoning"
        )
    else:
        sentence += (
            f": it answers {paired['only_other']} questions right that the start got wrong and "
            f"{paired['only_baseline']} wrong that the start got right"
        )
    if len(labels) <= 8:
        chance = 100 / len(labels)
        side = "below" if details["best_test_score"] < chance else "above"
        sentence += f"; still {side} the {chance:.0f} % of answering at random."
    else:
        sentence += "."
    print(sentence)
    return 0


def _same(read: str, answer: str) -> bool:
    """Whether an extracted answer ("(a)", "true") is this label ("(A)", "True")."""
    return read.strip("()").lower() == answer.strip("()").lower()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
