"""The run directory, written as the run goes, enough to reproduce or resume it:

- ``config.json``: the resolved configuration, seed, versions, model ids (written once,
  atomically; never an API key);
- ``steps.jsonl``: one JSON object per completed step, appended and fsynced;
- ``summary.json``: best solution, steps done, usage, why it stopped (atomic, per step).

A killed run leaves at worst a truncated last line in ``steps.jsonl``; reading ignores it
and ``truncate_partial`` cuts it off before appending again. A write that fails (a full
disk) leaves the files as they were and raises a one-line ``ConfigError``; a run dir whose
creation fails is removed again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from opro.errors import ConfigError

FORMAT = 1
CONFIG, STEPS, SUMMARY = "config.json", "steps.jsonl", "summary.json"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("opro", "openai", "llama-cpp-python", "numpy", "highspy"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def cannot_write(path: Path, exc: OSError, *, running: bool = False) -> ConfigError:
    """The one-line error for a failed write under a run dir (a full disk, permissions);
    ``running``: the run exists and can be continued once the cause is fixed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        then = "then continue the run with `opro resume`" if running else "or choose another --out"
        return ConfigError(
            f"cannot write {path}: no space left on the device: free some space, {then}"
        )
    fix = (
        "fix that, then continue the run with `opro resume`" if running else "choose another --out"
    )
    return ConfigError(f"cannot write {path} ({exc.strerror or exc}): {fix}")


def write_json_atomic(path: Path, data: Any, *, running: bool = False) -> None:
    """Write ``data`` as JSON to ``path`` via a temp file and rename: never half-written.
    On failure the old file (if any) is intact, the temp file is gone, and a one-line
    ``ConfigError`` names the problem."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise cannot_write(path, exc, running=running) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise cannot_write(path, exc, running=running) from None
        raise


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._made: list[Path] = []  # folders ``create`` made, for ``discard``

    # -- creating and opening ---------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str, config: dict[str, Any]) -> RunDir:
        """A new run dir; refuses one that already holds a run, checks it is writable.
        On failure nothing is left behind: the folders it made are removed again."""
        run = cls(Path(path))
        if (run.path / CONFIG).exists():
            raise ConfigError(
                f"{run.path} already holds a run: continue it with `opro resume {run.path}`, "
                "or choose another --out"
            )
        run._made = [p for p in (run.path, *run.path.parents) if not p.exists()]
        try:
            try:
                run.path.mkdir(parents=True, exist_ok=True)
                probe = run.path / ".write-test"
                try:
                    probe.write_text("ok")
                finally:
                    with contextlib.suppress(OSError):
                        probe.unlink()
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise cannot_write(run.path, exc) from None
                raise ConfigError(
                    f"cannot write the run directory {run.path} ({exc.strerror}): "
                    "choose another --out"
                ) from None
            write_json_atomic(
                run.path / CONFIG, {"format": FORMAT, "versions": versions(), **config}
            )
        except BaseException:
            run.discard()
            raise
        return run

    def discard(self) -> None:
        """Undo ``create``: remove the run's files and the (then empty) folders it made."""
        for name in (STEPS, SUMMARY, CONFIG):
            with contextlib.suppress(OSError):
                (self.path / name).unlink()
        for folder in self._made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()

    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """An existing run dir, checked to be one this version can continue."""
        run = cls(Path(path))
        if not (run.path / CONFIG).is_file():
            raise ConfigError(
                f"{run.path} is not an opro run directory (no {CONFIG}): give the --out "
                "directory of an `opro optimize`, `opro linreg` or `opro tsp` run"
            )
        try:
            config = run.config()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{run.path / CONFIG} is unreadable ({exc})") from None
        if not isinstance(config, dict):
            raise ConfigError(f"{run.path / CONFIG} is not a JSON object: not an opro run dir")
        if config.get("format") != FORMAT:
            raise ConfigError(
                f"{run.path} was written by an incompatible opro (run format "
                f"{config.get('format')!r}, this opro reads {FORMAT}): rerun it with this version"
            )
        return run

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / CONFIG).read_text(encoding="utf-8"))
        return data

    # -- steps --------------------------------------------------------------------------

    def read_steps(self) -> list[dict[str, Any]]:
        """Complete steps in order; a truncated last line (a kill mid-write) is ignored."""
        path = self.path / STEPS
        if not path.exists():
            return []
        lines = path.read_bytes().split(b"\n")
        steps: list[dict[str, Any]] = []
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                steps.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines) - 1:
                    break  # the partial last line of a killed write
                raise ConfigError(f"{path} is corrupt at line {number + 1}") from None
        return steps

    def truncate_partial(self) -> None:
        """Cut a partial last line so that the next append starts on a clean line."""
        path = self.path / STEPS
        if not path.exists():
            return
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with path.open("r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())

    def append_step(self, record: dict[str, Any]) -> None:
        """Append one line and fsync it; on failure (a full disk) the file is cut back to
        its previous length, so no partial line is left, and a ``ConfigError`` says why."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        path = self.path / STEPS
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise cannot_write(path, exc, running=True) from None
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise cannot_write(path, exc, running=True) from None
        finally:
            os.close(fd)

    # -- summary ------------------------------------------------------------------------

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.path / SUMMARY, summary, running=True)

    def summary(self) -> dict[str, Any] | None:
        path = self.path / SUMMARY
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
