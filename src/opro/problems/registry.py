"""The problem kinds: each kind is one module defining a ``Kind``, registered by one line
(an entry point of the ``opro.kinds`` group: opro's own in its pyproject.toml, a plugin's in
its own; see ``opro.plugins``). The runner, the report, the sweep and the CLI look a kind up
by its name; none of them branches on it.

A ``Kind`` declares its ``RunSpec`` subclass (with its paper defaults), how to finish a
spec once the models are known (``resolve``) and build its ``Problem`` (``build``): the
core. Its two facets are apart: ``cli`` (a ``KindCli``: flags and actions of its own) and
``report`` (a ``KindReport``: the numbers that sum a run up, what a report shows of it).
Kind modules are imported on first use.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import JsonValue, ValidationError

from opro.errors import ConfigError
from opro.history import Direction
from opro.llm.base import LLM
from opro.plugins import KIND_GROUP, entries, every, loaded
from opro.problems.base import Problem
from opro.problems.jobs import JobRecord, RunRecord
from opro.problems.records import RunSummary
from opro.problems.spec import RunSpec, describe
from opro.types import Api

SpecT = TypeVar("SpecT", bound=RunSpec)


@dataclass(frozen=True)
class Table:
    """A table of a report: strings, formatted by the kind; escaping is the template's."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    css: str = ""
    note: str = ""

    @property
    def numeric(self) -> tuple[bool, ...]:
        """Per column: whether every filled cell is a number (drawn right-aligned)."""
        return tuple(
            all(_is_number(row[i]) for row in self.rows if row[i] != "—")
            for i in range(len(self.headers))
        )


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Plot:
    """One figure of a report: a short name (for its file), a caption, its SVG."""

    name: str
    caption: str
    svg: bytes


class KindCli:
    """A kind's command-line facet: its flags beyond its spec's settings, an action of its
    own, and what a person reads at the end of a run."""

    help: ClassVar[str] = ""
    """Its command's one line in ``opro --help``."""
    examples: ClassVar[tuple[str, ...]] = ()
    """Runnable command lines shown under ``examples:`` in its command's ``--help``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Flags of its own beyond the spec's settings."""

    def settings_from(self, args: argparse.Namespace) -> dict[str, object]:
        """Settings from those flags (e.g. points read from ``--instance FILE``)."""
        return {}

    def action(self, args: argparse.Namespace) -> int | None:
        """Run an action of its own instead of a run (``opro tsp baselines``): its exit
        code, or None to run."""
        return None

    def describe(self, summary: RunSummary) -> list[str]:
        """What a person reads at the end of a run (``opro optimize`` prints it)."""
        best = summary.best
        if best is None:
            return ["nothing was scored"]
        return [f"best: {best.text} (score {best.score:.6g}, found at step {best.step})"]


class KindReport:
    """A kind's reading facet: the numbers a sweep compares, and what a report shows (its
    figures import matplotlib only when a report draws them)."""

    overlay_axis: ClassVar[str] = "best score so far"

    def headline(self, summary: RunSummary) -> dict[str, float | None]:
        """The numbers a sweep compares and averages over seeds."""
        return {"best_score": summary.best_score}

    def given_in_python(self, spec: RunSpec) -> list[str]:
        """The settings of ``spec`` given as values in Python that no command line can hold
        (data in memory): a report then says to rerun the run from its script."""
        return []

    def facts(self, job: JobRecord) -> list[tuple[str, str]]:
        return []

    def tables(self, job: JobRecord) -> list[Table]:
        return []

    def figures(self, job: JobRecord) -> list[Plot]:
        return []

    def overlay_curve(self, run: RunRecord) -> list[tuple[int, float]]:
        """A run's curve in an overlay of several runs (default: its best so far)."""
        return run.best_so_far()


class Kind(Generic[SpecT]):
    """One problem kind: its spec and how its problem is built (the core), with its
    command-line and report facets. Subclass it in the kind's module."""

    name: ClassVar[str]
    command: ClassVar[str]
    """Its ``opro`` command (``opro optimize``, ``opro tsp``)."""
    title: ClassVar[str]
    spec: type[SpecT]
    problem: ClassVar[type[Problem[Any]]]
    """What ``build`` returns: its ``direction`` is the kind's (declared once, there)."""
    cli: ClassVar[KindCli] = KindCli()
    report: ClassVar[KindReport] = KindReport()

    def direction_of(self, spec: SpecT) -> Direction:
        """Whether ``spec``'s runs maximise or minimise (its problem's, unless its spec says)."""
        return self.problem.direction

    def resolve(self, spec: SpecT, apis: Mapping[str, Api]) -> SpecT:
        """The spec with what depends on the models (``apis``: each role's prompt API) or
        must be computed once (an instance, its optimum) filled in; checked, before the run
        dir is written. Resolving a resolved spec changes nothing."""
        return spec

    def build(self, spec: SpecT, llms: Mapping[str, LLM]) -> Problem[Any]:
        raise NotImplementedError

    def expected_work(
        self, spec: SpecT, problem: Problem[Any], steps: int, fresh: bool
    ) -> str | None:
        """What ``steps`` more steps (and, ``fresh``, the start's scoring) will ask of the
        models, said before a run starts; None to say nothing (a short kind)."""
        return None

    def upgrade(self, params: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """A format-1 run dir's problem parameters as this spec's fields (renamed, dropped)."""
        return params


def kind_names() -> list[str]:
    """The registered kinds' names, sorted; no kind's module is imported."""
    return list(entries(KIND_GROUP))


def kind_of(name: str) -> Kind[Any]:
    """The kind called ``name``; a ``ConfigError`` with a "did you mean" otherwise."""
    found = entries(KIND_GROUP)
    if name not in found:
        close = difflib.get_close_matches(str(name), list(found), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown problem kind {name!r}{hint}: kinds are {', '.join(found)}")
    return loaded(found[name], Kind, "name")


def kinds() -> list[Kind[Any]]:
    """Every registered kind that loads (a plugin's that does not is left out, said once)."""
    return list(every(KIND_GROUP, Kind, "name").values())


def parse_spec(data: Any, where: str = "spec") -> RunSpec:
    """A spec from its JSON form, its class chosen by its ``kind``."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        raise ConfigError(f"{where}: no problem kind: not an opro run spec")
    spec_class: type[RunSpec] = kind_of(kind).spec
    try:
        return spec_class.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe(exc, spec_class)}") from None
