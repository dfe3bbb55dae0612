"""A hidden word, as in Mastermind or Wordle: the score is the number of positions where the
guess has the hidden word's letter (the known optimum is 6, the word itself), and the
feedback text says which positions are right and which letters are in the word elsewhere.
``--feedback`` shows that text next to each score in the meta-prompt; without it the
optimizer sees the scores only.

    T=$(python -c 'import examples.objectives.feedback as m; print(m.TASK)')
    F=$(python -c 'import examples.objectives.feedback as m; print(m.SOLUTION_FORMAT)')
    opro solve --objective examples.objectives.feedback:score --task "$T" --solution-format "$F" \\
        --initial listen --target 6 --steps 8 --feedback

A guess that is not a word of six letters raises ``ValueError``: the run records it
invalid with the reason.
"""

from __future__ import annotations

import re

SECRET = "planet"
TASK = (
    f"Guess a hidden English word of {len(SECRET)} letters. The score is the number of "
    "positions where the guess has the same letter as the hidden word."
)
SOLUTION_FORMAT = f"A solution is one word of {len(SECRET)} lowercase letters."
INITIAL = "listen"
OPTIMUM = len(SECRET)


def score(solution: str) -> tuple[int, str]:
    """The number of letters in place, and feedback naming them; ValueError for a guess
    that is not a word of the hidden word's length."""
    guess = solution.strip().lower()
    if not re.fullmatch(f"[a-z]{{{len(SECRET)}}}", guess):
        raise ValueError(f"give one word of {len(SECRET)} letters a to z")
    pairs = list(zip(guess, SECRET, strict=True))
    in_place = " ".join(g if g == s else "_" for g, s in pairs)
    missed = [s for g, s in pairs if g != s]  # the hidden word's letters not yet in place
    elsewhere = sorted({g for g, s in pairs if g != s and g in missed})
    absent = sorted(set(guess) - set(SECRET))
    feedback = (
        f"letters in place: {in_place}; in the word elsewhere: {', '.join(elsewhere) or 'none'}"
        f"; not in the word: {', '.join(absent) or 'none'}"
    )
    return sum(g == s for g, s in pairs), feedback
