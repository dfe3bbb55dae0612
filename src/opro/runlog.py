"""The run directory, written as the run goes, enough to reproduce or resume it:

- ``config.json``: the resolved configuration, seed, versions, model ids (written once,
  atomically; never an API key);
- ``steps.jsonl``: one JSON object per completed step, appended and fsynced;
- ``summary.json``: best solution, steps done, usage, why it stopped (atomic, per step).

A killed run leaves at worst a truncated last line in ``steps.jsonl``; reading ignores it
and ``truncate_partial`` cuts it off before appending again.
"""

from __future__ import annotations

import contextlib
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


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temp file and rename: never half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    # -- creating and opening ---------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str, config: dict[str, Any]) -> RunDir:
        """A new run dir; refuses one that already holds a run, checks it is writable."""
        run = cls(Path(path))
        if (run.path / CONFIG).exists():
            raise ConfigError(
                f"{run.path} already holds a run: continue it with `opro resume {run.path}`, "
                "or choose another --out"
            )
        try:
            run.path.mkdir(parents=True, exist_ok=True)
            probe = run.path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"cannot write the run directory {run.path} ({exc.strerror}): choose another --out"
            ) from None
        write_json_atomic(run.path / CONFIG, {"format": FORMAT, "versions": versions(), **config})
        return run

    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """An existing run dir, checked to be one this version can continue."""
        run = cls(Path(path))
        if not (run.path / CONFIG).is_file():
            raise ConfigError(f"{run.path} is not an opro run directory (no {CONFIG})")
        try:
            config = run.config()
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{run.path / CONFIG} is unreadable ({exc})") from None
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
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with (self.path / STEPS).open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    # -- summary ------------------------------------------------------------------------

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.path / SUMMARY, summary)

    def summary(self) -> dict[str, Any] | None:
        path = self.path / SUMMARY
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
