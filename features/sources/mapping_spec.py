"""Stage: ingest (mapping-file adapter). The mapping file: its Pydantic model, YAML parsing, error locations.

Reads nothing from disk: `parse_mapping` takes the YAML text (and the file name to put in messages);
`features.sources.mapping.read_mapping` reads the file. A mapping file says, per contract table, how each
contract column is made from the columns of one flat source file; `docs/adapters.md` documents every key.

```yaml
source: {timezone: Europe/Berlin, null_values: ["", "n/a"]}
countries: {languages: [en, de], aliases: {Turkey: TR}}
derive:                       # named intermediate columns, usable by the rules below (in order)
  handed_over: {datetime: carrier_scan, format: "%d.%m.%Y %H:%M"}
tables:
  shipments:
    columns:
      shipment_id: order_id                                  # a source column, renamed
      mode: {map: service, values: {Express: express}, default: postal}
      destination_country: {country: buyer_country}
      created_at: {datetime: ordered_at}
      carrier: {const: DHL}
      destination_region: {sql: "buyer_country || '-' || buyer_state"}
  shipment_events:
    columns: {shipment_id: order_id, country: {country: buyer_country}}
    events:
      - {event: picked_up, at: handed_over}
```

Every error is a `MappingError` whose message starts with `file:line: key.path:` and says the rule and the
fix; nothing else in the project reads these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

__all__ = [
    "AGGREGATIONS",
    "RULE_KINDS",
    "Aggregation",
    "ColumnRule",
    "ConstRule",
    "CountriesSpec",
    "CountryRule",
    "DateRule",
    "DatetimeRule",
    "EventSpec",
    "LoadedMapping",
    "MapRule",
    "MappingError",
    "MappingSpec",
    "Rule",
    "SourceSpec",
    "SqlRule",
    "TableMapping",
    "check_zone",
    "parse_mapping",
]

Loc = tuple[str | int, ...]
Scalar = str | int | float | bool | None
Aggregation = Literal["first", "last", "min", "max", "sum", "mean"]
AGGREGATIONS: Final = ("first", "last", "min", "max", "sum", "mean")
RULE_KINDS: Final = ("column", "const", "sql", "datetime", "date", "map", "country")


class MappingError(ValueError):
    """A mapping file that cannot be applied (syntax, unknown key/table/column, bad expression, ...).

    The message names the file, the line when known, the key, the source column, the rule and the fix.
    """


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRule(_Model):
    """Copy a source (or derived) column; in YAML a bare string means the same."""

    column: str


class ConstRule(_Model):
    """The same value on every row (null allowed)."""

    const: Scalar


class SqlRule(_Model):
    """A Polars SQL expression over the source columns (`pl.sql_expr`): `a || '-' || b`, `CASE WHEN ...`."""

    sql: str


class DatetimeRule(_Model):
    """Parse a timestamp; naive values are in `timezone` (else the mapping's `source.timezone`)."""

    datetime: str
    format: str | None = None
    timezone: str | None = None
    null_values: tuple[str, ...] = ()


class DateRule(_Model):
    """Parse a calendar date (a timestamp column gives its date)."""

    date: str
    format: str | None = None
    null_values: tuple[str, ...] = ()


class MapRule(_Model):
    """Replace values by a table; values not in the table take `default` if given, else `unmapped` decides."""

    map: str
    values: dict[str, Scalar]
    default: Scalar = None
    unmapped: Literal["error", "reject"] = "error"


class CountryRule(_Model):
    """A country name (in `countries.languages`) or code -> ISO-2; unknown or ambiguous: row rejected."""

    country: str
    null_values: tuple[str, ...] = ()


def _rule_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "column"
    if isinstance(value, Mapping):
        return next((k for k in RULE_KINDS if k in value), None)
    if isinstance(value, BaseModel):
        return next((k for k in RULE_KINDS if k in type(value).model_fields), None)
    return None


def _bare_column(value: Any) -> Any:
    return {"column": value} if isinstance(value, str) else value


Rule = Annotated[
    Annotated[ColumnRule, Tag("column")]
    | Annotated[ConstRule, Tag("const")]
    | Annotated[SqlRule, Tag("sql")]
    | Annotated[DatetimeRule, Tag("datetime")]
    | Annotated[DateRule, Tag("date")]
    | Annotated[MapRule, Tag("map")]
    | Annotated[CountryRule, Tag("country")],
    Discriminator(
        _rule_kind,
        custom_error_type="rule_kind",
        custom_error_message=(
            "a column rule is a source column name or a mapping with one of the keys " + ", ".join(RULE_KINDS)
        ),
    ),
    BeforeValidator(_bare_column),
]


class EventSpec(_Model):
    """One milestone made from a timestamp column: a `shipment_events` row wherever `at` is not null."""

    event: str
    at: Rule
    columns: dict[str, Rule] = Field(default_factory=dict)


class TableMapping(_Model):
    """How one contract table is made: a rule per contract column, events, and optional grouping."""

    columns: dict[str, Rule] = Field(default_factory=dict)
    events: tuple[EventSpec, ...] = ()
    group_by: tuple[str, ...] = ()
    aggregate: dict[str, Aggregation] = Field(default_factory=dict)


class SourceSpec(_Model):
    """How to read the flat source file."""

    timezone: str | None = None
    null_values: tuple[str, ...] = ()
    separator: str = ","


class CountriesSpec(_Model):
    """How country names are written in the source."""

    languages: tuple[str, ...] = ("en",)
    aliases: dict[str, str] = Field(default_factory=dict)


class MappingSpec(_Model):
    """A whole mapping file."""

    description: str = ""
    source: SourceSpec = Field(default_factory=SourceSpec)
    countries: CountriesSpec = Field(default_factory=CountriesSpec)
    derive: dict[str, Rule] = Field(default_factory=dict)
    tables: dict[str, TableMapping]


@dataclass(frozen=True)
class LoadedMapping:
    """A parsed mapping with what error messages need: its file name and the line of every key.

    Attributes:
        spec: the validated mapping.
        origin: the file name shown in messages.
        lines: 1-based line of each key path (`("tables", "shipments", "columns", "mode")`).
    """

    spec: MappingSpec
    origin: str = "<mapping>"
    lines: Mapping[Loc, int] = field(default_factory=dict)

    def where(self, *loc: str | int) -> str:
        """`file:line: a.b.c` for a key path (the line of the deepest key that exists)."""
        line = None
        for n in range(len(loc), 0, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line is not None:
                break
        at = f"{self.origin}:{line}" if line is not None else self.origin
        return f"{at}: {'.'.join(str(p) for p in loc)}" if loc else at

    def error(self, loc: Loc, problem: str, fix: str) -> MappingError:
        """A `MappingError` located at `loc`: `file:line: key: problem. Fix: fix`."""
        return MappingError(f"{self.where(*loc)}: {problem}. Fix: {fix}")


def check_zone(zone: str, loaded: LoadedMapping, loc: Loc) -> str:
    """`zone` if it is an IANA time zone, else a `MappingError` at `loc`."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise loaded.error(
            loc,
            f"{zone!r} is not an IANA time zone",
            "write a zone name such as UTC, Europe/Berlin, America/Sao_Paulo, Asia/Shanghai",
        ) from None
    return zone


def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*loc, str(key.value))
            _node_lines(value, sub, out)
            out[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*loc, i), out)


_SCALAR_MEMBERS: Final = frozenset({"str", "int", "float", "bool"})


def _yaml_loc(loc: Loc, lines: Mapping[Loc, int]) -> Loc:
    """Drop the parts of a Pydantic error location that are not YAML keys (union tags, scalar members).

    A tag can equal the rule's own key (`map:`), so a part is skipped when the YAML path goes on without it.
    The last part is kept: it names the unknown or missing key.
    """
    kept: list[str | int] = []
    for i, part in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if nxt is not None and (*kept, nxt) in lines and (*kept, part, nxt) not in lines:
            continue
        if (*kept, part) in lines or (i == len(loc) - 1 and part not in _SCALAR_MEMBERS):
            kept.append(part)
    return tuple(kept)


def _validation_message(exc: ValidationError, loaded: LoadedMapping) -> str:
    problems: dict[str, None] = {}
    for err in exc.errors():
        loc = _yaml_loc(tuple(err["loc"]), loaded.lines)
        where = loaded.where(*loc)
        if err["type"] == "extra_forbidden":
            problems[
                f"{where}: unknown key {loc[-1]!r}. Fix: remove or rename it (keys: docs/adapters.md)"
            ] = None
        elif err["type"] == "missing":
            problems[f"{where}: required key missing. Fix: add `{loc[-1]}:`"] = None
        elif err["loc"] and err["loc"][-1] in _SCALAR_MEMBERS:
            problems[
                f"{where}: expected one value (text, number, true/false or null). Fix: write one value"
            ] = None
        else:
            problems[f"{where}: {err['msg']}. Fix: see the mapping keys in docs/adapters.md"] = None
    return "\n".join(problems)


def parse_mapping(text: str, origin: str = "<mapping>") -> LoadedMapping:
    """Parse and validate a mapping file's YAML text.

    Args:
        text: the YAML text.
        origin: the file name to show in error messages.

    Returns:
        The validated mapping with the line of every key.

    Raises:
        MappingError: YAML syntax error (with its line and column), not a mapping, or a key/value that the
            mapping model rejects (each problem on one line: `file:line: key.path: problem. Fix: ...`).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        raise MappingError(
            f"{at}: YAML syntax error: {exc.problem or exc}. Fix: check the indentation and quoting there "
            "(quote values that contain ': ' or start with a special character)"
        ) from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    loaded = LoadedMapping(MappingSpec.model_construct(tables={}), origin, lines)
    if not isinstance(data, dict):
        raise loaded.error(
            (), "the file is not a YAML mapping", "start with `tables:` (see docs/adapters.md)"
        )
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise MappingError(_validation_message(exc, loaded)) from None
    return LoadedMapping(spec, origin, lines)
