"""Stage: ingest (mapping-file adapter). A mapping's tables and columns checked against the contract.

Reads and writes nothing. `check_table_mapping` refuses, with a `MappingError` at the key's line, what a
mapping file says that the contract (`features.contract.schema`) cannot hold: an unknown table or column,
a value outside a vocabulary, a required column without a rule. It runs before any source row is read.
"""

from __future__ import annotations

import difflib
from typing import Final

import polars as pl

from features.contract.schema import EVENT_TYPES, TABLES, TableSpec, table_spec
from features.sources.mapping_rules import scalar_text
from features.sources.mapping_spec import ConstRule, LoadedMapping, Loc, MapRule, Rule, TableMapping

__all__ = ["EVENT", "EVENTS_TABLE", "EVENT_AT", "check_table_mapping"]

EVENTS_TABLE: Final = "shipment_events"
"""The table whose rows a mapping can derive from timestamp columns (`events:`)."""
EVENT: Final = "event"
EVENT_AT: Final = "event_at"


def _target(loaded: LoadedMapping, spec: TableSpec, column: str, loc: Loc) -> None:
    names = [c.name for c in spec.columns]
    if column in names or (spec.passthrough_prefix and column.startswith(spec.passthrough_prefix)):
        return
    close = difflib.get_close_matches(column, names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise loaded.error(
        loc, f"unknown target column {column!r} for table {spec.name}", f"{hint}columns: {', '.join(names)}"
    )


def _check_vocabulary(loaded: LoadedMapping, spec: TableSpec, column: str, rule: Rule, loc: Loc) -> None:
    """Values that a map or a constant writes into a vocabulary column must be in the vocabulary."""
    if column not in spec.schema or not isinstance(spec.schema[column], pl.Enum):
        return
    allowed = spec.schema[column].categories.to_list()  # type: ignore[attr-defined]
    written: dict[str, str | None] = {}
    if isinstance(rule, MapRule):
        written = {k: scalar_text(v) for k, v in rule.values.items()}
        if "default" in rule.model_fields_set:
            written["default"] = scalar_text(rule.default)
    elif isinstance(rule, ConstRule):
        written = {"const": scalar_text(rule.const)}
    for key, value in written.items():
        if value is not None and value not in allowed:
            raise loaded.error(
                (*loc, "values", key) if isinstance(rule, MapRule) and key != "default" else loc,
                f"{value!r} is not a value of {spec.name}.{column}",
                f"write one of {', '.join(allowed)}",
            )


def _dtype_text(dtype: pl.DataType) -> str:
    return f"one of {', '.join(dtype.categories.to_list())}" if isinstance(dtype, pl.Enum) else str(dtype)


def _check_events(loaded: LoadedMapping, spec: TableSpec, tm: TableMapping) -> set[str]:
    """Check the `events:` of a table mapping; return the columns every event row gets."""
    loc: Loc = ("tables", spec.name)
    if spec.name != EVENTS_TABLE:
        raise loaded.error(
            (*loc, "events"), f"`events:` makes {EVENTS_TABLE} rows", f"move it under tables.{EVENTS_TABLE}"
        )
    for column in sorted({EVENT, EVENT_AT} & set(tm.columns)):
        raise loaded.error(
            (*loc, "columns", column), f"{column} comes from each event", "remove it from `columns:`"
        )
    per_event = []
    for i, ev in enumerate(tm.events):
        if ev.event not in EVENT_TYPES:
            raise loaded.error(
                (*loc, "events", i, "event"),
                f"unknown event {ev.event!r}",
                f"write one of {', '.join(EVENT_TYPES)}",
            )
        for column, rule in ev.columns.items():
            _target(loaded, spec, column, (*loc, "events", i, "columns", column))
            _check_vocabulary(loaded, spec, column, rule, (*loc, "events", i, "columns", column))
        per_event.append(set(ev.columns))
    return {EVENT, EVENT_AT} | set.intersection(*per_event)


def check_table_mapping(loaded: LoadedMapping, name: str, tm: TableMapping) -> TableSpec:
    """Check one table of a mapping against the contract, before any data is read.

    Returns:
        The table's contract spec.

    Raises:
        MappingError: unknown table or target column, `events:` outside the events table or with an unknown
            event, a value outside a vocabulary, a required contract column without a rule, `group_by` or
            `aggregate` on a column that is not mapped.
    """
    loc: Loc = ("tables", name)
    try:
        spec = table_spec(name)
    except KeyError:
        close = difflib.get_close_matches(name, list(TABLES), n=2)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise loaded.error(loc, f"unknown table {name!r}", f"{hint}tables: {', '.join(TABLES)}") from None
    for column, rule in tm.columns.items():
        _target(loaded, spec, column, (*loc, "columns", column))
        _check_vocabulary(loaded, spec, column, rule, (*loc, "columns", column))
    provided = set(tm.columns)
    if tm.events:
        provided |= _check_events(loaded, spec, tm)
    missing = [c for c in spec.required_columns if c not in provided]
    if missing:
        needed = "; ".join(
            f"{c} ({_dtype_text(spec.column(c).dtype)}, e.g. {spec.column(c).example!r})" for c in missing
        )
        raise loaded.error(
            (*loc, "columns"),
            f"missing required contract column(s) of {name}: {needed}",
            "add a rule for each (a source column, `const:`, `sql:`, ...); `transitcast contract "
            f"{name}` lists the columns",
        )
    for key, columns in (("group_by", tm.group_by), ("aggregate", tuple(tm.aggregate))):
        for column in columns:
            if column not in provided:
                raise loaded.error(
                    (*loc, key),
                    f"{column!r} is not a mapped column of {name}",
                    f"use one of {', '.join(sorted(provided))}",
                )
    if tm.group_by and tm.events:
        raise loaded.error(
            (*loc, "group_by"),
            "events are not grouped",
            "group the table the events belong to (identical events are written once)",
        )
    return spec
