"""What opro finds by name: the problem kinds (entry-point group ``opro.kinds``: a name → its
``Kind``) and the LLM backends (``opro.backends``: a prefix → its ``BackendInfo``), read from
the installed distributions' entry points. opro declares its own in its pyproject.toml, and
a plugin (another distribution) its own the same way::

    [project.entry-points."opro.kinds"]
    guess = "opro_guess:KIND"

Names are read once per process; an object is imported when its name is first used. A
plugin that does not load is one line naming its distribution and the fix; a name that two
distributions register is refused until one is uninstalled.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, TypeVar

from opro.errors import ConfigError

KIND_GROUP = "opro.kinds"
BACKEND_GROUP = "opro.backends"
OWN = "opro"
"""The distribution whose entry points are the built-ins."""
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One registered name: where its object is (``module:attribute``) and who declared it."""

    group: str
    name: str
    target: str
    dist: str
    version: str = ""
    others: tuple[str, ...] = ()
    """Other distributions registering the same name: then none of them is loaded."""

    def load(self) -> Any:
        """The object named; a one-line ``ConfigError`` where a plugin's does not import (an
        error of opro's own is a bug, and keeps its traceback)."""
        if self.others:
            raise ConfigError(
                f"the {self.what} is registered by {' and '.join((self.dist, *self.others))}: "
                "uninstall all but one (pip uninstall NAME)"
            )
        module, _, attribute = self.target.partition(":")
        try:
            found: Any = importlib.import_module(module)
            for part in filter(None, attribute.split(".")):
                found = getattr(found, part)
        except Exception as exc:
            if self.dist == OWN:
                raise
            raise self.broken(f"{type(exc).__name__}: {exc}") from exc
        return found

    @property
    def what(self) -> str:
        return f"{'problem kind' if self.group == KIND_GROUP else 'backend'} {self.name!r}"

    def broken(self, why: str) -> ConfigError:
        return ConfigError(
            f"the {self.what} of the plugin {self.dist} {self.version} cannot be loaded "
            f"({' '.join(why.split())}; entry point {self.target}): upgrade or reinstall it "
            f"(pip install --force-reinstall {self.dist}) or uninstall it (pip uninstall "
            f"{self.dist})"
        )


@functools.cache
def entries(group: str) -> dict[str, Entry]:
    """The names registered in ``group``, sorted; nothing imported. None of opro's own
    (metadata older than its source) is a one-line error naming the reinstall."""
    found: dict[str, Entry] = {}
    points: Iterable[metadata.EntryPoint] = _points().select(group=group)
    for point in points:
        dist, version = (point.dist.name, point.dist.version) if point.dist else ("?", "")
        seen = found.get(point.name)
        if seen is not None:
            found[point.name] = replace(seen, others=(*seen.others, dist))
        else:
            found[point.name] = Entry(group, point.name, point.value, dist, version)
    if not any(e.dist == OWN for e in found.values()):
        raise ConfigError(
            f"opro's installed metadata registers none of its {group} (an install older "
            "than its source): reinstall opro (`make install` in a checkout, or pip "
            "install -e .)"
        )
    return dict(sorted(found.items()))


def loaded(entry: Entry, cls: type[T], key: str) -> T:
    """The ``cls`` instance ``entry`` names, whose ``key`` attribute is its name."""
    found = _imported(entry)
    if not isinstance(found, cls) or getattr(found, key) != entry.name:
        raise entry.broken(f"{found!r} is not a {cls.__name__} with the {key} {entry.name!r}")
    return found


@functools.cache
def _imported(entry: Entry) -> Any:
    return entry.load()


def every(group: str, cls: type[T], key: str) -> dict[str, T]:
    """Every registered object of ``group`` that loads; a plugin's that does not is left
    out, and said once (a warning)."""
    found = {}
    for name, entry in entries(group).items():
        try:
            found[name] = loaded(entry, cls, key)
        except ConfigError as exc:
            _left_out(str(exc))
    return found


@functools.cache
def _left_out(message: str) -> None:
    log.warning("opro: %s; left out until then", message)


@functools.cache
def _points() -> Any:  # EntryPoints; SelectableGroups before Python 3.12
    return metadata.entry_points()  # every group at once: one read of each distribution


def refresh() -> None:
    """Read the entry points again (a distribution was installed or put on ``sys.path``)."""
    importlib.invalidate_caches()
    _points.cache_clear()
    entries.cache_clear()
