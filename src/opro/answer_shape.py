"""The shape of a list answer, and when a half-written one can no longer take it.

A TSP answer is the first ``<trace>…</trace>`` of the optimizer's output holding a
permutation of 0..n-1, comma-separated. ``ListShape.parse`` reads it; ``hopeless`` says
when a *prefix* of an output can no longer become one, whatever follows: then a base model
that rambles on to its token limit (the 270M model does, 2 samples in 3) can be stopped
there without changing any result, as every continuation would have failed to parse too.

Both are written from the same rules so that they cannot drift apart: the answer is the
text between the first ``opening`` and the first ``closing`` after it, split at commas,
each part a whole number (1-6 decimal digits, surrounding whitespace allowed), ``length``
parts, distinct, each below ``below``. ``hopeless`` is sound (tested against ``parse`` on
random texts and continuations), not complete: it looks only at what is already final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"\d{1,6}")
_MAX_DIGITS = 6


@dataclass(frozen=True)
class ListShape:
    """``length`` distinct whole numbers below ``below`` between ``opening`` and ``closing``."""

    opening: str
    closing: str
    length: int
    below: int

    def __post_init__(self) -> None:
        if not self.opening or not self.closing or "," in self.closing:
            raise ValueError("a list shape needs an opening and a closing without a comma")

    def parse(self, text: str) -> tuple[int, ...] | None:
        """The numbers of the first ``opening``…``closing`` of ``text``; None if they do
        not have the shape (never an exception)."""
        body = self._body(text)
        if body is None or self.closing not in body:
            return None
        parts = [p.strip() for p in body[: body.index(self.closing)].split(",")]
        if not all(_NUMBER.fullmatch(p) for p in parts):
            return None
        numbers = tuple(int(p) for p in parts)
        if len(numbers) != self.length or len(set(numbers)) != self.length:
            return None
        return numbers if all(x < self.below for x in numbers) else None

    def hopeless(self, text: str) -> bool:
        """True when no continuation of ``text`` parses (``parse(text + more)`` is None
        for every ``more``). False while the answer has not been opened."""
        body = self._body(text)
        if body is None:
            return False
        if self.closing in body:
            return self.parse(text) is None
        # The first closing comes later: every part but the last is final (a closing
        # holds no comma), and the last is still being written.
        *done, last = body.split(",")
        if len(done) >= self.length:
            return True
        seen: set[int] = set()
        for part in done:
            part = part.strip()
            if not _NUMBER.fullmatch(part):
                return True
            number = int(part)
            if number >= self.below or number in seen:
                return True
            seen.add(number)
        return not self._may_end_a_part(last)

    def _may_end_a_part(self, last: str) -> bool:
        """Whether ``last`` can still grow into a valid part: whitespace, digits (whose
        value can only grow), whitespace, then the start of ``closing``."""
        rest = last.lstrip()
        digits = next((i for i, c in enumerate(rest) if not c.isdecimal()), len(rest))
        number, rest = rest[:digits], rest[digits:].lstrip()
        if len(number) > _MAX_DIGITS or (number and int(number) >= self.below):
            return False
        return self.closing.startswith(rest) and (bool(number) or not rest)

    def _body(self, text: str) -> str | None:
        start = text.find(self.opening)
        return None if start < 0 else text[start + len(self.opening) :]
