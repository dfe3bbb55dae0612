"""A step's attempts: taken in order, each started as soon as it is sure to be needed.

An optimizer step samples until it has ``wanted`` new valid solutions or has made
``max_attempts`` attempts. The result must be that of drawing the attempts one at a time
in order (attempt ``i`` is request sample ``i``): which outputs a step records, and so the
whole run, must not depend on how fast each answer came back.

Drawing in rounds (``wanted`` at once, then as many as are still missing, ...) keeps that,
but a round lasts as long as its slowest answer: on the embedded model, 8 samples of
which 6 fail early wait for the 2 that run to the token limit, before the next round
starts. Here attempt ``k`` starts as soon as the attempts already started can no longer
give ``wanted`` new solutions between them, counting the finished ones that did not
(they failed to parse, or repeat a solution): it would have been drawn in a later round
anyway. So no attempt is made that rounds would not have made, nothing is spent twice,
and the answers are taken in order, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

from opro.types import Completion

Judge = Callable[[Completion], Hashable | None]
"""The key of the new valid solution a completion gives, or None (none, or a repeat of
one recorded in earlier steps)."""


async def draw(
    start: Callable[[int], Awaitable[Completion]],
    judge: Judge,
    wanted: int,
    max_attempts: int,
) -> list[Completion]:
    """The completions of attempts 0, 1, ... up to the one that gave the ``wanted``-th new
    solution (or ``max_attempts`` of them); on an error, the others are cancelled."""
    tasks: list[asyncio.Future[Completion]] = []
    taken: list[Completion] = []
    keys: set[Hashable] = set()
    judged: dict[int, Hashable | None] = {}

    def judge_once(i: int) -> Hashable | None:
        if i not in judged:
            judged[i] = judge(tasks[i].result())
        return judged[i]

    try:
        while len(keys) < wanted and len(taken) < max_attempts:
            while (
                len(tasks) < max_attempts
                and len(keys) + _may_give(tasks, len(taken), keys, judge_once) < wanted
            ):
                tasks.append(asyncio.ensure_future(start(len(tasks))))
            pending = [task for task in tasks[len(taken) :] if not task.done()]
            if pending:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks[len(taken) :]:
                if task.done() and task.exception() is not None:
                    task.result()  # raise the first error found, in attempt order
            while len(taken) < len(tasks) and tasks[len(taken)].done() and len(keys) < wanted:
                key = judge_once(len(taken))
                taken.append(tasks[len(taken)].result())
                if key is not None:
                    keys.add(key)
        return taken
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _may_give(
    tasks: list[asyncio.Future[Completion]],
    taken: int,
    keys: set[Hashable],
    judge: Callable[[int], Hashable | None],
) -> int:
    """How many new solutions the started, untaken attempts may still give: each one not
    finished, and each finished one with a key not given before it."""
    count, seen = 0, set(keys)
    for i in range(taken, len(tasks)):
        if not tasks[i].done():
            count += 1
            continue
        key = judge(i)
        if key is not None and key not in seen:
            seen.add(key)
            count += 1
    return count
