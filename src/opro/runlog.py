"""The run directory, written as the run goes, enough to reproduce or resume it:

- ``config.json``: ``RunConfig``, the run's spec (``RunSpec``: the problem, the models, the
  loop's knobs, the seed), its caps and cache, and the versions that ran it; written once
  (again only to raise a cap), atomically; never an API key, nor the secrets of a base URL
  (``user:pass@``, ``?api-key=``), kept as ``***``;
- ``.signature``: this user's signature of config.json (``opro.signature``): a run dir made
  by this user's opro is trusted to import the code its spec names;
- ``steps.jsonl``: one ``StepRecord`` per completed step, appended and fsynced; each carries
  the fingerprint of the spec it was scored under (``opro.fingerprint``), and reading them
  against a config.json with another spec is a one-line error naming what changed;
- ``summary.json``: a ``RunSummary`` (a ``JobSummary`` for a job of repetitions), atomic;
- ``.lock``: held by the one process writing the run (its PID inside).

A killed run leaves at worst a truncated last line in ``steps.jsonl``; reading ignores it
and ``truncate_partial`` cuts it off before appending again. Steps must run 0, 1, 2... with
the right types; anything else is a one-line ``ConfigError`` naming the file and line. A
write that fails (a full disk) leaves the files as they were; a run dir whose creation
fails is removed again. Nothing inside a run dir is reached through a link: each file is
opened ``O_NOFOLLOW`` and must be a regular file (``opro.files.open_inside``), and a run
dir holding a link, FIFO or device where one of its files goes is refused before anything
is written. Run dirs of format 1 (the first release) read through the same types, their
config converted on the way in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from opro.errors import ConfigError, RunLocked
from opro.files import MB, check_regular, json_bytes, lock_holder, open_inside, read_inside
from opro.files import cannot_write as cannot_write
from opro.files import write_atomic as write_atomic
from opro.files import write_json_atomic as write_json_atomic
from opro.fingerprint import fingerprint, mismatch
from opro.problems.jobs import JobSummary
from opro.problems.records import RunSummary, StepRecord
from opro.problems.registry import kind_of
from opro.problems.spec import settings_of
from opro.record import JsonRecord
from opro.runconfig import FORMAT as FORMAT
from opro.runconfig import READABLE as READABLE
from opro.runconfig import CacheConfig as CacheConfig
from opro.runconfig import RunConfig as RunConfig
from opro.signature import sign, signed_here

R = TypeVar("R", bound=JsonRecord)

STEPS_LIMIT = 512 * MB
"""The largest steps.jsonl read (500 steps of the paper's runs take a few MB)."""
CONFIG, STEPS, SUMMARY, LOCK = "config.json", "steps.jsonl", "summary.json", ".lock"
SIGNATURE, REPORT = ".signature", "report.html"
FILES = (CONFIG, STEPS, SUMMARY, LOCK, SIGNATURE, REPORT)
"""A run dir's own files: each a regular file, or absent."""
TEMP = re.compile(r"\.(config\.json|summary\.json|\.signature|report[-\w.]*)\.[a-z0-9_]{8}\.tmp")


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._made: list[Path] = []  # folders ``create`` made, for ``discard``
        self._wrote = False  # ``create`` wrote config.json: the run's files are this one's
        self._lock: int | None = None
        self._under: RunConfig | None = None
        """The config last read or written: the spec new steps are recorded under."""

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
            run.check_files()
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
            run._wrote = True
            run.write_config(config, running=False)
        except BaseException:
            run.discard()
            raise
        return run

    @classmethod
    def open(cls, path: Path | str, *, lock: bool = False) -> RunDir:
        """An existing run dir (locked for writing if ``lock``), checked to be readable."""
        run = cls(Path(path))
        if run.path.is_dir():
            run.check_files()
        if not (run.path / CONFIG).is_file():
            raise ConfigError(
                f"{run.path} is not an opro run directory (no {CONFIG}): give the `out` "
                "directory of a run (`opro optimize`, `opro solve`, `opro linreg`...)"
            )
        run.config()  # readable first: a refused dir is left as it was
        if lock:
            run.lock()
        return run

    def check_files(self) -> None:
        """Each of the run dir's files is a regular file or absent: a link, FIFO or device
        in its place is a one-line ``ConfigError``, before anything is read or written."""
        for name in FILES:
            check_regular(self.path / name)

    def child(self, name: str) -> Path:
        """A job's run dir ``name``: a folder inside this one, not a link to elsewhere."""
        path = self.path / name
        check_regular(path / CONFIG)
        if path.is_symlink():
            raise ConfigError(
                f"{path} is a symbolic link: opro follows no link inside a run dir (it could "
                "point anywhere): put the run dir itself there"
            )
        return path

    def lock(self, *, running: bool = True) -> None:
        """Become the one writer of this run dir, or a ``ConfigError`` naming the holder. The
        lock dies with its process (a killed run never blocks the next). Its PID is written
        only into a lock file this user owns alone: a file planted there is never truncated."""
        path = self.path / LOCK
        try:
            try:
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(path, flags, 0o644)
            except FileExistsError:
                try:
                    fd = open_inside(path, os.O_RDWR)
                except PermissionError:  # someone else's: locked all the same
                    fd = open_inside(path, os.O_RDONLY)
        except OSError as exc:
            raise cannot_write(path, exc, running=running) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock_holder(fd)
            os.close(fd)
            raise RunLocked(
                f"{self.path} is being written by process {holder}: wait for it to end (or "
                "stop it), then `opro resume` it"
            ) from None
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and info.st_nlink == 1:
            try:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode("ascii"))
            except OSError as exc:
                with contextlib.suppress(OSError):
                    path.unlink()  # held, so no other process uses it
                os.close(fd)
                raise cannot_write(path, exc, running=running) from None
        self._lock = fd
        self.remove_temps()

    def remove_temps(self) -> None:
        """Remove the temp files its files are written through that a killed writer left."""
        with contextlib.suppress(OSError), os.scandir(self.path) as entries:
            for entry in (e for e in entries if TEMP.fullmatch(e.name)):
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                        os.unlink(entry.path)

    def tidy(self) -> None:  # a finished run's temp files, where its lock is free
        with contextlib.suppress(ConfigError):
            self.lock()
        self.release()

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
        for name in (STEPS, SUMMARY, CONFIG, SIGNATURE) if self._wrote else ():
            with contextlib.suppress(OSError):
                (self.path / name).unlink()
        if self._wrote or self._lock is not None:  # this one's run: no other writes here
            with contextlib.suppress(OSError):
                (self.path / LOCK).unlink()
        self.release()
        for folder in self._made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()

    # -- the config ---------------------------------------------------------------------

    def config(self) -> RunConfig:
        """config.json, and whether it carries this user's signature."""
        where = self.path / CONFIG
        try:
            raw = read_inside(where, 64 * MB, "the run config")
            data = json.loads(raw.decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{where} is unreadable ({_why(exc)})") from None
        config = RunConfig.read(data, where, lambda n: RunDir.open(self.child(n)).config())
        self._under = replace(config, signed=signed_here(raw, self._signature()))
        return self._under

    def _signature(self) -> str | None:
        try:
            return read_inside(self.path / SIGNATURE, 4096, "the signature").decode("ascii")
        except (OSError, UnicodeDecodeError):
            return None

    def write_config(self, config: RunConfig, *, running: bool = True) -> None:
        """Write config.json (atomically) and sign it; a spec read from disk is written back
        as it was read. Where no key can sign, no signature is left (a stale one would
        not match anyway)."""
        data = json_bytes(config.to_json())
        write_atomic(self.path / CONFIG, data, running=running)
        signature = sign(data)
        self._under = replace(config, signed=signature is not None)
        if signature is None:
            with contextlib.suppress(OSError):
                (self.path / SIGNATURE).unlink()
            return
        with contextlib.suppress(ConfigError):  # unsigned: trusted only with trust_code
            write_atomic(self.path / SIGNATURE, f"{signature}\n".encode("ascii"), durable=False)

    # -- steps --------------------------------------------------------------------------

    def read_steps(self, config: RunConfig | None = None) -> list[StepRecord]:
        """Complete steps in order; a truncated last line (a kill mid-write) is ignored.
        Steps scored under a spec other than ``config``'s (default: config.json's) are a
        one-line ``ConfigError`` naming what changed."""
        config = config or self.config()
        path = self.path / STEPS
        try:
            lines = read_inside(path, STEPS_LIMIT, "the steps file").split(b"\n")
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
            except (ValueError, RecursionError) as exc:
                if number == len(lines) and isinstance(exc, json.JSONDecodeError | UnicodeError):
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
        self._check_scored_under(config, steps)
        return steps

    def _check_scored_under(self, config: RunConfig, steps: list[StepRecord]) -> None:
        """Every step that names the spec it was scored under names ``config``'s."""
        expected = config.fingerprint
        for record in steps:
            if record.spec_sha256 is None or record.spec_sha256 == expected:
                continue
            kept = next((s.spec for s in steps if s.spec is not None), None)
            names = {path: name for name, path in settings_of(type(config.spec)).items()}
            then = kept if kept is not None and fingerprint(kept) == record.spec_sha256 else None
            raise ConfigError(
                f"{self.path / CONFIG} is not the config {STEPS} was scored under (step "
                f"{record.step}): {mismatch(config.spec_json, then, names)}: put back this "
                f"run's own {CONFIG}, or start a new run with that spec"
            )

    def truncate_partial(self) -> None:
        """Cut a partial last line so that the next append starts on a clean line."""
        path = self.path / STEPS
        try:
            fd = open_inside(path, os.O_RDWR, write=True)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise cannot_write(path, exc, running=True) from None
        with os.fdopen(fd, "r+b") as f:
            data = f.read(STEPS_LIMIT + 1)
            if len(data) > STEPS_LIMIT:
                raise ConfigError(f"the steps file {path} is over {STEPS_LIMIT / MB:g} MB")
            end = data.rfind(b"\n") + 1
            if end != len(data):
                try:
                    f.truncate(end)
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as exc:
                    raise cannot_write(path, exc, running=True) from None

    def append_step(self, record: StepRecord) -> None:
        """Append one line and fsync it; on failure (a full disk) the file is cut back to
        its previous length, so no partial line is left, and a ``ConfigError`` says why.
        The line names the spec it was scored under (step 0 keeps the spec itself)."""
        under = self._under or self.config()
        record = replace(
            record,
            spec_sha256=under.fingerprint,
            spec=under.spec_json if record.step == 0 else None,
        )
        line = (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
        path = self.path / STEPS
        try:
            fd = open_inside(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, write=True)
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
        under = self._under or self.config()
        problem = kind_of(under.spec.kind).problem  # the kind reads its own part
        return self._summary(RunSummary, lambda summary: problem.check_details(summary.details))

    def job_summary(self) -> JobSummary | None:
        return self._summary(JobSummary)

    def _summary(self, record: type[R], check: Callable[[R], None] | None = None) -> R | None:
        path = self.path / SUMMARY
        try:
            data = json.loads(read_inside(path, 64 * MB, "the summary").decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{path} is unreadable ({_why(exc)}): {_SUMMARY_FIX}") from None
        try:
            summary = record.from_json(data)
            if check is not None:
                check(summary)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}: {_SUMMARY_FIX}") from None
        return summary


def _why(exc: BaseException) -> str:
    """Why a JSON file could not be read, in a few words: json's and the OS's messages as
    they are; an integer of over 4,300 digits (sys.get_int_max_str_digits()) named as such."""
    if isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError | UnicodeError):
        return "a number too long to read"
    return " ".join(str(exc).split())


_FIX = "repair or delete that line and those after it (the steps before are kept)"
_SUMMARY_FIX = "delete it (it is rewritten from the steps) and resume or report again"
