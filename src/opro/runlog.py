"""The run directory, written as the run goes, enough to reproduce or resume it:

- ``config.json``: ``RunConfig``, the run's spec (``RunSpec``: the problem, the models, the
  loop's knobs, the seed), its caps and cache, and the versions that ran it; written once,
  atomically; never an API key, nor the secrets of a base URL (``user:pass@``,
  ``?api-key=``), kept as ``***``;
- ``steps.jsonl``: one ``StepRecord`` per completed step, appended and fsynced;
- ``summary.json``: a ``RunSummary`` (a ``JobSummary`` for a job of repetitions), atomic;
- ``.lock``: held by the one process writing the run (its PID inside).

A killed run leaves at worst a truncated last line in ``steps.jsonl``; reading ignores it
and ``truncate_partial`` cuts it off before appending again. Steps must run 0, 1, 2... with
the right types; anything else is a one-line ``ConfigError`` naming the file and line. A
write that fails (a full disk) leaves the files as they were; a run dir whose creation
fails is removed again. Run dirs of format 1 (the first release) read through the same
types, their config converted on the way in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from opro.errors import ConfigError, RunLocked
from opro.files import MB, make_readable, read_bounded
from opro.llm.usage import Caps
from opro.problems.records import RunSummary, StepRecord
from opro.problems.registry import kind_of, parse_spec
from opro.problems.runs import JobSummary
from opro.problems.spec import RunSpec

FORMAT = 2
STEPS_LIMIT = 512 * MB
"""The largest steps.jsonl read (500 steps of the paper's runs take a few MB)."""
READABLE = (1, 2)
CONFIG, STEPS, SUMMARY, LOCK = "config.json", "steps.jsonl", "summary.json", ".lock"


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
        then = "then continue the run with `opro resume`" if running else "or choose another `out`"
        return ConfigError(
            f"cannot write {path}: no space left on the device: free some space, {then}"
        )
    fix = (
        "fix that, then continue the run with `opro resume`" if running else "choose another `out`"
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
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise cannot_write(path, exc, running=running) from None
        raise


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool = True
    path: str | None = None
    """None: the default cache (``$OPRO_CACHE_DIR`` or the user cache dir)."""


@dataclass(frozen=True)
class RunConfig:
    """config.json: the spec and what else a resume needs."""

    spec: RunSpec
    caps: Caps = field(default_factory=Caps)
    cache: CacheConfig = field(default_factory=CacheConfig)
    runs: tuple[str, ...] = ()
    """A job of repetitions: its run dirs, in order."""
    versions: dict[str, str] = field(default_factory=versions)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "versions": self.versions,
            "spec": self.spec.redacted().model_dump(mode="json"),  # no secret of a URL
            "caps": self.caps.model_dump(mode="json"),
            "cache": {"enabled": self.cache.enabled, "path": self.cache.path},
        }
        return data | ({"runs": list(self.runs)} if self.runs else {})

    @classmethod
    def from_json(cls, data: Any, where: Path) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where} is not a JSON object: not an opro run dir")
        if data.get("format") not in READABLE:
            raise ConfigError(
                f"{where.parent} was written by an incompatible opro (run format "
                f"{data.get('format')!r}, this opro reads {', '.join(map(str, READABLE))}): "
                "rerun it with this version"
            )
        if data["format"] == 1:
            data = _from_format1(data, where)
        cache = data.get("cache") or {}
        runs = data.get("runs") or []
        try:
            caps = Caps.model_validate(data.get("caps") or {})
        except ValueError as exc:
            raise ConfigError(f"{where}: caps: {exc}") from None
        return cls(
            spec=parse_spec(data.get("spec"), str(where)),
            caps=caps,
            cache=CacheConfig(bool(cache.get("enabled", True)), cache.get("path")),
            runs=tuple(str(r) for r in runs),
            versions=dict(data.get("versions") or {}),
        )


def _from_format1(data: dict[str, Any], where: Path) -> dict[str, Any]:
    """A format-1 config.json in format 2's shape: the kind's parameters, the roles and the
    engine (its ``meta`` knobs flattened) become one spec; ``budget`` becomes ``caps``."""
    if "runs" in data:  # a job: its spec is its first run's, with the number of runs
        first = RunDir(where.parent / str(data["runs"][0])).config()
        spec = first.spec.model_copy(update={"reps": len(data["runs"])})
        return {"spec": spec.model_dump(mode="json"), "runs": data["runs"], "format": 1}
    engine = dict(data.get("engine") or {})
    engine |= engine.pop("meta", None) or {}
    params = kind_of(str(data.get("kind"))).upgrade(dict(data.get("problem") or {}))
    roles: dict[str, Any] = {r: data[r] for r in ("optimizer", "scorer") if r in data}
    fields: dict[str, Any] = {"kind": data.get("kind"), **params, **roles, "engine": engine}
    return data | {"spec": fields, "caps": data.get("budget") or {}}


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._made: list[Path] = []  # folders ``create`` made, for ``discard``
        self._wrote = False  # ``create`` wrote config.json: the run's files are this one's
        self._lock: int | None = None

    # -- creating, opening, locking ------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str, config: RunConfig) -> RunDir:
        """A new run dir, locked; refuses one that already holds a run. On failure nothing
        is left behind: the folders it made are removed again."""
        run = cls(Path(path))
        run._made = [p for p in (run.path, *run.path.parents) if not p.exists()]
        try:
            try:
                run.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise cannot_write(run.path, exc) from None
                raise ConfigError(
                    f"cannot write the run directory {run.path} ({exc.strerror}): "
                    "choose another `out`"
                ) from None
            run.lock(running=False)
            if (run.path / CONFIG).exists():
                raise ConfigError(
                    f"{run.path} already holds a run: continue it with `opro resume "
                    f"{run.path}`, or choose another `out`"
                )
            stray = [name for name in (STEPS, SUMMARY) if (run.path / name).exists()]
            if stray:  # a run's files without its config: never mixed into a new run
                raise ConfigError(
                    f"{run.path} holds {' and '.join(stray)} but no {CONFIG} (the remains of "
                    "another run?): choose another `out`, or remove them"
                )
            write_json_atomic(run.path / CONFIG, config.to_json())
            run._wrote = True
        except BaseException:
            run.discard()
            raise
        return run

    @classmethod
    def open(cls, path: Path | str, *, lock: bool = False) -> RunDir:
        """An existing run dir (locked for writing if ``lock``), checked to be readable."""
        run = cls(Path(path))
        if not (run.path / CONFIG).is_file():
            raise ConfigError(
                f"{run.path} is not an opro run directory (no {CONFIG}): give the `out` "
                "directory of an `opro optimize`, `opro linreg` or `opro tsp` run"
            )
        run.config()  # readable first: a refused dir is left as it was
        if lock:
            run.lock()
        return run

    def lock(self, *, running: bool = True) -> None:
        """Become the one writer of this run dir, or a ``ConfigError`` naming the holder. The
        lock dies with its process, so a killed run never blocks the next."""
        path = self.path / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise cannot_write(path, exc, running=running) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(
                f"{self.path} is being written by process {holder}: wait for it to end (or "
                "stop it), then `opro resume` it"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()  # held, so no other process uses it
            os.close(fd)
            raise cannot_write(path, exc, running=running) from None
        self._lock = fd

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
                os.close(self._lock)
            self._lock = None

    def discard(self) -> None:
        """Undo ``create``: remove the run's files and the (then empty) folders it made —
        only what this process made: a ``create`` refused because another process holds
        the dir (or a run is already there) leaves that run untouched."""
        for name in (STEPS, SUMMARY, CONFIG) if self._wrote else ():
            with contextlib.suppress(OSError):
                (self.path / name).unlink()
        if self._wrote or self._lock is not None:  # this one's run: no other writes here
            with contextlib.suppress(OSError):
                (self.path / LOCK).unlink()
        self.release()
        for folder in self._made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()

    def config(self) -> RunConfig:
        where = self.path / CONFIG
        try:
            data = json.loads(read_bounded(where, 64 * MB, "the run config").decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ConfigError(f"{where} is unreadable ({exc})") from None
        return RunConfig.from_json(data, where)

    # -- steps --------------------------------------------------------------------------

    def read_steps(self) -> list[StepRecord]:
        """Complete steps in order; a truncated last line (a kill mid-write) is ignored."""
        path = self.path / STEPS
        try:
            lines = read_bounded(path, STEPS_LIMIT, "the steps file").split(b"\n")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"cannot read {path} ({exc.strerror})") from None
        steps: list[StepRecord] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                if number == len(lines):
                    break  # the partial last line of a killed write
                raise ConfigError(f"{path} is corrupt at line {number}: {_FIX}") from None
            try:
                record = StepRecord.from_json(data)
            except ValueError as exc:
                raise ConfigError(f"{path} line {number}: {exc}: {_FIX}") from None
            if record.step != len(steps):
                raise ConfigError(
                    f"{path} line {number}: step {record.step} where step {len(steps)} was "
                    f"expected: {_FIX}"
                )
            steps.append(record)
        return steps

    def truncate_partial(self) -> None:
        """Cut a partial last line so that the next append starts on a clean line."""
        path = self.path / STEPS
        if not path.exists():
            return
        data = read_bounded(path, STEPS_LIMIT, "the steps file")
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with path.open("r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())

    def append_step(self, record: StepRecord) -> None:
        """Append one line and fsync it; on failure (a full disk) the file is cut back to
        its previous length, so no partial line is left, and a ``ConfigError`` says why."""
        line = (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
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

    def write_summary(self, summary: RunSummary | JobSummary) -> None:
        write_json_atomic(self.path / SUMMARY, summary.to_json(), running=True)

    def summary(self) -> RunSummary | None:
        data = self._summary_json()
        if data is None:
            return None
        try:
            return RunSummary.from_json(data)
        except ValueError as exc:
            raise ConfigError(f"{self.path / SUMMARY}: {exc}: {_SUMMARY_FIX}") from None

    def job_summary(self) -> JobSummary | None:
        data = self._summary_json()
        if data is None:
            return None
        try:
            return JobSummary.from_json(data)
        except ValueError as exc:
            raise ConfigError(f"{self.path / SUMMARY}: {exc}: {_SUMMARY_FIX}") from None

    def _summary_json(self) -> Any:
        path = self.path / SUMMARY
        try:
            return json.loads(read_bounded(path, 64 * MB, "the summary").decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}): {_SUMMARY_FIX}") from None


_FIX = "repair or delete that line and those after it (the steps before are kept)"
_SUMMARY_FIX = "delete it (it is rewritten from the steps) and resume or report again"
