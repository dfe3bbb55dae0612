"""The objective examples (``examples/objectives/``) score their known optima as optimal, and
the knapsack's dynamic programme finds the true optimum (brute force over every subset). No
LLM: ``benchmarks/objectives.py`` runs the examples with the embedded model."""

from __future__ import annotations

import importlib
import itertools
import re

import pytest

from examples.objectives import feedback, knapsack, regex


def test_the_knapsack_optimum_is_the_best_of_every_subset() -> None:
    n = len(knapsack.WEIGHTS)
    best = max(
        sum(knapsack.VALUES[i] for i in subset)
        for size in range(n + 1)
        for subset in itertools.combinations(range(n), size)
        if sum(knapsack.WEIGHTS[i] for i in subset) <= knapsack.CAPACITY
    )
    value, items = knapsack.optimum()
    assert value == best == knapsack.OPTIMUM
    assert knapsack.score(", ".join(map(str, items))) == best
    assert knapsack.score(" ".join(map(str, reversed(items)))) == best  # any order, spaces


@pytest.mark.parametrize(
    ("solution", "why"),
    [("2, 3", "over capacity"), ("1, 1", "twice"), ("0, 13", "from 1 to 12"), ("a", "commas")],
)
def test_a_knapsack_solution_it_cannot_score_raises(solution: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        knapsack.score(solution)


def test_the_regex_optimum_classifies_every_string() -> None:
    assert regex.score(regex.KNOWN_BEST) == regex.OPTIMUM == 100.0
    assert regex.score(".*") == 50.0  # every positive, no negative
    with pytest.raises(re.error):
        regex.score("[0-9")


def test_the_hidden_word_scores_six_and_its_feedback_names_the_letters() -> None:
    assert feedback.score(feedback.SECRET) == (feedback.OPTIMUM, _feedback("p l a n e t"))
    assert feedback.score("plates") == (4, _feedback("p l a _ e _", "t", "s"))
    with pytest.raises(ValueError, match="6 letters"):
        feedback.score("plane")


def _feedback(in_place: str, elsewhere: str = "none", absent: str = "none") -> str:
    return (
        f"letters in place: {in_place}; in the word elsewhere: {elsewhere}; "
        f"not in the word: {absent}"
    )


@pytest.mark.parametrize("name", ["regex", "knapsack", "feedback"])
def test_each_example_starts_below_its_optimum_and_says_how_to_run_it(name: str) -> None:
    m = importlib.import_module(f"examples.objectives.{name}")
    start = m.score(m.INITIAL)
    assert (start[0] if isinstance(start, tuple) else start) < m.OPTIMUM
    doc = m.__doc__ or ""
    assert f"--objective examples.objectives.{name}:score" in doc
    assert f"--target {m.OPTIMUM:g}" in doc
