"""A regular expression for a labelled set of strings: US ZIP codes (five digits, or five
digits, a hyphen and four more) against near misses. The score is the percentage of the 16
strings it classifies right (a positive matched in full, a negative not); the known optimum,
100, is reached by ``[0-9]{5}(-[0-9]{4})?`` among many.

    T=$(python -c 'import examples.objectives.regex as m; print(m.TASK)')
    F=$(python -c 'import examples.objectives.regex as m; print(m.SOLUTION_FORMAT)')
    opro solve --objective examples.objectives.regex:score --task "$T" --solution-format "$F" \\
        --initial "[a-z]+" --target 100 --steps 8

An expression that does not compile raises ``re.error``: the run records it invalid with
the reason, and never shows it to the optimizer.
"""

from __future__ import annotations

import re

POSITIVES = ("12345", "98052", "02139", "60614-1234", "10001-0001", "94103", "30301-9999", "73301")
NEGATIVES = (
    "1234", "123456", "12345-", "12345-678", "abcde", "1234-5678", "12 345", "60614-12345",
)  # fmt: skip
TASK = (
    "Find a regular expression that matches each of these strings in full: "
    + ", ".join(POSITIVES)
    + "; and matches none of these: "
    + ", ".join(NEGATIVES)
    + f". The score is the percentage of the {len(POSITIVES) + len(NEGATIVES)} strings "
    "that it classifies correctly."
)
SOLUTION_FORMAT = "A solution is a Python regular expression, without quotes around it."
INITIAL = "[a-z]+"
OPTIMUM = 100.0
KNOWN_BEST = r"[0-9]{5}(-[0-9]{4})?"


def score(solution: str) -> float:
    """The percentage of the labelled strings that ``solution`` classifies right; raises
    ``re.error`` when it is not a regular expression."""
    pattern = re.compile(solution)
    right = sum(pattern.fullmatch(s) is not None for s in POSITIVES)
    right += sum(pattern.fullmatch(s) is None for s in NEGATIVES)
    return 100.0 * right / (len(POSITIVES) + len(NEGATIVES))
