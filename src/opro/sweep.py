"""Ablation sweeps: one command's runs over a set of settings and seeds, from a TOML file.

A sweep file names the command (``optimize``, ``linreg``, ``tsp``: a kind's command), the
settings every run shares (``[base]``), the axes to vary (``[axes]``, each a list of values)
and the seeds::

    command = "optimize"
    seeds = [0, 1, 2]
    mode = "one-at-a-time"            # or "grid": every combination of the axes

    [base]                            # settings: the flags of `opro optimize`, no dashes
    dataset = "bbh:navigate"
    steps = 20
    constrained = true
    max-calls = 5000                  # and the run options: caps, cache, no-cache

    [axes]
    order = ["ascending", "descending", "random"]
    exemplars = [0, 3, 10]

In the default ``one-at-a-time`` mode each axis is varied alone from the base (the paper's
ablations); a setting is a group of runs, one per seed, in ``OUT/AXIS/VALUE/seed-S``
(``OUT/grid/A=a,B=b/seed-S`` in grid mode). Every run's spec is built (and so checked)
before the first run starts — once the plan's size is counted from the file alone and found
under ``$OPRO_MAX_SWEEP_RUNS`` (10,000 by default): six axes of ten values in a grid are a
million runs, refused at once rather than built. Each run is an ordinary run directory, so a
sweep that stops part-way continues where it stopped when run again.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import JsonValue, ValidationError

from opro.errors import ConfigError
from opro.files import MB, read_bounded
from opro.llm.config import redact_url
from opro.llm.usage import Caps
from opro.problems.registry import Kind, kinds
from opro.problems.spec import RunSpec, build_spec, canonical_name, describe
from opro.progress import Progress
from opro.runlog import RunDir, cannot_write, write_json_atomic
from opro.runner import RunOptions

MODES = ("one-at-a-time", "grid")
RESERVED = ("seed", "out")
"""Settings the sweep sets itself, per run."""
CAPS = {"max_calls": "max_calls", "max_tokens_total": "max_tokens_total",
        "budget_usd": "budget_usd", "time_limit": "time_limit_s"}  # fmt: skip
CACHE = ("cache", "no_cache")
"""Run options a sweep file may set besides the spec's settings."""
MAX_RUNS_ENV = "OPRO_MAX_SWEEP_RUNS"
DEFAULT_MAX_RUNS = 10_000
"""A sweep's runs, at most (settings x seeds): far more than any ablation runs, far fewer
than it takes a file of a few lines to ask for (``ConfigError`` before any spec is built)."""

Mode = Literal["one-at-a-time", "grid"]
Value = str | int | float | bool | list[str]


@dataclass(frozen=True)
class Setting:
    """One combination of axis values; its runs differ only in the seed."""

    group: str
    """The axis varied (one-at-a-time) or ``grid``: the runs compared in one report."""
    label: str
    """e.g. ``order=ascending``."""
    slug: str
    """Its directory name."""
    flags: tuple[tuple[str, Value], ...]


@dataclass(frozen=True)
class PlannedRun:
    setting: Setting
    seed: int
    directory: Path
    spec: RunSpec
    caps: Caps
    cache: str | None
    use_cache: bool


@dataclass(frozen=True)
class SweepPlan:
    command: str
    base: tuple[tuple[str, Value], ...]
    axes: tuple[tuple[str, tuple[Value, ...]], ...]
    seeds: tuple[int, ...]
    mode: Mode = "one-at-a-time"

    def settings(self) -> list[Setting]:
        if self.mode == "grid":
            names = [name for name, _ in self.axes]
            settings = []
            for combo in itertools.product(*(enumerate(values) for _, values in self.axes)):
                pairs = tuple((n, v) for n, (_, v) in zip(names, combo, strict=True))
                label = ", ".join(_label(n, i, v) for n, (i, v) in zip(names, combo, strict=True))
                slug = ",".join(
                    f"{n}={i}-{_slug(v)}" for n, (i, v) in zip(names, combo, strict=True)
                )
                settings.append(Setting("grid", label, slug, pairs))
            return settings
        return [
            Setting(name, _label(name, i, value), f"{i}-{_slug(value)}", ((name, value),))
            for name, values in self.axes
            for i, value in enumerate(values)
        ]

    @property
    def kind(self) -> Kind[Any]:
        return next(k for k in kinds() if k.command == self.command)

    def runs(self, out: Path, where: str = "sweep") -> list[PlannedRun]:
        """Every run, its spec built and checked; a refused setting is one ``ConfigError``
        naming it."""
        check_size(self.mode, [len(values) for _, values in self.axes], len(self.seeds), where)
        spec_class = self.kind.spec
        planned = []
        for setting in self.settings():
            values = {canonical_name(spec_class, k): v for k, v in (*self.base, *setting.flags)}
            options: dict[str, Any] = {k: values.pop(k) for k in [*CAPS, *CACHE] if k in values}
            try:
                caps = Caps(**{CAPS[k]: v for k, v in options.items() if k in CAPS})
            except ValueError as exc:
                raise ConfigError(f"{where}: {setting.label}: {_reason(exc)}") from None
            for seed in self.seeds:
                try:
                    spec = build_spec(spec_class, values | {"seed": seed})
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {setting.label}: {exc}") from None
                directory = out / setting.group / setting.slug / f"seed-{seed}"
                cache = options.get("cache")
                use = not options.get("no_cache", False)
                run = PlannedRun(setting, seed, directory, spec, caps, cache, use)
                planned.append(run)
        return planned


def _reason(exc: ValueError) -> str:
    return describe(exc) if isinstance(exc, ValidationError) else str(exc)


def max_runs() -> int:
    """``$OPRO_MAX_SWEEP_RUNS`` (default ``DEFAULT_MAX_RUNS``)."""
    raw = os.environ.get(MAX_RUNS_ENV, "").strip()
    try:
        limit = int(raw) if raw else DEFAULT_MAX_RUNS
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(
            f"{MAX_RUNS_ENV}={raw!r} is not a number of runs: set e.g. {MAX_RUNS_ENV}=50000"
        )
    return limit


def check_size(mode: Mode, lengths: Sequence[int], seeds: int, where: str) -> None:
    """Refuse a plan of more runs than ``max_runs()``, counted before any is built:
    settings (the product of the axes' lengths in a grid, their sum one at a time) x seeds."""
    size = (math.prod(lengths) if mode == "grid" else sum(lengths)) * seeds
    limit = max_runs()
    if size > limit:
        shown = (" x " if mode == "grid" else " + ").join(map(str, lengths[:8]))
        shape = shown + (f" ... ({len(lengths)} axes)" if len(lengths) > 8 else "")
        raise ConfigError(
            f"{where}: the plan has {size:,} runs ({mode}: {shape} settings x {seeds} "
            f"seed{'s' if seeds != 1 else ''}), over the limit of {limit:,}: vary fewer axes "
            f"or values at once, or set {MAX_RUNS_ENV} to allow more"
        )


def load_sweep(path: Path) -> SweepPlan:
    """Read and check a sweep file; ``ConfigError`` names what to fix."""
    try:
        data = tomllib.loads(read_bounded(path, 4 * MB, "the sweep file").decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the sweep file {path}: {exc}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return plan_from_dict(data, str(path))


def plan_from_dict(data: Mapping[str, Any], where: str = "sweep") -> SweepPlan:
    unknown = set(data) - {"command", "seeds", "mode", "base", "axes"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}: "
            "use command, seeds, mode, [base] and [axes]"
        )
    command = data.get("command")
    commands = [kind.command for kind in kinds()]
    if command not in commands:
        raise ConfigError(f"{where}: command must be one of {', '.join(commands)}: {command!r}")
    mode = data.get("mode", "one-at-a-time")
    if mode not in MODES:
        raise ConfigError(f"{where}: mode must be one-at-a-time or grid: {mode!r}")
    seeds = data.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ConfigError(
            f"{where}: seeds must be a list of distinct integers >= 0, e.g. [0, 1, 2]"
        )
    base = _table(data.get("base", {}), f"{where}: [base]")
    axes_table = _table(data.get("axes", {}), f"{where}: [axes]")
    if not axes_table:
        raise ConfigError(
            f'{where}: [axes] is empty: add one, e.g. order = ["ascending", "random"]'
        )
    lists: dict[str, list[object]] = {}
    for name, values in axes_table.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: axis {name!r} must be a non-empty list of values")
        lists[name] = values
    check_size(mode, [len(values) for values in lists.values()], len(seeds), where)
    axes = []
    for name, values in lists.items():
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"{where}: axis {name!r} repeats a value")
        axes.append((name, tuple(_check_value(v, f"{where}: axis {name!r}") for v in values)))
    base_values = {name: _check_value(v, f"{where}: [base] {name}") for name, v in base.items()}
    return SweepPlan(
        command=str(command),
        base=tuple(base_values.items()),
        axes=tuple(axes),
        seeds=tuple(seeds),
        mode=mode,
    )


def _table(table: Any, where: str) -> dict[str, object]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of flag = value")
    for name in table:
        if name in RESERVED:
            raise ConfigError(f"{where}: {name!r} is set by the sweep per run: remove it")
        if name.startswith("-"):
            raise ConfigError(f"{where}: write flags without dashes: {name.lstrip('-')!r}")
    return dict(table)


def _check_value(value: object, where: str) -> Value:
    """``value``, if a sweep file may give it (a ``Value``)."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ConfigError(f"{where}: {value!r} is not a string, number, true/false or list of text")


def _label(name: str, index: int, value: Value) -> str:
    """``name=value``; a long value is cut, and then its index keeps the label unique."""
    if isinstance(value, bool):
        return f"{name}={str(value).lower()}"
    if not isinstance(value, str | list):
        return f"{name}={value}"
    text = repr(value)
    return f"{name}={text}" if len(text) <= 42 else f"{name}#{index}={text[:38]}...'"


def _slug(value: Value) -> str:
    text = " ".join(value) if isinstance(value, list) else str(value)
    slug = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or "empty"


class PlanJson(TypedDict):
    """A plan as sweep.json keeps it."""

    command: str
    mode: Mode
    seeds: list[int]
    base: dict[str, Value]
    axes: dict[str, list[Value]]


def plan_json(plan: SweepPlan) -> PlanJson:
    return {
        "command": plan.command,
        "mode": plan.mode,
        "seeds": list(plan.seeds),
        "base": {name: _shown(name, value) for name, value in dict(plan.base).items()},
        "axes": {name: [_shown(name, v) for v in values] for name, values in plan.axes},
    }


def _shown(name: str, value: Value) -> Value:
    """A setting as sweep.json keeps it: a base URL without its secrets."""
    if name.replace("-", "_").endswith("base_url") and isinstance(value, str):
        return redact_url(value)
    return value


def resume_options(directory: Path, spec: RunSpec, progress: Progress) -> RunOptions:
    """How to continue a run a sweep began (``spec``: the run's, from the sweep file): the
    code and the base URLs its spec names come from the sweep file the user gave, so they
    are trusted and given again — as long as the run dir names nothing else (an edited one
    is resumed only by hand)."""
    stored = RunDir(directory).config().spec
    urls = {role: c.base_url for role, c in spec.roles().items() if isinstance(c.base_url, str)}
    trusted = set(stored.imports()) <= set(spec.imports())
    return RunOptions(progress=progress, trust_code=trusted, base_urls=urls)


def claim(out: Path, plan: SweepPlan) -> None:
    """Make ``out`` this sweep's directory; refuse one that holds another sweep."""
    record = out / "sweep.json"
    if record.is_file():
        try:
            previous = json.loads(read_bounded(record, 64 * MB, "sweep.json")).get("plan")
        except (OSError, ValueError, AttributeError, RecursionError, ConfigError):
            previous = None
        if previous != plan_json(plan):
            raise ConfigError(
                f"{out} holds another sweep (its sweep.json differs): choose another `out`"
            )
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not a sweep directory: choose another `out`")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(out, exc) from None
    write_json_atomic(record, {"plan": plan_json(plan), "settings": []})


def finished(directory: Path) -> bool:
    """Whether the run (or job) in ``directory`` has finished."""
    summary = read_summary(directory)
    return summary is not None and summary.get("status") == "finished"


def read_summary(directory: Path) -> dict[str, JsonValue] | None:
    try:
        data = json.loads(read_bounded(directory / "summary.json", 64 * MB, "a summary"))
    except (OSError, ValueError, RecursionError, ConfigError):
        return None
    return data if isinstance(data, dict) else None
