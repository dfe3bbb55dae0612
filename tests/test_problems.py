"""Parsing proposals, meta-prompt golden files, history ordering."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opro.history import History, Scored
from opro.llm.base import BackendOptions
from opro.llm.fake import FakeLLM
from opro.meta_prompt import display_score, render_meta_prompt
from opro.problems.linreg import LinearRegression, LinregKind, LinregSpec, parse_pair
from opro.problems.spec import EngineSpec
from opro.problems.tsp import TravellingSalesman, canonical_cycle, parse_trace
from opro.problems.tsp_solvers import tour_length

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("[3, 5]", (3, 5)),
        ("I propose w=1 b=2, so [w, b] = [17, -4]", (17, -4)),
        ("first [1, 2] then finally [3.6, 4.4]", (4, 4)),
        ("The output must end with [w, b]", None),
        ("[1, 2, 3]", None),
        ("no pair here", None),
        ("[1e9999, 2]", None),
    ],
)
def test_parse_pair(text: str, pair: tuple[int, int] | None) -> None:
    assert parse_pair(text) == pair


@given(st.text())
def test_parse_pair_never_crashes(text: str) -> None:
    result = parse_pair(text)
    assert result is None or all(isinstance(v, int) for v in result)


@given(st.integers(-999, 999), st.integers(-999, 999), st.text(alphabet="abc ,.\n"))
def test_parse_pair_reads_the_last_pair(w: int, b: int, noise: str) -> None:
    assert parse_pair(f"[1, 1] {noise} [{w}, {b}]{noise.replace('[', '')}") == (w, b)


@given(st.permutations(list(range(7))))
def test_a_parsed_trace_is_a_permutation(tour: list[int]) -> None:
    text = "<trace> " + ",".join(map(str, tour)) + " </trace>"
    assert parse_trace(text, 7) == tuple(tour)


@given(st.text())
def test_parse_trace_never_crashes_and_only_returns_permutations(text: str) -> None:
    result = parse_trace(text, 5)
    assert result is None or sorted(result) == list(range(5))


@pytest.mark.parametrize(
    "text",
    [
        "<trace> 0,1,2,2 </trace>",
        "<trace> 0,1,2 </trace>",
        "<trace> 0,1,2,-3 </trace>",
        "<trace> 0,1,2,4 </trace>",
        "<trace> 0,1,,2,3 </trace>",
        "0,1,2,3",
        "<trace></trace>",
    ],
)
def test_invalid_traces_are_rejected(text: str) -> None:
    assert parse_trace(text, 4) is None


def test_rotations_and_reversals_are_the_same_cycle() -> None:
    assert canonical_cycle((2, 3, 0, 1)) == canonical_cycle((0, 1, 2, 3))
    assert canonical_cycle((0, 3, 2, 1)) == canonical_cycle((0, 1, 2, 3))
    assert canonical_cycle((0, 2, 1, 3)) != canonical_cycle((0, 1, 2, 3))


def test_top_k_is_worst_to_best_for_minimisation() -> None:
    history: History[int] = History("min")
    for i, score in enumerate([5.0, 1.0, 9.0, 3.0, 7.0]):
        assert history.add(Scored(i, str(i), score, 0))
    assert not history.add(Scored(99, "0", 0.0, 1))  # a duplicate key is ignored
    assert [e.score for e in history.top_k(3)] == [5.0, 3.0, 1.0]
    assert [e.score for e in history.top_k(3, "descending")] == [1.0, 3.0, 5.0]
    shuffled = history.top_k(5, "random", np.random.default_rng(0))
    assert sorted(e.score for e in shuffled) == [1.0, 3.0, 5.0, 7.0, 9.0]
    best = history.best()
    assert best is not None
    assert best.score == 1.0


def test_ties_keep_the_order_they_came_in_as_the_authors_sort() -> None:
    # The authors sort (instruction, score, step) by score with Python's stable sort and keep
    # the last K: among equal scores the one added later is shown later and survives the cut.
    history: History[str] = History("max")
    for key, score, step in [("a", 50.0, 0), ("b", 70.0, 1), ("c", 50.0, 1), ("d", 50.0, 2)]:
        history.add(Scored(key, key, score, step))
    assert [e.solution for e in history.top_k(4)] == ["a", "c", "d", "b"]
    assert [e.solution for e in history.top_k(2)] == ["d", "b"]
    authors = sorted([("a", 50.0), ("b", 70.0), ("c", 50.0), ("d", 50.0)], key=lambda x: x[1])
    assert [e.solution for e in history.top_k(3)] == [k for k, _ in authors[-3:]]


def test_score_threshold_hides_low_scores_after_the_top_k_cut() -> None:
    history: History[str] = History("max")
    for key, score in [("a", 10.0), ("b", 40.0), ("c", 30.0), ("d", 90.0)]:
        history.add(Scored(key, key, score, 0))
    assert [e.solution for e in history.top_k(3, threshold=30.0)] == ["c", "b", "d"]
    assert [e.solution for e in history.top_k(3, threshold=35.0)] == ["b", "d"]
    assert history.top_k(3, threshold=95.0) == []
    low: History[str] = History("min")  # for minimisation, "at least as good" is <=
    for key, score in [("a", 10.0), ("b", 40.0)]:
        low.add(Scored(key, key, score, 0))
    assert [e.solution for e in low.top_k(2, threshold=20.0)] == ["a"]


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40),
    st.integers(1, 25),
    st.sampled_from(["min", "max"]),
)
def test_meta_prompt_entries_are_at_most_k_and_sorted_worst_to_best(
    scores: list[float], k: int, direction: str
) -> None:
    history: History[int] = History(direction)  # type: ignore[arg-type]
    for i, s in enumerate(scores):
        history.add(Scored(i, str(i), s, 0))
    shown = history.top_k(k)
    assert len(shown) == min(k, len(scores))
    qualities = [history.quality(e.score) for e in shown]
    assert qualities == sorted(qualities)
    best = history.best()
    assert best is not None
    assert shown[-1].score == best.score


def test_score_display_modes() -> None:
    assert display_score(71.6, "int") == "72"
    assert display_score(71.6, "buckets20") == "70"
    assert display_score(73.0, "buckets20") == "75"
    assert display_score(0.5, "raw") == "0.5"
    assert display_score(50, "none") is None


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OPRO_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed: OPRO_UPDATE_GOLDEN=1 to accept"
    )


def test_linreg_meta_prompt_golden() -> None:
    problem = LinearRegression(15, 14)
    history: History[tuple[int, int]] = History("min")
    for pair in [(10, 10), (20, 20), (15, 12), (14, 15)]:
        history.add(Scored(pair, problem.canonical(pair), problem.objective(pair), 0))
    rng = np.random.default_rng(0)
    _golden("linreg.txt", render_meta_prompt(problem, history, EngineSpec(top_k=3), rng))
    hidden = render_meta_prompt(problem, history, EngineSpec(score_display="none"), rng)
    assert "value:" not in hidden
    assert hidden.count("input:") == 4


def test_tsp_meta_prompt_golden() -> None:
    points = [(0, 0), (10, 0), (10, 10), (0, 10), (5, -5)]
    problem = TravellingSalesman(points, optimal_length=1.0)
    history: History[tuple[int, ...]] = History("min")
    for tour in [(0, 1, 2, 3, 4), (0, 2, 1, 3, 4), (0, 4, 1, 2, 3)]:
        history.add(Scored(tour, problem.canonical(tour), tour_length(problem.dist, tour), 0))
    _golden(
        "tsp.txt",
        render_meta_prompt(problem, history, EngineSpec(top_k=10), np.random.default_rng(0)),
    )


def test_an_answer_is_stopped_at_its_end_and_closed_again_for_the_parser() -> None:
    tsp = TravellingSalesman([(0, 0), (1, 0), (1, 1)], optimal_length=1.0)
    fmt = tsp.proposal
    assert fmt.stops == ("</trace>",)
    assert tsp.parse(fmt.answer("<trace> 0,2,1 ", "stop")) == (0, 2, 1)
    assert fmt.answer("<trace> 0,2,1 </trace>", "stop") == "<trace> 0,2,1 </trace>"
    # Out of tokens: not closed, so a cut-off trace is never read as a whole one.
    assert tsp.parse(fmt.answer("<trace> 0,2,1", "length")) is None


@pytest.mark.parametrize(("api", "stops"), [("completion", ("]",)), ("chat", ())])
def test_linreg_stops_a_base_model_at_its_pair_only(api: str, stops: tuple[str, ...]) -> None:
    optimizer = FakeLLM("echo", BackendOptions(api=api))  # type: ignore[arg-type]
    problem = LinregKind().build(LinregSpec(), {"optimizer": optimizer})
    assert problem.proposal.stops == stops
    text = problem.proposal.answer("The pair is [15, 14", "stop")
    assert problem.parse(text) == ((15, 14) if stops else None)
    # A chat model's placeholder before its pair is not its end.
    chat_answer = "I write [w, b] as [16, 13]"
    assert problem.parse(problem.proposal.answer(chat_answer, "stop")) == (16, 13)
