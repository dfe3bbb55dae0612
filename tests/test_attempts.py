"""A step's attempts (``opro.attempts.draw``): the outcome of drawing them one at a time,
whatever order the answers come back in, with each attempt started as early as it is sure
to be needed and none started that would not be."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opro.attempts import draw
from opro.types import Completion

# An attempt's answer: "-" fails to parse, "old" repeats an earlier step's solution,
# anything else is a solution's key (two attempts may give the same one).
answers = st.lists(st.sampled_from(["-", "old", "a", "b", "c", "d", "e"]), min_size=1, max_size=12)


def judge(completion: Completion) -> Hashable | None:
    return None if completion.text in ("-", "old") else completion.text


def one_at_a_time(texts: list[str], wanted: int, cap: int) -> list[str]:
    """The reference: draw attempt after attempt until ``wanted`` new keys or ``cap``."""
    taken: list[str] = []
    keys: set[str] = set()
    for text in texts[:cap]:
        if len(keys) >= wanted:
            break
        taken.append(text)
        if judge(Completion(text)) is not None:
            keys.add(text)
    return taken


class Attempts:
    """Answers ``texts[i]`` to attempt ``i`` after ``delays[i]`` event-loop turns."""

    def __init__(self, texts: list[str], delays: list[int]) -> None:
        self.texts, self.delays = texts, delays
        self.started: list[int] = []
        self.running: set[int] = set()
        self.running_at_start: dict[int, set[int]] = {}

    async def start(self, i: int) -> Completion:
        if i >= len(self.texts):
            raise AssertionError(f"attempt {i} started past the test's answers")
        self.running_at_start[i] = set(self.running)
        self.started.append(i)
        self.running.add(i)
        try:
            for _ in range(self.delays[i]):
                await asyncio.sleep(0)
            return Completion(self.texts[i])
        finally:
            self.running.discard(i)


@given(answers, st.data(), st.integers(1, 5))
@settings(max_examples=300)
def test_the_outcome_is_drawing_one_at_a_time_whatever_the_timing(
    texts: list[str], data: st.DataObject, wanted: int
) -> None:
    texts = [*texts, "a", "b", "c", "d", "e"]  # enough to reach `wanted` or the cap
    delays = data.draw(st.lists(st.integers(0, 30), min_size=len(texts), max_size=len(texts)))
    cap = data.draw(st.integers(wanted, len(texts)))
    attempts = Attempts(texts, delays)
    taken = asyncio.run(draw(attempts.start, judge, wanted, cap))
    expected = one_at_a_time(texts, wanted, cap)
    assert [c.text for c in taken] == expected
    # No attempt was started that drawing one at a time would not have made.
    assert sorted(attempts.started) == list(range(len(expected)))


def test_an_attempt_starts_when_the_ones_running_cannot_give_enough() -> None:
    # Attempt 0 runs long; 1-7 fail at once. Drawing in rounds would wait for attempt 0
    # before starting 8; here 8-14 start while it is still running.
    texts = ["a"] + ["-"] * 7 + ["b", "c", "d", "e", "f", "g", "h"]
    delays = [200] + [0] * 7 + [1] * 7
    attempts = Attempts(texts, delays)
    taken = asyncio.run(draw(attempts.start, judge, 8, 24))
    assert [c.text for c in taken] == texts
    for i in range(8, 15):
        assert 0 in attempts.running_at_start[i]
    assert max(len(running) for running in attempts.running_at_start.values()) <= 7


def test_a_repeat_within_the_step_counts_as_no_new_solution() -> None:
    # Attempt 2 repeats attempt 0's "a": with 1 still running, 3 new solutions need a
    # fourth attempt, started before attempt 1 is back.
    attempts = Attempts(["a", "b", "a", "c"], [0, 20, 0, 0])
    taken = asyncio.run(draw(attempts.start, judge, 3, 4))
    assert [c.text for c in taken] == ["a", "b", "a", "c"]
    assert 1 in attempts.running_at_start[3]


def test_an_error_cancels_the_other_attempts() -> None:
    cancelled: list[int] = []

    async def start(i: int) -> Completion:
        if i == 1:
            raise RuntimeError("server down")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return Completion("a")

    with pytest.raises(RuntimeError, match="server down"):
        asyncio.run(draw(start, judge, 4, 8))
    assert sorted(cancelled) == [0, 2, 3]
