"""config.json as a type: ``RunConfig``, the run's spec (``RunSpec``) with its caps, cache,
the versions that wrote it and, for a job of repetitions, its run dirs' names.

A format-2 config.json's ``spec`` is kept as it was read (``stored``): written back as it
was when a cap is raised, its fingerprint (``opro.fingerprint``) stays the one the steps
were scored under. A format-1 config.json (the first release) is converted on the way in;
written again, it is format 2. The run directory's files are ``opro.runlog``'s.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from opro.errors import ConfigError
from opro.fingerprint import fingerprint
from opro.llm.usage import Caps
from opro.problems.registry import kind_of, parse_spec
from opro.problems.spec import RunSpec

FORMAT = 2
READABLE = (1, 2)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("opro", "openai", "llama-cpp-python", "numpy", "highspy"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


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
    stored: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """config.json's ``spec`` as read (format 2), written back as it was when a cap is
    raised: its fingerprint stays the one the steps were scored under."""
    signed: bool = field(default=False, compare=False)
    """Read from a config.json that carries this user's signature (``opro.signature``)."""

    @property
    def spec_json(self) -> dict[str, Any]:
        """The spec as config.json holds it (no secret of a URL)."""
        if self.stored is not None:
            return dict(self.stored)
        return self.spec.redacted().model_dump(mode="json")

    @property
    def fingerprint(self) -> str:
        """The fingerprint of ``spec_json``, which each step record carries."""
        return fingerprint(self.spec_json)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "versions": self.versions,
            "spec": self.spec_json,
            "caps": self.caps.model_dump(mode="json"),
            "cache": {"enabled": self.cache.enabled, "path": self.cache.path},
        }
        return data | ({"runs": list(self.runs)} if self.runs else {})

    @classmethod
    def from_json(
        cls, data: Any, where: Path, read_run: Callable[[str], RunConfig] | None = None
    ) -> RunConfig:
        """config.json's data (``where``: its path, for errors); ``read_run``: the config
        of a job's run dir, by name (a format-1 job's spec is its first run's)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} is not a JSON object: not an opro run dir")
        if data.get("format") not in READABLE:
            raise ConfigError(
                f"{where.parent} was written by an incompatible opro (run format "
                f"{data.get('format')!r}, this opro reads {', '.join(map(str, READABLE))}): "
                "rerun it with this version"
            )
        stored = data.get("spec") if data["format"] == 2 else None
        if data["format"] == 1:
            data = _from_format1(data, where, read_run)
        cache = data.get("cache") or {}
        try:
            caps = Caps.model_validate(data.get("caps") or {})
        except ValueError as exc:
            raise ConfigError(f"{where}: caps: {exc}") from None
        return cls(
            spec=parse_spec(data.get("spec"), str(where)),
            caps=caps,
            cache=CacheConfig(bool(cache.get("enabled", True)), cache.get("path")),
            runs=_run_names(data.get("runs") or [], where),
            versions=dict(data.get("versions") or {}),
            stored=stored if isinstance(stored, dict) else None,
        )


def _run_names(runs: Any, where: Path) -> tuple[str, ...]:
    """A job's run dirs: plain names of folders inside it (``rep-0``...), never a path
    that leads elsewhere."""
    if not isinstance(runs, list):
        raise ConfigError(f"{where}: runs is not a list of run dirs: not an opro run dir")
    for name in runs:
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
            raise ConfigError(
                f"{where}: runs: {name!r} is not the name of a folder inside the job "
                "(rep-0, rep-1...): not an opro run dir"
            )
    return tuple(runs)


def _from_format1(
    data: dict[str, Any], where: Path, read_run: Callable[[str], RunConfig] | None
) -> dict[str, Any]:
    """A format-1 config.json in format 2's shape: the kind's parameters, the roles and the
    engine (its ``meta`` knobs flattened) become one spec; ``budget`` becomes ``caps``."""
    if "runs" in data:  # a job: its spec is its first run's, with the number of runs
        names = _run_names(data["runs"], where)
        if not names or read_run is None:
            raise ConfigError(f"{where}: runs is empty: not an opro run dir")
        first = read_run(names[0])
        spec = first.spec.model_copy(update={"reps": len(data["runs"])})
        return {"spec": spec.model_dump(mode="json"), "runs": data["runs"], "format": 1}
    engine = dict(data.get("engine") or {})
    engine |= engine.pop("meta", None) or {}
    params = kind_of(str(data.get("kind"))).upgrade(dict(data.get("problem") or {}))
    roles: dict[str, Any] = {r: data[r] for r in ("optimizer", "scorer") if r in data}
    fields: dict[str, Any] = {"kind": data.get("kind"), **params, **roles, "engine": engine}
    return data | {"spec": fields, "caps": data.get("budget") or {}}
