"""What opro is made of that it finds by name: problem kinds and LLM backends, read from the
entry points of the installed distributions (``importlib.metadata``), opro's own included.

Two groups: ``opro.kinds`` (a kind's name → its ``Kind``) and ``opro.backends`` (a prefix →
its ``BackendInfo``). opro declares its built-ins in its pyproject.toml; a plugin, another
distribution, declares its own the same way and is found, listed and loaded as they are::

    [project.entry-points."opro.kinds"]
    guess = "opro_guess:KIND"

Names are read once per process and nothing is imported until a name is used
(``Entry.load``). A plugin that fails to load is one line naming its distribution and the
fix; a name two distributions register is refused until one is uninstalled.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

from opro.errors import ConfigError

OWN = "opro"
"""The distribution whose entry points are the built-ins."""


@dataclass(frozen=True)
class Entry:
    """One registered name: where its object is (``module:attribute``) and who declared it."""

    group: str
    name: str
    target: str
    dist: str
    """The distribution declaring it (``opro`` for a built-in)."""
    version: str = ""
    others: tuple[str, ...] = ()
    """Other distributions declaring the same name: then none of them is loaded."""

    @property
    def what(self) -> str:
        return f"{'problem kind' if self.group == KINDS else 'backend'} {self.name!r}"

    def load(self) -> Any:
        """The object named; a one-line ``ConfigError`` where a plugin's does not load (an
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

    def broken(self, why: str) -> ConfigError:
        """The error for this plugin's entry point that does not give what it should."""
        return ConfigError(
            f"the {self.what} of the plugin {self.dist} {self.version} cannot be loaded "
            f"({' '.join(why.split())}; entry point {self.target}): upgrade or reinstall it "
            f"(pip install --force-reinstall {self.dist}) or uninstall it (pip uninstall "
            f"{self.dist})"
        )


KINDS = "opro.kinds"
BACKENDS = "opro.backends"


@functools.cache
def entries(group: str) -> dict[str, Entry]:
    """The names registered in ``group``, sorted; nothing imported. opro's own missing
    (metadata older than its source) is a one-line error naming the reinstall."""
    found: dict[str, Entry] = {}
    for point in metadata.entry_points(group=group):
        dist = point.dist.name if point.dist is not None else "an unnamed distribution"
        version = point.dist.version if point.dist is not None else ""
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


def refresh() -> None:
    """Read the entry points again (a distribution was installed or put on ``sys.path``)."""
    importlib.invalidate_caches()
    entries.cache_clear()
