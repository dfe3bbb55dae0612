"""How the CLI shows progress, log records and notices on stderr (stdout is left alone).

Four displays implement ``opro.progress.Progress`` and ``SweepProgress``: ``LiveDisplay``
(a rich line that refreshes in a terminal, log records printed above it), ``PlainDisplay``
(one line per step, or per sweep run started and ended, when stderr is not a terminal, so CI
logs stay readable), ``JsonDisplay`` (one JSON object per line and event, log records
included) and ``QuietDisplay`` (nothing but notices and errors). ``open_display`` picks
one and sets up logging to match; closing it undoes both.
No display ever shows a prompt, a model output or a key, nor a control character: text
from a model or a server (an instruction, an error's detail) may carry terminal escape
codes, and ``printable`` shows them as visible escapes instead of letting them act.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol

from rich.console import Console

from opro.errors import redact
from opro.progress import (
    NoProgress,
    Progress,
    RunEnd,
    RunStart,
    Snapshot,
    SweepProgress,
    SweepState,
    SweepUpdate,
)
from opro.progress_text import clock, counters, end_line, printable, sweep_counters, sweep_run_line

Mode = Literal["auto", "quiet", "json"]
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
SWEEP_EVERY_S = 30.0
"""Seconds between the plain display's sweep counters while no run starts or ends."""


class Display(Progress, SweepProgress, Protocol):
    """A ``Progress`` that also prints the CLI's notices and errors, and can be closed."""

    def notice(self, text: str) -> None: ...

    def error(self, text: str, exit_code: int) -> None: ...

    def close(self) -> None: ...


class _Examples:
    """Elapsed time and ETA of ``evaluate``'s scoring, and which counts are worth a line."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.started = time.monotonic()
        self.shown = -1

    def due(self, done: int, total: int) -> bool:
        """True at 0 (which starts the clock), at each 1/``lines`` of ``total`` crossed,
        and at the end."""
        if done == 0:
            self.started = time.monotonic()
        bucket = done * self.lines // max(total, 1)
        if done in (0, total) or bucket > self.shown:
            self.shown = bucket
            return True
        return False

    def timing(self, done: int, total: int) -> tuple[float, float | None]:
        elapsed = time.monotonic() - self.started
        return elapsed, (elapsed / done * (total - done) if done else None)


class QuietDisplay(NoProgress):
    """No progress; notices and errors as plain lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def _line(self, text: str) -> None:
        self.stream.write(printable(text) + "\n")
        self.stream.flush()

    def notice(self, text: str) -> None:
        self._line(text)

    def error(self, text: str, exit_code: int) -> None:
        self._line(text)

    def close(self) -> None:
        pass


class PlainDisplay(QuietDisplay):
    """One line per step and per run that recorded one; ``evaluate`` every tenth of the way
    (nothing before the first pair is scored, so an error at once stays one line)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._name = ""
        self._examples = _Examples(10)
        self._sweep_shown = time.monotonic()

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        self._name = Path(start.run_dir).name

    def step_finished(self, snapshot: Snapshot) -> None:
        self._line(f"[{self._name}] {counters(snapshot)}")

    def run_finished(self, end: RunEnd) -> None:
        if end.final.step is not None:  # else the run is discarded and its error follows
            self._line(end_line(end))

    def examples_scored(self, done: int, total: int) -> None:
        if self._examples.due(done, total) and done:
            elapsed, eta = self._examples.timing(done, total)
            self._line(
                f"[evaluate] {done}/{total} scored  elapsed {clock(elapsed)}  ETA {clock(eta)}"
            )

    def sweep_changed(self, update: SweepUpdate) -> None:
        """A line per run started and ended; the counters after an end, and every 30 s."""
        now = time.monotonic()
        if update.event != "progress":
            self._line(sweep_run_line(update))
        if update.event == "ended" or now - self._sweep_shown >= SWEEP_EVERY_S:
            self._sweep_shown = now
            self._line(f"[sweep] {sweep_counters(update.state)}")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class JsonDisplay(QuietDisplay):
    """One JSON object per line and event: run_started, step, run_finished, examples, log,
    notice, error."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._run = ""
        self._examples = _Examples(100)

    def emit(self, event: str, **fields: Any) -> None:
        self._line(json.dumps({"event": event, **fields}, ensure_ascii=False))

    def _snapshot(self, s: Snapshot) -> dict[str, object]:
        return asdict(s) | {"eta_s": _rounded(s.eta_s)}

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        self._run = start.run_dir
        self.emit("run_started", run=start.run_dir, steps=start.steps, last_step=start.last_step)

    def step_finished(self, snapshot: Snapshot) -> None:
        self.emit("step", run=self._run, **self._snapshot(snapshot))

    def run_finished(self, end: RunEnd) -> None:
        self.emit(
            "run_finished",
            run=end.run_dir,
            status=end.status,
            stop_reason=end.stop_reason,
            **self._snapshot(end.final),
        )

    def examples_scored(self, done: int, total: int) -> None:
        if self._examples.due(done, total):
            elapsed, eta = self._examples.timing(done, total)
            self.emit(
                "examples", done=done, total=total, elapsed_s=_rounded(elapsed), eta_s=_rounded(eta)
            )

    def sweep_changed(self, update: SweepUpdate) -> None:
        final = None if update.final is None else self._snapshot(update.final)
        run = {"run": update.run_dir, "label": update.label, "status": update.status}
        state = asdict(update.state) | {"eta_s": _rounded(update.state.eta_s)}
        self.emit("sweep", change=update.event, **run, reason=update.reason, final=final, **state)

    def notice(self, text: str) -> None:
        self.emit("notice", message=text)

    def error(self, text: str, exit_code: int) -> None:
        self.emit("error", message=text, exit_code=exit_code)


class JsonLogFormatter(logging.Formatter):
    """A log record as a ``log`` event, with the given secrets masked."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return json.dumps(
            {
                "event": "log",
                "level": record.levelname,
                "logger": record.name,
                "message": redact(message, self.secrets),
            },
            ensure_ascii=False,
        )


class LiveDisplay(QuietDisplay):
    """A rich line on a terminal's stderr, refreshed 4 times a second from ``live()``: the
    run, a bar of steps and the counters; a line stays for each finished run."""

    def __init__(self, console: Console) -> None:
        super().__init__(console.file)
        self.console = console
        self._live: Any = None
        self._name = ""
        self._poll: Callable[[], Snapshot] | None = None
        self._scored = (0, 0)
        self._examples = _Examples(100)
        self._sweep: tuple[SweepState, float] | None = None

    def _start(self) -> None:
        from rich.live import Live

        self._stop()
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
        )
        self._live.start()

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        if self._sweep is not None:
            state, at = self._sweep
            ago = time.monotonic() - at
            eta = None if state.eta_s is None else max(state.eta_s - ago, 0.0)
            state = replace(state, elapsed_s=state.elapsed_s + ago, eta_s=eta)
            ended = state.done + state.stopped + state.failed
            label, bar = "[sweep]", ProgressBar(total=max(state.runs, 1), completed=ended)
            text = sweep_counters(state)
        elif self._poll is not None:
            s = self._poll()
            label, bar = f"[{self._name}]", ProgressBar(total=s.steps, completed=s.step or 0)
            text = counters(s)
        else:
            done, total = self._scored
            elapsed, eta = self._examples.timing(done, total)
            label, bar = "[evaluate]", ProgressBar(total=max(total, 1), completed=done)
            text = f"{done}/{total} scored  elapsed {clock(elapsed)}  ETA {clock(eta)}"
        bar.width = 24
        grid.add_row(Text(label, style="bold"), bar, Text(text))
        return grid

    def run_started(self, start: RunStart, live: Callable[[], Snapshot]) -> None:
        self._name, self._poll = Path(start.run_dir).name, live
        self._start()

    def sweep_changed(self, update: SweepUpdate) -> None:
        """The sweep's counters on the live line; a line stays for each run that ends."""
        self._sweep = (update.state, time.monotonic())
        if update.event == "ended":
            self._line(sweep_run_line(update))
        if self._live is None and update.state.running > 0:
            self._start()

    def step_finished(self, snapshot: Snapshot) -> None:
        if self._live is not None:
            self._live.refresh()

    def run_finished(self, end: RunEnd) -> None:
        self._stop()
        self._poll = None
        if end.final.step is not None:
            self._line(end_line(end))

    def examples_scored(self, done: int, total: int) -> None:
        self._examples.due(done, total)  # starts its clock at 0
        self._scored = (done, total)
        if self._live is None and done < total:
            self._start()
        elif done == total:
            self._stop()

    def _line(self, text: str) -> None:
        self._stop()
        self.console.print(printable(text), markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        self._stop()


class _Opened:
    """A display and the logging set up for it; undone on exit."""

    def __init__(self, display: Display, handler: logging.Handler | None, level: int) -> None:
        self.display = display
        self._handler = handler
        self._root = logging.getLogger()
        self._level = self._root.level
        if handler is None:
            logging.basicConfig(level=level, format=LOG_FORMAT)
        else:
            self._root.addHandler(handler)
            self._root.setLevel(level)

    def __enter__(self) -> Display:
        return self.display

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.display.close()
        if self._handler is not None:
            self._root.removeHandler(self._handler)
            self._root.setLevel(self._level)


def open_display(mode: Mode, *, verbose: bool, secrets: Sequence[str] = ()) -> _Opened:
    """``with open_display(...) as display:``: quiet, JSON lines, or (auto) a live rich line
    when stderr is a terminal and plain lines when it is not."""
    level = logging.INFO if verbose else logging.WARNING
    stream = sys.stderr
    if mode == "quiet":
        return _Opened(QuietDisplay(stream), None, level)
    if mode == "json":
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonLogFormatter(secrets))
        return _Opened(JsonDisplay(stream), handler, level)
    console = Console(stderr=True)
    if not console.is_terminal or console.is_dumb_terminal:
        return _Opened(PlainDisplay(stream), None, level)
    from rich.logging import RichHandler

    return _Opened(LiveDisplay(console), RichHandler(console=console, show_path=False), level)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's kernel app is loaded)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    kernel = get() if callable(get) else None
    return kernel is not None and "IPKernelApp" in getattr(kernel, "config", {})


def notebook_display() -> LiveDisplay:
    """The progress of a run started from a notebook: rich's live line in the cell output."""
    return LiveDisplay(Console(force_jupyter=True))


def script_display() -> Display:
    """The progress of a run started from a plain Python script: on stderr, a live line on
    a terminal, a line per step (and per tenth of an evaluation) otherwise. Logging is left
    as the script set it."""
    console = Console(stderr=True)
    if not console.is_terminal or console.is_dumb_terminal:
        return PlainDisplay(sys.stderr)
    return LiveDisplay(console)
