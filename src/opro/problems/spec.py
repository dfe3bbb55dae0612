"""What defines a run: ``RunSpec``, one validated, frozen value per problem kind, that *is*
the ``spec`` of a run dir's config.json; and ``EngineSpec``, the OPRO loop's knobs.

Each kind subclasses ``RunSpec`` (its ``kind`` literal, its fields) and ``EngineSpec`` (its
paper defaults), so every default lives once, in its kind's classes. The same value is
built by the Python API (nested, ``TspSpec(nodes=8, engine={"steps": 20})``), by the CLI
and by sweep files (flat names: ``settings_of`` maps ``top_k`` → ``engine.top_k``,
``scorer_base_url`` → ``scorer.base_url``; ``build_spec`` assembles and validates). A
validation error names the flat setting; the CLI turns it into its flag.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue

from opro.errors import ConfigError, shown, unknown_setting
from opro.history import Order
from opro.llm.config import REDACTED, LLMConfig, redact_url
from opro.llm.registry import backend_info

ScoreDisplay = Literal["int", "buckets20", "raw", "short", "none"]
MAX_SAMPLES = 1000
"""Samples a step may draw at once (the paper: 8): each is a request built up front."""
MAX_REPS = 1000
"""Repetitions of a job: each is a run dir made up front."""
MAX_SEED = 2**31 - 1
"""numpy's legacy generator (the authors' data splits) takes seeds below 2**32; a job's
repetitions add up to ``MAX_REPS`` to it."""
SpecT = TypeVar("SpecT", bound="RunSpec")


class _Frozen(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )

    @model_validator(mode="before")
    @classmethod
    def _known_settings(cls, data: Any) -> Any:
        """A name that is not a setting is a one-line error with a "did you mean"."""
        if isinstance(data, dict):
            for name, value in data.items():
                if name not in cls.model_fields:
                    raise cls._unknown(str(name), value)
        return data

    @classmethod
    def _unknown(cls, name: str, value: Any) -> ConfigError:
        return unknown_setting(cls.__name__, name, cls.model_fields)


class EngineSpec(_Frozen):
    """The OPRO loop (OPRO_SPEC §1) and the paper's ablation knobs."""

    steps: int = Field(500, ge=1, description="optimization steps")
    samples_per_step: int = Field(8, ge=1, le=MAX_SAMPLES, description="optimizer samples per step")
    max_attempts_per_step: int | None = Field(
        None,
        ge=1,
        le=10 * MAX_SAMPLES,
        description="samples drawn at most per step to collect N valid new solutions "
        "(default: one round of N)",
    )
    temperature: float = Field(1.0, ge=0, le=2, description="sampling temperature")
    temperature_end: float | None = Field(
        None, ge=0, le=2, description="move the temperature linearly to this by the last step"
    )
    top_k: int = Field(20, ge=1, description="best solutions shown in the meta-prompt")
    order: Order = Field(
        "ascending", description="ascending = worst to best, best last (as the paper)"
    )
    score_display: ScoreDisplay = Field("int", description="how scores are shown")
    score_threshold: float | None = Field(
        None,
        description="show only solutions scoring at least this (the authors' "
        "old_instruction_score_threshold, on the 0-100 scale; off as in the paper's runs)",
    )
    patience: int | None = Field(None, ge=1, description="stop after K steps without improvement")
    max_tokens: int | None = Field(
        None, ge=1, description="tokens per optimizer sample (default 256)"
    )
    constrained: bool = Field(
        False,
        description="constrain proposals with the problem's GBNF grammar (embedded models, "
        "llama.cpp servers)",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="run seed")

    ALIASES: ClassVar[Mapping[str, str]] = {"candidates_per_step": "samples_per_step"}
    GRAMMAR: ClassVar[bool] = True
    """Whether the kind's proposals have a grammar (``constrained`` applies)."""

    @classmethod
    def _unknown(cls, name: str, value: Any) -> ConfigError:
        if name in cls.ALIASES:  # the CLI's other name of a setting
            return ConfigError(
                f"unknown setting {name!r} of {cls.__name__}: it is {cls.ALIASES[name]!r} here"
            )
        return super()._unknown(name, value)

    @model_validator(mode="after")
    def _attempts_cover_samples(self) -> EngineSpec:
        attempts = self.max_attempts_per_step
        if attempts is not None and attempts < self.samples_per_step:
            raise ValueError("max_attempts_per_step must be >= samples_per_step")
        return self

    @property
    def tokens(self) -> int:
        """Tokens per optimizer sample (``max_tokens``, else 256)."""
        return self.max_tokens or 256

    def temperature_at(self, step: int) -> float:
        if self.temperature_end is None or self.steps <= 1:
            return self.temperature
        fraction = (step - 1) / (self.steps - 1)
        return self.temperature + (self.temperature_end - self.temperature) * fraction


def _kind_named(schema: JsonSchemaValue, cls: type[Any]) -> None:
    """Schema: a spec's kind is required (it tells specs apart); narrowed fields keep meanings."""
    schema["required"] = ["kind", *(r for r in schema.get("required", []) if r != "kind")]
    for name in ("kind", "engine"):
        schema["properties"][name].setdefault("description", RunSpec.model_fields[name].description)


class RunSpec(_Frozen):
    """Everything a run needs to start or resume. Subclassed once per kind."""

    model_config = _Frozen.model_config | ConfigDict(json_schema_extra=_kind_named)

    kind: str
    """the problem kind (linreg, tsp, instructions, objective): which spec this is"""
    optimizer: LLMConfig = Field(LLMConfig(), description="the optimizer's model")
    engine: EngineSpec = EngineSpec()
    """the OPRO loop's knobs"""
    reps: int = Field(
        1, ge=1, le=MAX_REPS, description="independent repetitions (seeds seed, seed+1, ...)"
    )

    RESOLVED: ClassVar[frozenset[str]] = frozenset()
    """Fields the kind fills in before the run starts (not user settings)."""

    @classmethod
    def _unknown(cls, name: str, value: Any) -> ConfigError:
        """A loop setting given beside the spec's own names its place: ``engine=``."""
        engine = cls.model_fields["engine"].annotation
        if isinstance(engine, type) and issubclass(engine, EngineSpec):
            setting = engine.ALIASES.get(name, name)
            if setting in engine.model_fields:
                return ConfigError(
                    f"unknown setting {name!r} of {cls.__name__}: it is a loop setting, pass "
                    f"engine={engine.__name__}({setting}={value!r})"
                )
        return super()._unknown(name, value)

    def roles(self) -> dict[str, LLMConfig]:
        """Each LLM role of the run (``optimizer``, ``scorer``...) and its model."""
        return {name: value for name, value in self if isinstance(value, LLMConfig)}

    def imports(self) -> tuple[str, ...]:
        """The Python code this spec makes a run import (a ``fake:MODULE:FUNCTION`` model; a
        kind adds its own, as a metric's ``module:function``), which ``opro resume`` of an
        untrusted run dir must not import unasked. ``fake:echo`` imports nothing."""
        return tuple(
            config.spec
            for config in self.roles().values()
            if backend_info(config.backend).code_in_name and ":" in config.spec.partition(":")[2]
        )

    def redacted(self: SpecT) -> SpecT:
        """This spec with the secrets of its base URLs replaced by ``***``: what a run dir
        keeps (``opro.llm.config.redact_url``)."""
        roles = {name: config.redacted() for name, config in self.roles().items()}
        return self.model_copy(update=roles)

    def with_base_urls(self: SpecT, urls: Mapping[str, str], where: str) -> SpecT:
        """This spec, read from a run dir, with the base URLs a run dir keeps redacted given
        again (``urls``: role → URL); a one-line error for one that is still missing or
        that names another server than the stored one."""
        roles = self.roles()
        update: dict[str, LLMConfig] = {}
        for role, url in urls.items():
            if role not in roles:
                raise ConfigError(
                    f"`base_urls` {role}=...: the run has no role {role!r} (its roles: "
                    f"{', '.join(roles)})"
                )
            stored = roles[role].base_url
            if not isinstance(stored, str) or redact_url(url) != stored:
                raise ConfigError(
                    f"`base_urls` {role}=... is not the run's {role} URL ({stored}): give that "
                    "very URL (a resume continues with the same server)"
                )
            update[role] = roles[role].model_copy(update={"base_url": url})
        for role, config in roles.items():
            kept = config.base_url if isinstance(config.base_url, tuple) else (config.base_url,)
            if role not in update and any(url and REDACTED in url for url in kept):
                raise ConfigError(
                    f"{where} keeps the {role}'s base URL without its secret "
                    f"({config.base_url}): give it again, `base_urls` {role}=URL (or move "
                    f"the key into an environment variable: {role}_api_key_env)"
                )
        return self.model_copy(update=update) if update else self

    def with_seed(self: SpecT, seed: int) -> SpecT:
        """The same spec with another engine seed (one repetition of a job)."""
        engine = self.engine.model_copy(update={"seed": seed})
        return self.model_copy(update={"engine": engine, "reps": 1})


def function_path(value: Any, what: str) -> Any:
    """A function given itself (a metric, an objective) as its import path ``module:name``,
    which config.json records so that resume and report find it again (a notebook's own
    functions are ``__main__:name``, found again in the same kernel); anything else as is."""
    if not callable(value):
        return value
    if not inspect.isfunction(value):  # a callable object, a partial, a builtin
        raise ConfigError(
            f"{what} {value!r} is not a function: give a function defined at the top "
            "level of a module or notebook, or its path 'module:function'"
        )
    module, name = value.__module__, value.__qualname__
    found = getattr(sys.modules.get(module), name, None) if name.isidentifier() else None
    if found is not value:
        raise ConfigError(
            f"{what} {value!r} cannot be found again by its name (a lambda, a function "
            "defined inside another, or code run with no module of its own): define it at "
            "the top level of a module or notebook"
        )
    return f"{module}:{name}"


# -- flat settings ----------------------------------------------------------------------


def settings_of(spec_class: type[RunSpec]) -> dict[str, tuple[str, ...]]:
    """Every flat setting of a kind (a CLI flag without dashes, a sweep key) → its path in
    the spec: the kind's own fields, the engine's, and per role ``ROLE`` (the model spec)
    and ``ROLE_FIELD`` (``scorer_base_url``)."""
    found: dict[str, tuple[str, ...]] = {}
    for name, field in spec_class.model_fields.items():
        kind_of = _unwrap(field.annotation)
        if name == "kind" or name in spec_class.RESOLVED:
            continue
        if kind_of is LLMConfig:
            found[name] = (name, "spec")
            found |= {
                f"{name}_{sub}": (name, sub) for sub in LLMConfig.model_fields if sub != "spec"
            }
        elif isinstance(kind_of, type) and issubclass(kind_of, EngineSpec):
            found |= {sub: ("engine", sub) for sub in kind_of.model_fields}
        else:
            found[name] = (name,)
    return found


def flag_of(name: str) -> str:
    """A setting's command-line flag: ``top_k`` → ``--top-k``, ``scorer_timeout_s`` →
    ``--scorer-timeout``."""
    return "--" + name.removesuffix("_s").replace("_", "-")


def value_at(spec: BaseModel, path: tuple[str, ...]) -> Any:
    """The setting at ``path`` in ``spec`` (None inside an absent optional part)."""
    value: Any = spec
    for part in path:
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X`` (an optional role, ``judge: LLMConfig | None``)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return args[0] if is_union and len(args) == 1 else annotation


def _field(spec_class: type[RunSpec], path: tuple[str, ...]) -> FieldInfo:
    model: type[BaseModel] = spec_class
    for part in path[:-1]:
        annotation = _unwrap(model.model_fields[part].annotation)
        assert isinstance(annotation, type)
        assert issubclass(annotation, BaseModel)
        model = annotation
    return model.model_fields[path[-1]]


def default_at(spec_class: type[RunSpec], path: tuple[str, ...]) -> Any:
    """The default of the setting at ``path`` (``...`` where it has none; None inside an
    optional part that is absent by default, e.g. the judge's model)."""
    if len(path) > 1 and spec_class.model_fields[path[0]].default is None:
        return None
    info = _field(spec_class, path)
    if info.is_required():
        return ...
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def _aliases(spec_class: type[RunSpec]) -> Mapping[str, str]:
    engine = spec_class.model_fields["engine"].annotation
    return engine.ALIASES if isinstance(engine, type) and issubclass(engine, EngineSpec) else {}


def canonical_name(spec_class: type[RunSpec], name: str) -> str:
    """``candidates-per-step`` → ``samples_per_step``: dashes, and the engine's aliases."""
    name = name.replace("-", "_")
    return _aliases(spec_class).get(name, name)


def build_spec(
    spec_class: type[SpecT], values: Mapping[str, Any], base: SpecT | None = None
) -> SpecT:
    """The spec of ``spec_class`` with the flat settings ``values`` set (over ``base``, or
    the kind's defaults); a ``ConfigError`` names an unknown or invalid setting."""
    known = settings_of(spec_class)
    nested: dict[str, Any] = base.model_dump() if base is not None else {}
    for raw, value in values.items():
        name = canonical_name(spec_class, raw)
        if name not in known:
            raise ConfigError(
                f": not a setting of {spec_class.model_fields['kind'].default!r} runs "
                f"(settings: {', '.join(sorted(known))})",
                setting=raw,
            )
        path = known[name]
        if isinstance(value, str) and _field(spec_class, path).annotation == tuple[str, ...]:
            value = (value,)  # one value of a repeatable setting (``initial = ""``)
        target = nested
        for part in path[:-1]:
            current = target.get(part)
            if isinstance(current, BaseModel):
                current = current.model_dump()
            target[part] = dict(current or {})
            target = target[part]
        target[path[-1]] = value
    return validate_spec(spec_class, nested)


def validate_spec(spec_class: type[SpecT], data: Any) -> SpecT:
    """``spec_class.model_validate(data)`` with a one-line ``ConfigError`` naming the flat
    setting at fault."""
    try:
        return spec_class.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, spec_class) from None


def invalid(exc: ValidationError, spec_class: type[RunSpec] | None = None) -> ConfigError:
    """The first problem of a validation error as a ``ConfigError`` about the flat setting
    at fault, where there is one: ``setting must be >= 1 (got 0)``, ``setting: what is
    wrong (got X)``."""
    first = exc.errors()[0]
    loc = tuple(str(p) for p in first["loc"])
    name = ".".join(loc)
    if spec_class is not None:
        by_path = {path: flat for flat, path in settings_of(spec_class).items()}
        name = by_path.get(loc, name)
    given = first.get("input")
    got = "" if isinstance(given, dict) or given is None else f" (got {shown(given)})"
    phrase = _PHRASES.get(first["type"])
    if phrase is not None and name:
        return ConfigError(f"{phrase.format(**first.get('ctx', {}))}{got}", setting=name)
    message = str(first["msg"]).removeprefix("Value error, ")
    return ConfigError(f": {message}{got}", setting=name) if name else ConfigError(message + got)


def describe(exc: ValidationError, spec_class: type[RunSpec] | None = None) -> str:
    """``invalid``'s message, the setting by its name."""
    return str(invalid(exc, spec_class))


_PHRASES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "literal_error": "must be {expected}",
    "missing": "is required",
    "extra_forbidden": "is not a setting",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
}
"""Pydantic's error types, as a sentence about the setting."""
