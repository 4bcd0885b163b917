"""Stage: serving. Rows to score, checked against the data contract: one set of rules for every caller.

Reads and writes nothing: frames in, frames out. `/v1/eta` (after its request model parsed the JSON) and
batch scoring (`pipelines.flows.score`, on each chunk of a user's file) both call `check_rows`, so a row one
path refuses the other refuses too, with the same rule.

The rules are the contract's (`features.contract`): the ingest's own parser (`coerce_column`: ISO-8601
timestamps with an offset, `YYYY-MM-DD` dates, upper-cased countries, HS codes without dots), the row rules
of the table (`features.contract.rules.row_rules`: ISO-2 countries, 6-digit HS codes, non-negative amounts,
promise not before booking, ...) and unique keys; plus a few bounds that keep the models in the range they
were trained for (`scoring_rules`: at most 30 t, 10 M USD, 100,000 items, 64 characters, timestamps in
2000-2099, a promise at most 365 days out). A rejected row is reported with its row number, column, rule,
raw value and the fix (`Rejects`).

Scoring rows are contract `shipments` rows without what is only known later (`NOT_SCORED`: delivery time,
status, the freight finally paid): those columns are optional here, everything else is required or optional
exactly as the contract says.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final

import polars as pl

from features.contract.rules import RULE_DOCS, Rule, row_rules
from features.contract.schema import ColumnSpec, TableSpec, table_spec
from features.contract.validation import coerce_column

__all__ = [
    "EARLIEST",
    "EVENTS_SPEC",
    "INPUT_COLUMNS",
    "LATEST",
    "MAX_PROMISE_DAYS",
    "MAX_TEXT",
    "NOT_SCORED",
    "REJECTS_SCHEMA",
    "SCORED_COLUMNS",
    "SHIPMENTS_SPEC",
    "UPPER_BOUNDS",
    "CheckedRows",
    "MissingColumns",
    "Rejects",
    "check_rows",
    "require_valid",
    "scoring_rules",
]

# Known only after booking (outcomes, and the freight finally paid); the booking models never read them.
NOT_SCORED: Final = ("delivered_at", "status", "shipping_cost_usd")


def _relaxed(spec: TableSpec, names: tuple[str, ...]) -> TableSpec:
    return replace(
        spec,
        columns=tuple(
            replace(c, required=False, nullable=True) if c.name in names else c for c in spec.columns
        ),
    )


SHIPMENTS_SPEC: Final = _relaxed(table_spec("shipments"), NOT_SCORED)
EVENTS_SPEC: Final = table_spec("shipment_events")
# What a scoring row may carry, and what it must carry (required and not nullable in the contract).
SCORED_COLUMNS: Final = tuple(c.name for c in SHIPMENTS_SPEC.columns if c.name not in NOT_SCORED)
INPUT_COLUMNS: Final = SHIPMENTS_SPEC.required_columns

# Bounds of scoring inputs, beyond the contract: the range the models were trained for.
UPPER_BOUNDS: Final[dict[str, float]] = {
    "weight_kg": 30_000.0,
    "declared_value_usd": 10_000_000.0,
    "item_count": 100_000,
}
MAX_TEXT: Final = 64
EARLIEST: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST: Final = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
MAX_PROMISE_DAYS: Final = 365

ROW: Final = "row_number"
_RAW = "__raw_"

REJECTS_SCHEMA: Final = pl.Schema(
    {
        "row_number": pl.Int64(),
        "column": pl.String(),
        "rule": pl.String(),
        "raw_value": pl.String(),
        "detail": pl.String(),
        "fix": pl.String(),
        "violations": pl.String(),
        "raw_row": pl.String(),
    }
)


def scoring_rules(spec: TableSpec) -> list[Rule]:
    """Bounds of scoring inputs on the columns of `spec`: `UPPER_BOUNDS`, `MAX_TEXT`, time range, promise."""
    rules: list[Rule] = []
    for c in spec.columns:
        col = pl.col(c.name)
        if c.name in UPPER_BOUNDS:
            top = UPPER_BOUNDS[c.name]
            rules.append(Rule("at_most", c.name, col <= top, f"the value must be at most {top:,g}"))
        if c.dtype == pl.String:
            rules.append(
                Rule("text_length", c.name, col.str.len_chars() <= MAX_TEXT, f"at most {MAX_TEXT} characters")
            )
        if isinstance(c.dtype, pl.Datetime):
            rules.append(
                Rule(
                    "time_range",
                    c.name,
                    col.is_between(EARLIEST, LATEST, closed="left"),
                    "timestamps must lie in [2000-01-01, 2100-01-01) UTC",
                )
            )
    if {"created_at", "promised_date"} <= set(spec.schema):
        days = (pl.col("promised_date") - pl.col("created_at").dt.date()).dt.total_days()
        rules.append(
            Rule(
                "promise_horizon",
                "promised_date",
                days <= MAX_PROMISE_DAYS,
                f"promised_date must be at most {MAX_PROMISE_DAYS} days after created_at's date",
            )
        )
    return rules


@dataclass(frozen=True)
class CheckedRows:
    """Rows that passed every rule (contract dtypes, input order) and one row per rejected input row.

    Attributes:
        valid: the columns the input carried, typed to the contract.
        rejects: `REJECTS_SCHEMA`: the first broken rule of each rejected row, its fix, every rule broken
            (`violations`, comma-separated `rule:column`) and the raw row as JSON.
        rows_in: input rows.
    """

    valid: pl.DataFrame
    rejects: pl.DataFrame
    rows_in: int


class MissingColumns(ValueError):
    """A required column is absent (the whole input is refused)."""


class Rejects(ValueError):
    """Rows that break the rules; `str()` names the first ones with row, column, rule, value and fix.

    Args:
        table: the contract table of the rows.
        rejects: `REJECTS_SCHEMA` rows.
        rows_in: rows checked.
        where: the file (or request part) the rows came from, for the message.
    """

    def __init__(self, table: str, rejects: pl.DataFrame, rows_in: int, where: str = "") -> None:
        self.table = table
        self.rejects = rejects
        self.rows_in = rows_in
        shown = 5
        lines = [
            f"row {r['row_number']}, {r['column']} = {r['raw_value']!r}: {r['rule']} ({r['detail']}); "
            f"fix: {r['fix']}"
            for r in rejects.head(shown).iter_rows(named=True)
        ]
        more = f"\n  ... and {rejects.height - shown:,} more" if rejects.height > shown else ""
        super().__init__(
            (f"{where}: " if where else "")
            + f"{rejects.height:,} of {rows_in:,} {table} row(s) break the data contract:\n  "
            + "\n  ".join(lines)
            + more
        )


def _fix(rule: str, column: ColumnSpec) -> str:
    """What to write instead, for a broken rule of `column`."""
    if rule == "timezone_missing":
        return (
            f"write the UTC offset (like {column.example}) or give the zone the times were written in "
            "(batch scoring: --assume-timezone ZONE, e.g. --assume-timezone Europe/Berlin)"
        )
    if rule == "vocabulary" and isinstance(column.dtype, pl.Enum):
        return "use one of " + ", ".join(column.dtype.categories.to_list())
    if rule == "duplicate_key":
        return f"give every row its own {column.name}"
    return f"write a value like {column.example!r}"


def _parse_rules(
    spec: TableSpec, raw: pl.DataFrame, assume_timezone: str | None
) -> tuple[list[pl.Expr], list[Rule]]:
    """Typed columns (the ingest's parser) and the rules that catch values it could not read."""
    typed: list[pl.Expr] = []
    rules: list[Rule] = []
    for c in spec.columns:
        if c.name not in raw.columns:
            typed.append(pl.lit(None, dtype=c.dtype).alias(c.name))
            continue
        source = pl.col(_RAW + c.name)
        expr, tz_missing = coerce_column(source, c.name, c.dtype, raw.schema[c.name], assume_timezone)
        typed.append(expr.alias(c.name))
        unread = source.is_not_null() & pl.col(c.name).is_null()
        rules.append(Rule("timezone_missing", c.name, ~(tz_missing & unread), RULE_DOCS["timezone_missing"]))
        kind = "vocabulary" if isinstance(c.dtype, pl.Enum) else "type"
        rules.append(Rule(kind, c.name, ~unread, f"{RULE_DOCS[kind]}: expected {c.dtype}"))
    return typed, rules


def _key_rule(spec: TableSpec) -> Rule:
    key = pl.col(spec.key[0]) if len(spec.key) == 1 else pl.struct(list(spec.key))
    return Rule("duplicate_key", spec.key[-1], key.is_first_distinct(), RULE_DOCS["duplicate_key"])


def _rejects(bad: pl.DataFrame, rules: list[Rule], flags: list[str], spec: TableSpec) -> pl.DataFrame:
    """One row per rejected input row: its first broken rule, the fix, every broken rule, the raw row."""
    violations = pl.concat_list(
        [pl.when(f).then(pl.lit(r.name)).otherwise(None) for f, r in zip(flags, rules, strict=True)]
    ).list.drop_nulls()
    first = pl.col("violations").list.first()
    by_name = {r.name: r for r in rules}
    raw_cols = [c for c in bad.columns if c.startswith(_RAW)]
    column = first.replace_strict({n: r.column for n, r in by_name.items()})
    raw_value = pl.lit(None, dtype=pl.String)
    for c in raw_cols:
        raw_value = (
            pl.when(column == c.removeprefix(_RAW)).then(pl.col(c).cast(pl.String)).otherwise(raw_value)
        )
    return (
        bad.with_columns(violations.alias("violations"))
        .select(
            ROW,
            column.alias("column"),
            first.replace_strict({n: r.rule for n, r in by_name.items()}).alias("rule"),
            raw_value.alias("raw_value"),
            first.replace_strict({n: r.detail for n, r in by_name.items()}).alias("detail"),
            first.replace_strict({n: _fix(r.rule, spec.column(r.column)) for n, r in by_name.items()}).alias(
                "fix"
            ),
            pl.col("violations").list.join(", "),
            pl.struct([pl.col(c).alias(c.removeprefix(_RAW)) for c in raw_cols])
            .struct.json_encode()
            .alias("raw_row"),
        )
        .cast(dict(REJECTS_SCHEMA))  # type: ignore[arg-type]
    )


def check_rows(
    raw: pl.DataFrame,
    spec: TableSpec = SHIPMENTS_SPEC,
    *,
    first_row: int = 1,
    assume_timezone: str | None = None,
    unique_key: bool = True,
) -> CheckedRows:
    """Parse `raw` with the ingest's parser and split it into valid rows and rejects, by the contract's rules.

    Args:
        raw: rows as read (text columns from CSV, or typed columns); columns outside `spec` are dropped.
        spec: the table (`SHIPMENTS_SPEC` for scoring rows, `EVENTS_SPEC` for their milestone scans).
        first_row: row number of the first row (batch scoring numbers rows across chunks).
        assume_timezone: IANA zone of timestamps written without an offset; None refuses them.
        unique_key: refuse a row whose key an earlier row has (off where rows of several requests meet).

    Returns:
        The valid rows in input order (the columns `raw` carried, typed to the contract) and the rejects.

    Raises:
        MissingColumns: a required column is absent (naming it, its type and an example).
    """
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        expected = ", ".join(
            f"{c} ({spec.column(c).dtype}, like {spec.column(c).example!r})" for c in missing
        )
        raise MissingColumns(f"{spec.name}: missing required column(s) {expected}")
    present = [c.name for c in spec.columns if c.name in raw.columns]
    typed, parse = _parse_rules(spec, raw, assume_timezone)
    rules = [*parse, *_table_rules(spec)] + ([_key_rule(spec)] if unique_key else [])
    flags = [f"__f{i}" for i in range(len(rules))]
    frame = (
        raw.lazy()
        .select(
            pl.int_range(first_row, first_row + pl.len(), dtype=pl.Int64).alias(ROW),
            *(pl.col(c).alias(_RAW + c) for c in present),
        )
        .with_columns(typed)
        .with_columns((~r.check).fill_null(False).alias(f) for r, f in zip(rules, flags, strict=True))
        .with_columns(pl.any_horizontal(flags).alias("__bad"))
        .collect()
    )
    if not frame.get_column("__bad").any():
        return CheckedRows(frame.select(present), pl.DataFrame(schema=REJECTS_SCHEMA), raw.height)
    return CheckedRows(
        valid=frame.filter(~pl.col("__bad")).select(present),
        rejects=_rejects(frame.filter("__bad"), rules, flags, spec),
        rows_in=raw.height,
    )


@lru_cache(maxsize=8)
def _table_rules(spec: TableSpec) -> tuple[Rule, ...]:
    """The rules of `spec` on typed columns (built once per spec: building expressions costs ~ms)."""
    return (*row_rules(spec), *scoring_rules(spec))


def require_valid(
    raw: pl.DataFrame, spec: TableSpec = SHIPMENTS_SPEC, *, unique_key: bool = True
) -> pl.DataFrame:
    """`check_rows(raw, spec).valid`, or `Rejects` when any row breaks a rule (what `/v1/eta` does)."""
    checked = check_rows(raw, spec, unique_key=unique_key)
    if checked.rejects.height:
        raise Rejects(spec.name, checked.rejects, checked.rows_in)
    return checked.valid
