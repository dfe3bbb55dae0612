"""``write_report``: run directories → one self-contained HTML file, and its SVG figures
beside it.

Everything is read and drawn before anything is written; the SVGs (also embedded in the
HTML as data URIs, so the file opens offline on its own) and the HTML are written to temp
files and renamed into place, so an error leaves no half-written report. Every text from a
run (instructions come from an LLM) is HTML-escaped by the template's autoescaping.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import jinja2

from opro.errors import ConfigError
from opro.files import check_regular, make_readable
from opro.problems.jobs import JobRecord
from opro.problems.registry import Plot, kind_of
from opro.report.load import load_jobs
from opro.report.plots import overlay_plots
from opro.report.sections import Image, overview, section
from opro.runlog import cannot_write


def write_report(
    run_dirs: Sequence[Path | str],
    *,
    out: Path | str | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write ``report.html`` (in the first run dir, or ``out``) and its ``*-*.svg`` figures
    beside it, for the runs or jobs in ``run_dirs``; returns the HTML's path."""
    jobs = load_jobs(run_dirs, labels)
    target = Path(out) if out is not None else jobs[0].path / "report.html"
    if target.is_dir():
        raise ConfigError(f"`out` {target} is a directory: give a file name, e.g. report.html")
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write {target}: {target.parent} does not exist: create it")
    files: dict[str, bytes] = {}

    def images(plots: list[Plot], prefix: str) -> tuple[Image, ...]:
        found = []
        for plot in plots:
            name = f"{target.stem}-{prefix}{plot.name}.svg"
            files[name] = plot.svg
            uri = "data:image/svg+xml;base64," + base64.b64encode(plot.svg).decode("ascii")
            found.append(Image(name, plot.caption, uri))
        return tuple(found)

    sections = [
        section(job, i, images(kind_of(job.kind).report.figures(job), _prefix(i, job, len(jobs))))
        for i, job in enumerate(jobs, start=1)
    ]
    overlay = images(overlay_plots(jobs), "")
    heading = title or (
        f"OPRO report: {jobs[0].label}" if len(jobs) == 1 else f"OPRO report: {len(jobs)} runs"
    )
    html = (
        environment()
        .get_template("report.html.jinja")
        .render(
            title=heading,
            sections=sections,
            overlay=overlay,
            overview=overview(jobs) if len(jobs) > 1 else None,
            generated=time.strftime("%Y-%m-%d %H:%M:%S"),
            opro_version=version("opro"),
        )
    )
    files[target.name] = html.encode("utf-8")
    _write_all(target.parent, files)
    return target


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("opro.report", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _prefix(index: int, job: JobRecord, count: int) -> str:
    """Where several directories share a report, each one's figures carry its number and
    label."""
    return f"{index}-{slug(job.label)}-" if count > 1 else ""


def slug(text: str) -> str:
    """A file-name-safe form of a label: lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "run"


def _write_all(folder: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temp file first, then rename them all into place; a link (or
    FIFO...) where one goes is refused first, never followed nor replaced."""
    for name in files:
        check_regular(folder / name)
    temps: dict[str, str] = {}
    try:
        for name, data in files.items():
            fd, temps[name] = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            make_readable(temps[name])
        for name, temp in temps.items():
            os.replace(temp, folder / name)
    except OSError as exc:
        raise cannot_write(folder / next(iter(files)), exc) from None
    finally:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
