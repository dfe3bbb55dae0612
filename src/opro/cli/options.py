"""Flags ↔ settings: every flag of a run command is generated from its kind's spec, so a
default and a help text live once, in the spec; the values given on the command line (and
only those) become the flat settings that ``build_spec`` validates. Here too: the caps and
cache flags (``RunOptions``), and turning a setting's name in an error into its flag.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Required, TypedDict

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from opro.errors import ConfigError
from opro.llm.config import LLMConfig
from opro.llm.usage import Caps, Price
from opro.problems.registry import kinds
from opro.problems.spec import (
    EngineSpec,
    RunSpec,
    SpecT,
    build_spec,
    default_at,
    invalid,
    settings_of,
)
from opro.problems.spec import flag_of as flag

CAPS = ("max_calls", "max_tokens_total", "budget_usd", "time_limit_s")
CACHE = ("cache", "no_cache")


def flagged(message: str, names: Iterable[str]) -> str:
    """``message`` with a leading setting name (``top_k must be...``, ``top_k: ...``) shown
    as its flag."""
    head = re.match(r"[A-Za-z_][A-Za-z0-9_]*", message)
    if head is None or head.group() not in set(names):
        return message
    return flag(head.group()) + message[head.end() :]


OTHER_FLAGS = {
    # What the library's errors name besides a spec's settings and the caps: RunOptions',
    # the executors' and the report's fields, shown in `backticks`, as the CLI spells them.
    "out": "--out",
    "cache": "--cache",
    "use_cache=False": "--no-cache",
    "trust_code": "--trust-code",
    "allow_overlap": "--allow-overlap",
    "labels": "--label",
    "parallel": "--parallel",
    "executor='ray'": "--executor ray",
    "address": "--address",
    "cpus": "--task-cpus",
    "gpus": "--task-gpus",
    "resources": "--task-resource",
    "retries": "--task-retries",
    "source": "--source",
    "base_urls": "--base-url",
    "mlflow": "--mlflow",
    "max_retries": "--max-retries",  # opro complete's; a run's roles have their own
    "n_ctx": "--n-ctx (a run's: --scorer-n-ctx, --optimizer-n-ctx, --judge-n-ctx)",
}


def with_flags(message: str, anywhere: bool = True) -> str:
    """An error's message with every setting named in it shown as its flag: any named in
    backticks (```metric```, ```use_cache=False```), and with ``anywhere`` a leading one
    (``steps must be...``) and any of two words or more (``set scorer_price``)."""
    names = {name for kind in kinds() for name in settings_of(kind.spec)} | set(CAPS)
    known = {name: flag(name) for name in names} | OTHER_FLAGS
    message = re.sub(r"`([^`\s]+)`", lambda m: known.get(m.group(1), m.group(0)), message)
    if not anywhere:
        return message
    message = flagged(message, names)
    spaced = sorted((n for n in names if "_" in n), key=len, reverse=True)
    if not spaced:
        return message
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, spaced)) + r")(?![\w])")
    return pattern.sub(lambda m: flag(m.group(1)), message)


def path_arg(text: str) -> Path:
    """A path flag's value: an empty one is refused (``Path("")`` is the current folder, where
    a run would write its files among the user's)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name a file or folder")
    return Path(text)


def uri_arg(text: str) -> str:
    """A URI flag's value (``--mlflow``): a control character (a newline...) is refused
    before the run, in one line that shows no credential of it."""
    bad = next((c for c in text if not c.isprintable()), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"a URI holding a control character ({bad!a}): give it on one line"
        )
    return text


def _price(text: str) -> tuple[float, float]:
    try:
        price = Price.parse(text)
    except ConfigError as exc:  # argparse reports it as a bad value of the flag
        raise argparse.ArgumentTypeError(str(exc)) from None
    return price.input_per_mtok, price.output_per_mtok


class _Keywords(TypedDict, total=False):
    """``add_argument``'s keywords, as ``_argument`` gives them."""

    dest: Required[str]
    default: Required[object]
    required: bool
    help: str
    action: str | type[argparse.Action]
    choices: list[object]
    type: Callable[[str], object]
    metavar: str


def _argument(name: str, info: FieldInfo, default: Any) -> _Keywords | None:
    """argparse keywords for one setting, or None for a setting with no flag (points)."""
    kind = info.annotation
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        # one value or several (``str | tuple[str, ...]``, a role's base URLs): a repeated flag
        kind = tuple[str, ...] if tuple[str, ...] in options else options[0]
    hidden = default is None or default is ... or default in ((), "")
    shown = "" if hidden else f" (default {_shown(default)})"
    keywords: _Keywords = {"dest": name, "default": argparse.SUPPRESS}
    if info.is_required():
        keywords["required"] = True
    keywords["help"] = (info.description or name.replace("_", " ")) + shown
    if kind is bool:
        keywords["action"] = argparse.BooleanOptionalAction if default else "store_true"
    elif typing.get_origin(kind) is Literal:
        keywords["choices"] = list(typing.get_args(kind))
    elif kind is int:
        keywords |= {"type": int, "metavar": "N"}
    elif kind is float:
        keywords |= {"type": float, "metavar": "X"}
    elif kind is str:
        keywords |= {"type": str, "metavar": "TEXT"}
    elif kind == tuple[str, ...]:
        keywords |= {"action": "append", "metavar": "TEXT", "help": keywords["help"] + "; repeat"}
    elif kind == tuple[float, float]:
        keywords |= {"type": _price, "metavar": "IN,OUT"}
    else:
        return None
    return keywords


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(repr(v) for v in value)
    return str(value)


def add_spec_arguments(
    parser: argparse.ArgumentParser,
    spec_class: type[RunSpec],
    *,
    only: Callable[[str], bool] = lambda name: True,
    required: bool = True,
) -> None:
    """One flag per flat setting of ``spec_class`` (filtered by ``only``), in groups: the
    kind's own, each role's model, the OPRO loop; ``required=False``: none is required
    (the command checks what it needs)."""
    fields = spec_class.model_fields
    engine_class = fields["engine"].annotation
    assert isinstance(engine_class, type)
    assert issubclass(engine_class, EngineSpec)
    groups: dict[str, argparse._ArgumentGroup] = {}
    loop = "OPRO loop (the paper's ablation knobs)"

    def group(name: str) -> argparse._ArgumentGroup:
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        return groups[name]

    group("task")  # first in --help
    for name, path in settings_of(spec_class).items():
        if not only(name):
            continue
        default = default_at(spec_class, path)
        if path[0] == "engine":
            info, where = engine_class.model_fields[name], loop
        elif path[0] in spec_class.model_fields and len(path) == 2:  # a role's model
            info, where = LLMConfig.model_fields[path[1]], f"{path[0]} LLM"
        else:
            info, where = fields[name], loop if name == "reps" else "task"
        keywords = _argument(name, info, default)
        if keywords is None:
            continue
        if not required:
            keywords.pop("required", None)
        flags = [flag(name)]
        flags += [flag(alias) for alias, to in engine_class.ALIASES.items() if to == name]
        group(where).add_argument(*flags, **keywords)


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """One model's flags, unprefixed (``--model``, ``--base-url``...), for ``opro complete``."""
    group = parser.add_argument_group("model LLM")
    for name, info in LLMConfig.model_fields.items():
        setting = "model" if name == "spec" else name
        keywords = _argument(setting, info, None if name == "spec" else info.default)
        assert keywords is not None
        if name == "spec":
            keywords["required"] = True
        group.add_argument(flag(setting), **keywords)


def llm_from(args: argparse.Namespace) -> LLMConfig:
    """The model of ``add_llm_arguments``' flags."""
    values = {}
    for name in LLMConfig.model_fields:
        setting = "model" if name == "spec" else name
        if hasattr(args, setting):
            values[name] = getattr(args, setting)
    try:
        return LLMConfig.model_validate(values)
    except ValidationError as exc:
        error = invalid(exc)
        named = "model" if error.setting == "spec" else error.setting  # its flag: --model
        raise ConfigError(error.problem, setting=named, fix=error.fix) from None


def given(args: argparse.Namespace, spec_class: type[RunSpec]) -> dict[str, object]:
    """The settings given on the command line (flags left out keep the spec's default)."""
    names = settings_of(spec_class)
    return {name: value for name, value in vars(args).items() if name in names}


def spec_from(spec_class: type[SpecT], values: Mapping[str, object]) -> SpecT:
    """``build_spec``: an error about a setting is shown with its flag by the CLI; another
    that starts with a setting's name, here (a kind's own check)."""
    try:
        return build_spec(spec_class, values)
    except ConfigError as exc:
        if exc.setting is not None:
            raise
        raise ConfigError(flagged(str(exc), settings_of(spec_class))) from None


# -- run options -------------------------------------------------------------------------


def add_caps_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("budget (a run stops cleanly at the first cap reached)")
    group.add_argument("--max-calls", type=int, metavar="N", help="LLM calls that reach a backend")
    group.add_argument(
        "--max-tokens-total", type=int, metavar="N", help="prompt + completion tokens"
    )
    group.add_argument("--budget-usd", type=float, metavar="USD", help="dollars, at known prices")
    group.add_argument(
        "--time-limit", dest="time_limit_s", type=float, metavar="S", help="wall-clock seconds"
    )


def caps_from(args: argparse.Namespace) -> Caps | None:
    """The caps given (None when none is)."""
    values = {name: getattr(args, name, None) for name in CAPS}
    if all(v is None for v in values.values()):
        return None
    try:
        return Caps(**values)
    except ValidationError as exc:
        raise invalid(exc) from None


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("call cache")
    group.add_argument(
        "--cache",
        type=path_arg,
        metavar="PATH",
        help="SQLite file of cached calls (default $OPRO_CACHE_DIR/calls.sqlite "
        "or the user cache dir)",
    )
    group.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
