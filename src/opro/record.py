"""A run dir's records (a step, a summary, a config...) are pydantic dataclasses with this
config: frozen, closed (a key the record does not know is an error, not ignored), each field
documented by the docstring under it. One adapter per class writes and reads them
(``JsonRecord``), and the run-dir JSON Schemas are generated from the same classes
(``json_schema``; scripts/run_dir_schema.py): the code, the files and their reference cannot
drift apart.

Numbers are strict where a hand-edited file could slip through: a count is an integer, not
``"3"``, ``3.0`` or ``true``; a score is a finite number. An older format's record is
upgraded by the class's own before-validator.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import ConfigDict, Field, JsonValue, Strict, TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema

from opro.errors import shown

RECORD = ConfigDict(
    extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False,
    ser_json_inf_nan="constants",  # a NaN in a kind's own part is written as one, never null
)  # fmt: skip

Int = Annotated[int, Strict()]
Count = Annotated[int, Strict(), Field(ge=0)]
Number = Annotated[float, Strict()]
Real = Int | Number
"""A number written as it was given (an integer stays one)."""
Seconds = Annotated[float, Strict(), Field(ge=0)]


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def adapter(cls: type) -> TypeAdapter[Any]:
    """``cls``'s adapter, built once (building one costs milliseconds)."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def first_error(exc: ValidationError) -> str:
    """A validation error in one line: the first bad field, what it holds and why."""
    error = exc.errors(include_url=False)[0]
    if error["type"] == "value_error":  # a validator's own message says it all
        return str(error["ctx"]["error"])
    where = ".".join(str(part) for part in error["loc"])
    why = (error["msg"][:1].lower() + error["msg"][1:]).replace("tuple", "list")  # JSON's
    if not where:
        return why
    if error["type"] == "missing":
        return f"{where!r} is missing"
    return f"{where!r} is {shown(error['input'])}: {why}"


class JsonRecord:
    """``to_json`` and ``from_json`` for a record class, through its pydantic adapter."""

    flattened: ClassVar[str | None] = None
    """A mapping field whose keys are written beside the record's own (summary.json keeps a
    kind's fields at its top level); read back, the keys the record does not know go there
    (its before-validator gathers them)."""

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = adapter(type(self)).dump_python(self, mode="json")
        flat = data.pop(self.flattened) if self.flattened is not None else None
        if isinstance(flat, dict):
            data |= flat
        return data

    @classmethod
    def from_json(cls, data: object) -> Self:
        """The record in ``data`` (parsed JSON); a one-line ``ValueError`` naming the first
        bad field otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"not a JSON object ({cls.__name__})")
        try:
            record: Self = adapter(cls).validate_python(data)
        except ValidationError as exc:
            raise ValueError(first_error(exc)) from None
        return record


class _AsWritten(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # a property's title would only repeat its name

    def field_is_required(self, field: Any, total: bool) -> bool:
        """A record's field is always written unless left out when empty (``exclude_if``)."""
        written = field["type"] == "dataclass-field" and "serialization_exclude_if" not in field
        return written or super().field_is_required(field, total)

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated: JsonSchemaValue = _one_line(super().generate(schema, mode))
        return generated


def _one_line(node: Any) -> Any:
    """Each meaning (a docstring) on one line, in Markdown: `x`, not ``x``."""
    if isinstance(node, list):
        return [_one_line(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: " ".join(value.split()).replace("``", "`")
        if key == "description" and isinstance(value, str)
        else _one_line(value)
        for key, value in node.items()
    }


def json_schema(tp: Any, defs: JsonSchemaValue) -> JsonSchemaValue:
    """The JSON Schema of ``tp``'s records as a file holds them, its definitions moved into
    ``defs`` (several schemas share them)."""
    schema: JsonSchemaValue = TypeAdapter(tp).json_schema(
        mode="serialization", schema_generator=_AsWritten
    )
    defs |= schema.pop("$defs", {})
    return schema
