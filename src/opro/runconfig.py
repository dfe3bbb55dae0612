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
from dataclasses import field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_serializer,
    model_validator,
)
from pydantic.dataclasses import dataclass

from opro.errors import ConfigError
from opro.fingerprint import fingerprint
from opro.llm.usage import Caps
from opro.problems.registry import kind_of, parse_spec
from opro.problems.spec import RunSpec
from opro.record import RECORD, JsonRecord, adapter, first_error

FORMAT: Literal[2] = 2
READABLE = (1, 2)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("opro", "openai", "llama-cpp-python", "numpy", "highspy"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


@dataclass(frozen=True, config=RECORD)
class CacheConfig:
    """The LLM call cache the run uses."""

    enabled: bool = True
    """whether LLM calls are cached and replayed"""
    path: str | None = None
    """the cache's SQLite file; null: the default ($OPRO_CACHE_DIR, else the user cache
    dir)"""


@dataclass(frozen=True, config=RECORD)
class RunConfig(JsonRecord):
    """config.json: the spec and what else a resume needs; a job of repetitions also names
    its runs' dirs (``runs``)."""

    spec: RunSpec
    """the run's spec: the problem kind, its parameters, the models, the loop's knobs and the
    seed; one of the kinds' specs, told apart by 'kind'"""
    caps: Caps = Field(default_factory=Caps)
    """what the run may spend at most (a cap of null: no cap)"""
    cache: CacheConfig = Field(default_factory=CacheConfig)
    """the LLM call cache the run uses"""
    runs: tuple[str, ...] = Field(default=(), exclude_if=lambda v: not v)
    """a job of repetitions: its run dirs, in order"""
    versions: dict[str, str] = Field(default_factory=versions)
    """the versions that wrote the run: python and the installed packages among opro,
    openai, llama-cpp-python, numpy, highspy"""
    stored: Annotated[Mapping[str, Any] | None, Field(exclude=True)] = field(
        default=None, compare=False, repr=False
    )
    """config.json's ``spec`` as read (format 2), written back as it was when a cap is
    raised: its fingerprint stays the one the steps were scored under."""
    signed: Annotated[bool, Field(exclude=True)] = field(default=False, compare=False)
    """Read from a config.json that carries this user's signature (``opro.signature``)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def format(self) -> Literal[2]:
        """the run-dir format this file was written in"""
        return FORMAT

    @property
    def spec_json(self) -> dict[str, JsonValue]:
        """The spec as config.json holds it (no secret of a URL)."""
        if self.stored is not None:
            return dict(self.stored)
        return self.spec.redacted().model_dump(mode="json")

    @property
    def fingerprint(self) -> str:
        """The fingerprint of ``spec_json``, which each step record carries."""
        return fingerprint(self.spec_json)

    @field_serializer("spec")
    def _write_spec(self, spec: RunSpec) -> dict[str, JsonValue]:
        return self.spec_json

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        """config.json's data as read (``info.context``: its path ``where`` and, for a
        format-1 job, ``read_run``, a run dir's config by name): the format checked, a
        format-1 config converted, the spec parsed as its kind's."""
        if not isinstance(data, dict):
            return data  # built in code, not read
        where: Path = (info.context or {}).get("where", Path("config.json"))
        if data.get("format") not in READABLE:
            raise ConfigError(
                f"{where.parent} was written by an incompatible opro (run format "
                f"{data.get('format')!r}, this opro reads {', '.join(map(str, READABLE))}): "
                "rerun it with this version"
            )
        stored = data.get("spec") if data["format"] == 2 else None
        if data["format"] == 1:
            data = _from_format1(data, where, (info.context or {}).get("read_run"))
        try:
            caps = Caps.model_validate(data.get("caps") or {})
        except ValidationError as exc:
            raise ConfigError(f"{where}: caps: {first_error(exc)}") from None
        cache = data.get("cache") or {}
        return {
            "spec": parse_spec(data.get("spec"), str(where)),
            "caps": caps,
            "cache": {"enabled": bool(cache.get("enabled", True)), "path": cache.get("path")},
            "runs": _run_names(data.get("runs") or [], where),
            "versions": dict(data.get("versions") or {}),
            "stored": stored if isinstance(stored, dict) else None,
        }

    @classmethod
    def read(
        cls, data: Any, where: Path, read_run: Callable[[str], RunConfig] | None = None
    ) -> RunConfig:
        """config.json's data (``where``: its path, for errors); ``read_run``: the config
        of a job's run dir, by name (a format-1 job's spec is its first run's)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} is not a JSON object: not an opro run dir")
        try:
            config: RunConfig = adapter(cls).validate_python(
                data, context={"where": where, "read_run": read_run}
            )
        except ValidationError as exc:
            raise ConfigError(f"{where}: {first_error(exc)}: not an opro run dir") from None
        return config


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
    data: dict[str, JsonValue], where: Path, read_run: Callable[[str], RunConfig] | None
) -> dict[str, JsonValue]:
    """A format-1 config.json in format 2's shape: the kind's parameters, the roles and the
    engine (its ``meta`` knobs flattened) become one spec; ``budget`` becomes ``caps``."""
    if "runs" in data:  # a job: its spec is its first run's, with the number of runs
        names = _run_names(data["runs"], where)
        if not names or read_run is None:
            raise ConfigError(f"{where}: runs is empty: not an opro run dir")
        first = read_run(names[0])
        spec = first.spec.model_copy(update={"reps": len(names)})
        return {"spec": spec.model_dump(mode="json"), "runs": data["runs"], "format": 1}
    engine, problem = _object(data.get("engine")), _object(data.get("problem"))
    engine = {k: v for k, v in engine.items() if k != "meta"} | _object(engine.get("meta"))
    params = kind_of(str(data.get("kind"))).upgrade(problem)
    roles = {r: data[r] for r in ("optimizer", "scorer") if r in data}
    fields = {"kind": data.get("kind"), **params, **roles, "engine": engine}
    return data | {"spec": fields, "caps": data.get("budget") or {}}


def _object(value: JsonValue) -> dict[str, JsonValue]:
    """A format-1 part that should be an object (none: empty)."""
    return dict(value) if isinstance(value, dict) else {}
