"""The text of progress: the counters, clocks and end lines every display shows, and
``printable``, which shows a control character as a visible escape (text from a model or a
server may carry terminal escape codes)."""

from __future__ import annotations

import re
from pathlib import Path

from opro.progress import RunEnd, Snapshot, SweepState, SweepUpdate

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters but newline and tab: ESC begins terminal escape codes."""


def printable(text: str) -> str:
    r"""``text`` with every control character (but newline and tab) shown as ``\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clock(seconds: float | None) -> str:
    """``75.2`` → ``1:15``; ``3725`` → ``1:02:05``; None → ``?``."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counters(s: Snapshot) -> str:
    """``step 3/10  best 0.82  calls 12 (4 cached)  tokens 3456  $0.0000  ...  ETA 0:30``."""
    step = "-" if s.step is None else str(s.step)
    best = "-" if s.best is None else f"{s.best:.6g}"
    cost = "$?" if s.cost_usd is None else f"${s.cost_usd:.4f}"
    return (
        f"step {step}/{s.steps}  best {best}  calls {s.calls} ({s.cached_calls} cached)  "
        f"tokens {s.tokens}  {cost}  elapsed {clock(s.elapsed_s)}  ETA {clock(s.eta_s)}"
    )


def end_line(end: RunEnd) -> str:
    return f"[{Path(end.run_dir).name}] {end.status} ({end.stop_reason}): {counters(end.final)}"


def sweep_counters(s: SweepState) -> str:
    """``3/16 done  2 running  0 stopped  0 failed  calls 120 (4 cached)  ...  ETA 1:30``."""
    cost = "$?" if s.cost_usd is None else f"${s.cost_usd:.4f}"
    return (
        f"{s.done}/{s.runs} done  {s.running} running  {s.stopped} stopped  {s.failed} failed  "
        f"calls {s.calls} ({s.cached_calls} cached)  tokens {s.tokens}  {cost}  "
        f"elapsed {clock(s.elapsed_s)}  ETA {clock(s.eta_s)}"
    )


def sweep_run_line(update: SweepUpdate) -> str:
    """A sweep's run that started or ended, as one line."""
    if update.event == "started":
        return f"[sweep] started {update.label}"
    reason = "" if update.reason is None else f" ({update.reason})"
    final = "" if update.final is None else f": {counters(update.final)}"
    return f"[sweep] {update.label}: {update.status}{reason}{final}"
