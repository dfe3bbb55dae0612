"""The TSP answer's shape: ``parse`` as the old regex parser read it, and ``hopeless``
sound (a text it gives up on never parses, whatever follows) and useful (it gives up on
the ways the embedded model's answers actually go wrong)."""

from __future__ import annotations

import re

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from opro.answer_shape import ListShape
from opro.problems.tsp import trace_shape
from opro.types import Request

_TRACE = re.compile(r"<trace>(.*?)</trace>", re.DOTALL)


def regex_parse(text: str, n: int) -> tuple[int, ...] | None:
    """The parser TSP had before the shape (kept here as the reference)."""
    match = _TRACE.search(text)
    if match is None:
        return None
    parts = [p.strip() for p in match.group(1).split(",")]
    if not parts or not all(re.fullmatch(r"\d{1,6}", p) for p in parts):
        return None
    tour = tuple(int(p) for p in parts)
    return tour if len(tour) == n and set(tour) == set(range(n)) else None


# Pieces a model's output is made of, so that random texts often open and close a trace.
PIECES = ["<trace>", "</trace>", "</tr", "<", ",", " ", "\n", "\u00a0", "x", "٣", "0", "00"]
PIECES += [str(i) for i in range(10)] + ["10", "1234567"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@given(texts, st.integers(1, 5))
@settings(max_examples=600)
def test_parse_reads_as_the_regex_parser(text: str, n: int) -> None:
    assert trace_shape(n).parse(text) == regex_parse(text, n)


@given(st.permutations(range(6)), st.sampled_from(["", " ", "\n"]), st.text(max_size=10))
def test_parse_reads_every_permutation(tour: list[int], pad: str, noise: str) -> None:
    text = f"{noise.replace('<', '')}<trace>{pad}{','.join(map(str, tour))}{pad}</trace>x"
    assert trace_shape(6).parse(text) == tuple(tour)


@given(texts, texts, st.integers(1, 4))
@settings(max_examples=1500)
def test_a_hopeless_text_never_parses_whatever_follows(text: str, more: str, n: int) -> None:
    shape = trace_shape(n)
    if shape.hopeless(text):
        event("hopeless")
        assert shape.parse(text + more) is None
        assert shape.hopeless(text + more)
        assert shape.parse(text + "</trace>") is None


@pytest.mark.parametrize(
    "text",
    [
        "<trace> point is small",  # words where numbers go
        "<trace> 4,7,8,0",  # 8 is not a node of 0..7
        "<trace> 1,2,1,",  # a repeat
        "<trace> 0,1,2,3,4,5,6,7,",  # a ninth part
        "<trace> 12",  # a number that can only grow
        "<trace> 1 2",  # two numbers in one part
        "<trace> 1,2,</trace>",  # closed, too short
        "<trace> ,",  # an empty part
        "<trace> 1 <trace>",  # a second opening inside the answer
    ],
)
def test_hopeless_gives_up_on_broken_answers(text: str) -> None:
    assert trace_shape(8).hopeless(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Here is a new trace: <tra",  # not opened yet
        "The points (0): (1, 2) ... ",  # a ramble before the answer
        "<trace>",
        "<trace> 0,7, 3",
        "<trace> 0,1,2,3,4,5,6,7",
        "<trace> 0,1,2,3,4,5,6,7 </tr",
        "<trace> 1,2, ",
        "<trace> 0,1,2,3,4,5,6,7 </trace> and then some text",
    ],
)
def test_hopeless_waits_while_an_answer_can_still_come(text: str) -> None:
    assert not trace_shape(8).hopeless(text)


def test_a_closing_with_a_comma_is_refused() -> None:
    with pytest.raises(ValueError, match="without a comma"):
        ListShape("<a>", "</a,>", length=2, below=2)


def test_a_request_without_a_shape_keeps_its_old_cache_key() -> None:
    plain = Request("p", stop=("</trace>",))
    assert "shape" not in plain.to_json()
    shaped = Request("p", stop=("</trace>",), shape=trace_shape(8))
    assert shaped.to_json()["shape"] == {
        "opening": "<trace>",
        "closing": "</trace>",
        "length": 8,
        "below": 8,
    }
