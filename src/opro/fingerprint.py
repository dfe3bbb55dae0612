"""The fingerprint of the spec a run's steps were scored under, and what changed since.

Every step record carries ``spec_sha256``: the sha256 of the canonical JSON (sorted keys,
no spaces) of config.json's ``spec`` as written when the step was recorded; step 0 also
keeps that spec itself. A resume (or a report) whose config.json no longer has that
fingerprint — a config.json copied in from another run — is refused, naming the settings
that differ. What a resume may change lives outside the spec (the caps, beside it in
config.json) or is never written (the secrets of a base URL given again with
``--base-url``), so it never changes the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from opro.errors import clip

SHOWN = 60
"""Characters of a value shown in a refusal."""


def canonical(data: Any) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def fingerprint(spec: Mapping[str, Any]) -> str:
    """The sha256 (hex) of ``spec``'s canonical JSON."""
    return hashlib.sha256(canonical(dict(spec))).hexdigest()


def _leaves(data: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """``{"engine": {"steps": 3}}`` → ``{("engine", "steps"): 3}`` (a list is one value)."""
    if not isinstance(data, Mapping) or (prefix and not data):
        return {prefix: data}
    found: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        found |= _leaves(value, (*prefix, str(key)))
    return found


_ABSENT = object()


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(not set)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return clip(text, SHOWN)


def mismatch(
    now: Mapping[str, Any],
    then: Mapping[str, Any] | None,
    names: Mapping[tuple[str, ...], str] | None = None,
) -> str:
    """What changed, in a few words: ``"`name`: NOW, the steps were scored under THEN"`` for
    the first setting that differs, and the names of the others (``then``: the spec the
    steps kept, None when they kept none; ``names``: a setting's name by its path in the
    spec, else its dotted path)."""
    if then is None:
        return "its spec is not the one the steps were scored under"
    new, old = _leaves(now), _leaves(then)
    paths = [p for p in [*new, *(p for p in old if p not in new)]
             if new.get(p, _ABSENT) != old.get(p, _ABSENT)]  # fmt: skip
    if not paths:  # equal values that are not equal JSON (1 and 1.0)
        return "its spec is written differently from the one the steps were scored under"
    named = [f"`{(names or {}).get(path, '.'.join(path))}`" for path in paths]
    first = paths[0]
    text = (
        f"{named[0]}: {_shown(new.get(first, _ABSENT))}, the steps were scored under "
        f"{_shown(old.get(first, _ABSENT))}"
    )
    others = named[1:]
    if others:
        listed = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if others[4:] else "")
        text += f" (also changed: {listed})"
    return text
