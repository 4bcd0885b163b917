"""Stage: serving. Request models derived from the data contract: names, types, vocabularies, required flags.

Pure Pydantic; reads and writes nothing. `request_model` builds a request model (e.g. `ShipmentIn`) from a
contract `TableSpec`, so a column added, renamed, made optional or given a new vocabulary in
`features.contract.schema` changes the API with it:

* field names and descriptions are the contract's columns;
* a column that is required and not nullable in the contract is a required field, any other is optional
  (null when absent, exactly as in a file);
* a `pl.Enum` column is a `Literal` of its levels; timestamps must carry a UTC offset (`AwareDatetime`);
* numbers carry the bounds of the contract's rules (`non_negative`, `positive`) and of the scoring bounds
  (`serving.online.inputs.UPPER_BOUNDS`); texts at most `MAX_TEXT` characters;
* examples are the contract's examples, read with the ingest's parser.

The model parses JSON; the rules themselves (ISO-2 countries, 6-digit HS codes, promise after booking, ...)
are then applied to the request's rows by `serving.online.inputs.check_rows`, the same function batch scoring
runs, so the API never accepts a row a file would be refused for, nor the other way round. Where the
contract's parser is more lenient than the documented form (lower-case countries, HS codes with dots), the
OpenAPI schema documents the canonical form.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from features.contract.countries import ISO2_CODES
from features.contract.rules import row_rules
from features.contract.schema import TableSpec
from features.contract.validation import coerce_column
from serving.online.inputs import MAX_TEXT, UPPER_BOUNDS

__all__ = ["STRICT", "column_example", "column_field", "request_model"]

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

# What a contract rule says about one value, as JSON-schema constraints (Pydantic checks the bounds; the
# documented forms are hints for clients, the rule itself is checked on the rows).
_BOUNDS: dict[str, dict[str, Any]] = {"non_negative": {"ge": 0}, "positive": {"gt": 0}}
_FORMS: dict[str, dict[str, Any]] = {
    "iso2_country": {"enum": sorted(ISO2_CODES)},
    "hs_code_6_digits": {"pattern": r"^[0-9]{6}$"},
}


def _annotation(dtype: pl.DataType) -> Any:
    if isinstance(dtype, pl.Enum):
        return Literal[tuple(dtype.categories.to_list())]
    if isinstance(dtype, pl.Datetime):
        return AwareDatetime
    if dtype == pl.Date:
        return dt.date
    if dtype == pl.Boolean:
        return bool
    if dtype.is_integer():
        return int
    if dtype.is_float():
        return float
    return str


def column_example(spec: TableSpec, name: str) -> Any:
    """The contract's example of a column as a JSON value (read with the ingest's parser)."""
    column = spec.column(name)
    expr, _ = coerce_column(pl.col(name), name, column.dtype, pl.String())
    value = pl.DataFrame({name: [column.example]}).select(expr).item()
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def column_field(spec: TableSpec, name: str, *, required: bool | None = None, default: Any = None) -> Any:
    """`(annotation, FieldInfo)` of the request field for contract column `name` (for `create_model`).

    Args:
        spec: the contract table.
        name: the column.
        required: overrides the contract's flag (a request model of another resource, e.g. routing orders).
        default: the value of an optional field when absent (None: null, as in a file).
    """
    column = spec.column(name)
    rules = {r.rule for r in row_rules(spec) if r.column == name}
    constraints: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for rule in rules:
        constraints.update(_BOUNDS.get(rule, {}))
        extra.update(_FORMS.get(rule, {}))
    if name in UPPER_BOUNDS:
        constraints["le"] = UPPER_BOUNDS[name]
    annotation = _annotation(column.dtype)
    if annotation is str:
        constraints["max_length"] = MAX_TEXT
    is_required = column.required and not column.nullable if required is None else required
    description = column.description + (f" ({column.unit})" if column.unit else "")
    info = Field(
        ... if is_required else default,
        description=description,
        examples=[column_example(spec, name)],
        json_schema_extra=extra or None,
        **constraints,
    )
    return (annotation if is_required else annotation | None, info)


def request_model(
    model_name: str,
    spec: TableSpec,
    columns: tuple[str, ...],
    *,
    doc: str,
    required: dict[str, bool] | None = None,
    defaults: dict[str, Any] | None = None,
    extra_fields: dict[str, Any] | None = None,
    validators: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """A strict request model whose fields are the contract columns `columns` of `spec` (see module doc).

    Args:
        model_name: the model's name in the OpenAPI schema.
        spec: the contract table.
        columns: its columns the request carries, in order.
        doc: the model's docstring (its OpenAPI description).
        required: per-column overrides of the contract's required flag.
        defaults: values of optional fields when absent (default null).
        extra_fields: fields that are not contract columns, `name -> (annotation, FieldInfo)`.
        validators: `name -> model_validator(...)(function)`, checks across fields.
    """
    required, defaults = required or {}, defaults or {}
    fields = dict(extra_fields or {})
    fields |= {
        name: column_field(spec, name, required=required.get(name), default=defaults.get(name))
        for name in columns
    }
    example = {
        name: info.examples[0] for name, (_, info) in fields.items() if info.is_required() and info.examples
    }
    config = ConfigDict(**STRICT, json_schema_extra={"examples": [example]})
    model: type[BaseModel] = create_model(
        model_name, __config__=config, __doc__=doc, __validators__=validators, **fields
    )
    return model
