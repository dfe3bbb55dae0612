"""Where a prompt may take another's KV cells (``opro.llm.prefix``): the cut keeps every
piece read at a multiple of 4 with at least 8 rows, within the shared start."""

from __future__ import annotations

import pytest

from opro.llm.prefix import MIN_SHARED, common_length, cut_point, shareable_length


@pytest.mark.parametrize(
    ("length", "shared", "cut"),
    [
        (131, 130, 120),  # leaves 11 tokens: 120 is a multiple of 4 and 131 - 120 >= 8
        (131, 200, 120),  # never more than the prompt allows
        (140, 102, 100),  # down to a multiple of 4
        (300, 254, 248),  # 252 would leave a piece of 4 before the n_batch boundary at 256
        (300, 256, 256),  # at the boundary: the next piece is 256..300
        (520, 500, 500),
        (20, 20, 12),
        (10, 10, 0),  # nothing to cut: the prompt itself is under 2 x 8 tokens
        (131, 3, 0),
    ],
)
def test_cut_point(length: int, shared: int, cut: int) -> None:
    got = cut_point(length, shared, 256)
    assert got == cut
    assert got % 4 == 0
    assert got <= shared
    if got:
        assert min(length, (got // 256 + 1) * 256) - got >= 8


def test_common_length_and_the_donors_allowed() -> None:
    assert common_length([1, 2, 3, 4], [1, 2, 9], 10) == 2
    assert common_length([1, 2, 3], [1, 2, 3, 4], 10) == 3
    assert common_length([1, 2, 3], [1, 2, 3], 2) == 2  # the donor holds only 2 of them
    assert common_length([], [1], 5) == 0
    assert shareable_length(512, 256, 2048) == 768  # gemma 3: its sliding window
    assert shareable_length(0, 256, 2048) == 2048
    assert MIN_SHARED >= 8
