"""Download the benchmark files into a folder laid out like the authors' ``data/`` folder.

Owns: the manifest of benchmark files (relative paths, by group), the public source they
come from (``DEFAULT_SOURCE``: the authors' repository at a pinned commit, or
``$OPRO_DATA_URL``), their SHA-256 (``checksums.sha256`` in this package), and an atomic,
verified download of each: a file is written to a temporary file beside its target, its
SHA-256 compared with the one listed, and only then renamed into place, so a failed,
truncated or altered download leaves nothing behind. Network and content problems are
one-line ``ConfigError``s.
Leaves out: parsing (``opro.data.formats``), where data lives by default
(``opro.data.loaders.default_data_dir``) and any progress display (it logs to
``logging.getLogger(__name__)``; the CLI decides what to show).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from opro.data.formats import (
    AQUA,
    BBH_DIR,
    GSM_TEST,
    GSM_TRAIN,
    MMLU_DIR,
    MULTIARITH,
    one_line,
)
from opro.data.loaders import BBH_TASKS, MMLU_SUBJECTS, default_data_dir
from opro.errors import ConfigError
from opro.files import make_readable

logger = logging.getLogger(__name__)

#: The authors' repository holds exactly the data/ layout this package reads; pinned to one
#: commit so that the files are always the ones ``checksums.sha256`` lists.
SOURCE_COMMIT = "e81b2f573ce4e15755c70c2535279d6fb940b4b7"
DEFAULT_SOURCE = f"https://raw.githubusercontent.com/google-deepmind/opro/{SOURCE_COMMIT}/data"

GROUPS: tuple[str, ...] = ("gsm8k", "bbh", "multiarith", "aqua", "mmlu")

#: Group -> the relative paths (under the data dir and under the source URL) it downloads.
MANIFEST: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "gsm8k": (GSM_TRAIN, GSM_TEST),
        "bbh": tuple(f"{BBH_DIR}/{task}.json" for task in BBH_TASKS),
        "multiarith": (MULTIARITH,),
        "aqua": (AQUA,),
        "mmlu": tuple(f"{MMLU_DIR}/{subject}_test.csv" for subject in MMLU_SUBJECTS),
    }
)
ALL_FILES: tuple[str, ...] = tuple(rel for group in GROUPS for rel in MANIFEST[group])


@cache
def checksums() -> Mapping[str, str]:
    """Relative path → the SHA-256 (hex) of the authors' file, from ``checksums.sha256``."""
    text = resources.files("opro.data").joinpath("checksums.sha256").read_text(encoding="utf-8")
    pairs = (line.split(None, 1) for line in text.splitlines() if line and line[0] != "#")
    return MappingProxyType({rel.strip(): digest for digest, rel in pairs})


def default_source() -> str:
    """``$OPRO_DATA_URL`` if set, else ``DEFAULT_SOURCE``."""
    return os.environ.get("OPRO_DATA_URL") or DEFAULT_SOURCE


def select_files(
    only: Sequence[str] | None = None, files: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The relative paths to fetch, in manifest order.

    ``only`` picks whole groups (default: all of them, unless ``files`` is given);
    ``files`` adds single paths from the manifest (e.g. ``"AQuA-data/AQuA.json"``).
    """
    wanted: set[str] = set()
    for group in only if only is not None else (GROUPS if files is None else ()):
        if group not in MANIFEST:
            close = difflib.get_close_matches(group, GROUPS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"unknown benchmark group {group!r}{hint}; choose from {', '.join(GROUPS)}"
            )
        wanted.update(MANIFEST[group])
    for rel in files or ():
        rel = rel.strip().lstrip("/")
        if rel not in ALL_FILES:
            close = difflib.get_close_matches(rel, ALL_FILES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"{rel!r} is not a benchmark file{hint}; name a path of the authors' data/ "
                "folder, e.g. AQuA-data/AQuA.json"
            )
        wanted.add(rel)
    return tuple(rel for rel in ALL_FILES if rel in wanted)


def fetch_benchmarks(
    dest: Path | str | None = None,
    *,
    base_url: str | None = None,
    only: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
    timeout: float = 60,
    force: bool = False,
) -> list[Path]:
    """Download the selected benchmark files into ``dest``; return the paths written.

    ``dest`` defaults to ``default_data_dir()``, ``base_url`` to ``default_source()``;
    ``only``/``files`` select what to fetch (see ``select_files``). Files already present
    are skipped (and not returned) unless ``force``. Each download is validated by parsing
    it before it is renamed into place.
    """
    root = Path(dest).expanduser() if dest else default_data_dir()
    source = (base_url or default_source()).rstrip("/")
    written: list[Path] = []
    made: list[Path] = []  # folders this fetch made: a failed one removes the empty ones
    try:
        for rel in select_files(only, files):
            target = root / rel
            if target.is_file() and not force:
                logger.info("%s is already present; skipped", target)
                continue
            made += [p for p in (target.parent, *target.parent.parents) if not p.exists()]
            url = f"{source}/{urllib.parse.quote(rel)}"
            logger.info("downloading %s", url)
            _download(url, rel, target, timeout)
            written.append(target)
    except BaseException:
        for folder in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: files fetched before stay
        raise
    logger.info("%d file(s) written under %s", len(written), root)
    return written


def _download(url: str, rel: str, target: Path, timeout: float) -> None:
    """Fetch ``url`` to a temp file beside ``target``, verify it, rename it into place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {target.parent} ({exc.strerror or exc}): give `data_dir` "
            "naming a writable folder"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _copy_url(url, out, timeout)
        wanted = checksums()[rel]
        if digest != wanted:
            raise ConfigError(
                f"{url}: the download ({size} bytes) is not the authors' {rel} (SHA-256 "
                f"{digest[:12]}…, expected {wanted[:12]}…): it is truncated or altered; run "
                "`opro data fetch` again, or check that `source` serves the authors' data/ "
                f"folder at commit {SOURCE_COMMIT[:7]}"
            )
        make_readable(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_url(url: str, out: BinaryIO, timeout: float) -> tuple[str, int]:
    """Copy the body of ``url`` into ``out``; its SHA-256 (hex) and size."""
    sha, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 16):
                sha.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return sha.hexdigest(), size
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        reason = str(exc.reason)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
    raise ConfigError(
        one_line(
            f"could not download {url} ({reason}): check your connection or give another "
            "`source` URL"
        )
    )
