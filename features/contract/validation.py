"""Stage: ingest. Coerce raw frames to the contract and split them into valid rows and a quarantine.

Reads and writes nothing: frames in, frames out. `features.ingest` does the file I/O around it.

Every input row ends in exactly one place: the valid table or the quarantine (`rows in = valid +
quarantined`). A quarantined row carries the first rule it broke (`column`, `rule`, `raw_value`, `detail`),
the list of every rule it broke (`violations`) and the whole raw row as JSON (`raw_row`), so it can be fixed
and re-ingested.

Order of checks: type coercion, row rules (`features.contract.rules`), then the table rules that need several
rows: unique keys (the first occurrence in file order is kept), foreign keys against the already validated
parent tables, and for milestone events the possible order of events per shipment and leg.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from features.contract.rules import RULE_DOCS, Rule, row_rules
from features.contract.schema import EVENT_RANK, EVENT_TYPES, TERMINAL_EVENTS, UTC, TableSpec

__all__ = [
    "QUARANTINE_SCHEMA",
    "ROW",
    "SOURCE",
    "TableValidation",
    "coerce_column",
    "validate_table",
]

ROW = "__row_number"  # 1-based data row number in the source file (header excluded)
SOURCE = "__source_file"
_RAW = "__raw_"

QUARANTINE_SCHEMA = pl.Schema(
    {
        "table": pl.String(),
        "source_file": pl.String(),
        "row_number": pl.Int64(),
        "column": pl.String(),
        "rule": pl.String(),
        "raw_value": pl.String(),
        "detail": pl.String(),
        "violations": pl.List(pl.String()),
        "raw_row": pl.String(),
    }
)

_TRUE = ["true", "t", "1", "yes", "y"]
_FALSE = ["false", "f", "0", "no", "n"]


@dataclass(frozen=True)
class TableValidation:
    """What validating one table produced.

    Attributes:
        valid: rows that passed every rule, contract schema (+ passthrough columns), sorted by the spec.
        quarantine: one row per rejected input row, `QUARANTINE_SCHEMA`.
        rows_in: input rows.
    """

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    rows_in: int


# ---------------------------------------------------------------------------------------------------------
# Coercion
# ---------------------------------------------------------------------------------------------------------
_NAIVE_ISO = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"


def _parse_timestamp(col: pl.Expr, assume_timezone: str | None) -> tuple[pl.Expr, pl.Expr]:
    """(UTC timestamp, is-naive flag) from ISO-8601 strings (`T` or space, `Z` or `+hh:mm`)."""
    text = col.str.replace(" ", "T", literal=True, n=1).str.replace("Z", "+00:00", literal=True, n=1)
    aware = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone=UTC, time_unit="us")
    if assume_timezone is not None:
        naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        local = naive.dt.replace_time_zone(assume_timezone, ambiguous="earliest", non_existent="null")
        return pl.coalesce(aware, local.dt.convert_time_zone(UTC)), pl.lit(False)
    # A cheap pattern test instead of a second parse: only rows that failed the aware parse matter.
    return aware, col.str.contains(_NAIVE_ISO)


def coerce_column(
    col: pl.Expr, name: str, target: pl.DataType, source: pl.DataType, assume_timezone: str | None = None
) -> tuple[pl.Expr, pl.Expr]:
    """Expression that converts raw column `col` of dtype `source` to the contract column `name` of `target`.

    Args:
        col: the raw column.
        name: contract column name (country and HS-code columns get normalised: upper case, no dots).
        target: contract dtype.
        source: dtype the column has in the raw frame (String for CSV).
        assume_timezone: IANA zone for timestamps written without an offset; None refuses them.

    Returns:
        (typed expression, timezone-missing flag expression). A value that cannot be converted becomes null;
        the caller compares with the raw value to report it.
    """
    no_flag = pl.lit(False)
    if source == pl.String and target != pl.String:
        col = col.str.strip_chars()
    if isinstance(target, pl.Datetime):
        if source == pl.String:
            return _parse_timestamp(col, assume_timezone)
        if isinstance(source, pl.Datetime):
            if source.time_zone is None:
                if assume_timezone is None:
                    return pl.lit(None, dtype=target), col.is_not_null()
                col = col.dt.replace_time_zone(assume_timezone, ambiguous="earliest", non_existent="null")
            return col.dt.convert_time_zone(UTC).dt.cast_time_unit("us"), no_flag
        if source == pl.Date:
            return col.cast(pl.Datetime("us")).dt.replace_time_zone(UTC), no_flag
        return pl.lit(None, dtype=target), no_flag
    if target == pl.Date:
        if source == pl.String:
            return col.str.to_date("%Y-%m-%d", strict=False), no_flag
        if isinstance(source, pl.Datetime):
            return col.dt.date(), no_flag
        return col.cast(pl.Date, strict=False), no_flag
    if target == pl.Boolean:
        if source == pl.String:
            low = col.str.to_lowercase()
            return (
                pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
            ), no_flag
        if source.is_numeric():
            return pl.when(col == 1).then(True).when(col == 0).then(False).otherwise(None), no_flag
        return col.cast(pl.Boolean, strict=False), no_flag
    if target.is_integer():
        if source == pl.String:
            return col.cast(target, strict=False), no_flag
        if source.is_float():  # 3.0 is 3; 3.7 is not an integer and must not be truncated
            return pl.when(col == col.floor()).then(col).otherwise(None).cast(target, strict=False), no_flag
        return col.cast(target, strict=False), no_flag
    if isinstance(target, pl.Enum):
        return col.cast(pl.String).str.strip_chars().cast(target, strict=False), no_flag
    if target == pl.String:
        text = col.cast(pl.String).str.strip_chars()
        if name == "hs_code":
            if source.is_integer():  # chapters 01-09 lose their leading zero in numeric files
                return text.str.zfill(6), no_flag
            return text.str.replace_all(r"[.\s]", ""), no_flag
        if name == "country" or name.endswith("_country"):
            return text.str.to_uppercase(), no_flag
        return text, no_flag
    return col.cast(target, strict=False), no_flag


# ---------------------------------------------------------------------------------------------------------
# Row rules
# ---------------------------------------------------------------------------------------------------------
def _type_rules(
    spec: TableSpec, raw: pl.DataFrame, assume_timezone: str | None
) -> tuple[list[pl.Expr], list[Rule]]:
    """Typed column expressions plus the rules that catch values the coercion could not convert."""
    typed: list[pl.Expr] = []
    rules: list[Rule] = []
    for c in spec.columns:
        raw_col = pl.col(_RAW + c.name)
        expr, tz_missing = coerce_column(raw_col, c.name, c.dtype, raw.schema[_RAW + c.name], assume_timezone)
        typed.append(expr.alias(c.name))
        rule = "vocabulary" if isinstance(c.dtype, pl.Enum) else "type"
        detail = RULE_DOCS[rule]
        if isinstance(c.dtype, pl.Enum):
            detail += ": " + ", ".join(c.dtype.categories.to_list())
        else:
            detail += f": expected {c.dtype}"
        tz_rule = ~(tz_missing & pl.col(c.name).is_null())
        rules.append(Rule("timezone_missing", c.name, tz_rule, RULE_DOCS["timezone_missing"]))
        rules.append(Rule(rule, c.name, ~(raw_col.is_not_null() & pl.col(c.name).is_null()), detail))
    return typed, rules


def _violations_long(df: pl.DataFrame, rules: list[Rule], flag_names: list[str]) -> pl.DataFrame:
    """One row per (input row, broken rule), in rule order."""
    parts = [
        df.filter(pl.col(flag)).select(
            ROW,
            SOURCE,
            pl.lit(i, dtype=pl.Int32).alias("__order"),
            pl.lit(rule.column).alias("column"),
            pl.lit(rule.rule).alias("rule"),
            pl.lit(rule.detail).alias("detail"),
        )
        for i, (rule, flag) in enumerate(zip(rules, flag_names, strict=True))
    ]
    return pl.concat(parts) if parts else pl.DataFrame()


def _quarantine_rows(table: str, violations: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """Collapse (row, rule) violations to one quarantine row per input row, with raw values."""
    if violations.is_empty():
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    raw_cols = [c for c in raw.columns if c.startswith(_RAW)]
    rejected = violations.select(SOURCE, ROW).unique()
    raw_text = raw.join(rejected, on=[SOURCE, ROW], how="semi").select(
        SOURCE,
        ROW,
        pl.struct([pl.col(c).alias(c.removeprefix(_RAW)) for c in raw_cols])
        .struct.json_encode()
        .alias("raw_row"),
        *[pl.col(c).cast(pl.String).alias(c) for c in raw_cols],
    )
    per_row = (
        violations.sort(SOURCE, ROW, "__order")
        .group_by(SOURCE, ROW, maintain_order=True)
        .agg(
            pl.col("column").first(),
            pl.col("rule").first(),
            pl.col("detail").first(),
            (pl.col("rule") + ":" + pl.col("column")).alias("violations"),
        )
        .join(raw_text, on=[SOURCE, ROW], how="left")
    )
    raw_value = pl.lit(None, dtype=pl.String)
    for c in raw_cols:
        name = c.removeprefix(_RAW)
        raw_value = pl.when(pl.col("column") == name).then(pl.col(c)).otherwise(raw_value)
    return per_row.select(
        pl.lit(table).alias("table"),
        pl.col(SOURCE).cast(pl.String).alias("source_file"),
        pl.col(ROW).cast(pl.Int64).alias("row_number"),
        "column",
        "rule",
        raw_value.alias("raw_value"),
        "detail",
        "violations",
        "raw_row",
    )


# ---------------------------------------------------------------------------------------------------------
# Table rules (several rows)
# ---------------------------------------------------------------------------------------------------------
def _duplicate_flag(spec: TableSpec) -> pl.Expr:
    key = pl.col(spec.key[0]) if len(spec.key) == 1 else pl.struct(list(spec.key))
    return ~key.is_first_distinct()


_RANK_BY_CODE = {code: EVENT_RANK[event] for code, event in enumerate(EVENT_TYPES)}
_TERMINAL_CODES = [EVENT_TYPES.index(e) for e in TERMINAL_EVENTS]


def _event_flags(events: pl.DataFrame, shipments: pl.DataFrame | None) -> pl.DataFrame:
    """Flags for milestone events: scanned before creation, out of order, after the terminal event.

    Scans are checked per shipment x leg (`leg_id`; a null leg is one chain), so parallel or successive
    legs of one shipment do not conflict. Out-of-order events are blamed on the smaller side: either the
    scans whose rank is below an earlier scan's, or those above a later scan's, whichever flags fewer rows
    for that chain. Works on integer chain numbers and event codes so that ten million scans take seconds.
    """
    has_legs = "leg_id" in events.columns and events.get_column("leg_id").null_count() < events.height
    leg = pl.col("leg_id").rank("dense").fill_null(0) if has_legs else pl.lit(0)
    df = events.select(
        "__i",
        "shipment_id",
        "event_at",
        pl.col("event").to_physical().alias("__code"),
        leg.cast(pl.Int64).alias("__leg"),
    )
    if shipments is not None:
        parent = shipments.select(
            "shipment_id",
            pl.int_range(pl.len(), dtype=pl.Int64).alias("__sid"),
            pl.col("created_at").alias("__created_at"),
        )
        df = df.join(parent, on="shipment_id", how="left")
    else:
        df = df.with_columns(
            pl.col("shipment_id").rank("dense").cast(pl.Int64).alias("__sid"),
            pl.lit(None, dtype=events.schema["event_at"]).alias("__created_at"),
        )
    if has_legs:  # one integer per shipment x leg (a null leg is a chain of its own)
        df = df.with_columns((pl.col("__sid") * (pl.col("__leg").max() + 1) + pl.col("__leg")).alias("__sid"))
    rank = pl.col("__code").replace_strict(_RANK_BY_CODE, return_dtype=pl.Int8)
    df = df.with_columns(rank.alias("__rank")).sort("__sid", "event_at", "__rank", "__i")
    by = "__sid"
    # Running max/min of the rank within each shipment without a window: rows are sorted by shipment, so
    # sid * 16 + rank only grows from one shipment to the next and a global cum_max/cum_min stays inside it.
    base = pl.col(by) * 16
    enc = base + pl.col("__rank")
    same_prev = pl.col(by) == pl.col(by).shift(1)
    same_next = pl.col(by) == pl.col(by).shift(-1)
    prev_max = (enc.cum_max() - base).shift(1)
    next_min = (enc.cum_min(reverse=True) - base).shift(-1)
    df = df.with_columns(
        (same_prev & (pl.col("__rank") < prev_max)).fill_null(False).alias("__late"),
        (same_next & (pl.col("__rank") > next_min)).fill_null(False).alias("__early"),
    )
    use_late = pl.col("__late").sum().over(by) <= pl.col("__early").sum().over(by)
    df = df.with_columns(pl.when(use_late).then("__late").otherwise("__early").alias("__order_bad"))
    terminal = pl.col("__code").is_in(_TERMINAL_CODES) & ~pl.col("__order_bad")
    return df.select(
        "__i",
        (pl.col("event_at") < pl.col("__created_at")).fill_null(False).alias("__before_created"),
        "__order_bad",
        (terminal & (terminal.cast(pl.Int32).cum_sum().over(by) > 1)).alias("__after_terminal"),
    )


def _table_rules(
    spec: TableSpec, passed: pl.DataFrame, parents: Mapping[str, pl.DataFrame]
) -> tuple[pl.DataFrame, list[Rule], list[str]]:
    """Add the multi-row rule flags to the rows that passed the row rules."""
    rules = [
        Rule(
            "duplicate_key",
            spec.key[-1],
            pl.lit(True),
            RULE_DOCS["duplicate_key"] + f" ({', '.join(spec.key)})",
        )
    ]
    flags = ["__dup"]
    # Rows are in input order (files in name order, rows in file order): the first occurrence is kept.
    passed = passed.with_columns(_duplicate_flag(spec).alias("__dup"))
    for column, parent, parent_col in spec.foreign_keys:
        if parent not in parents:
            continue
        known = parents[parent].get_column(parent_col).unique().implode()
        flag = f"__fk_{column}"
        passed = passed.with_columns(
            (pl.col(column).is_not_null() & ~pl.col(column).is_in(known)).alias(flag)
        )
        rules.append(
            Rule("foreign_key", column, pl.lit(True), RULE_DOCS["foreign_key"] + f": {parent}.{parent_col}")
        )
        flags.append(flag)
    if spec.name == "shipment_events":
        passed = passed.with_row_index("__i")
        ok = passed.filter(~pl.any_horizontal(flags))
        legs = ["leg_id"] if "leg_id" in ok.columns else []
        ev = _event_flags(
            ok.select("__i", "shipment_id", "event", "event_at", *legs), parents.get("shipments")
        )
        passed = (
            passed.join(ev, on="__i", how="left")
            .drop("__i")
            .with_columns(pl.col("__before_created", "__order_bad", "__after_terminal").fill_null(False))
        )
        for rule, column, flag in (
            ("event_before_created", "event_at", "__before_created"),
            ("event_order", "event", "__order_bad"),
            ("event_after_terminal", "event", "__after_terminal"),
        ):
            rules.append(Rule(rule, column, pl.lit(True), RULE_DOCS[rule]))
            flags.append(flag)
    return passed, rules, flags


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------
def validate_table(
    raw: pl.DataFrame,
    spec: TableSpec,
    parents: Mapping[str, pl.DataFrame] | None = None,
    assume_timezone: str | None = None,
) -> TableValidation:
    """Coerce and validate one table.

    Args:
        raw: the raw rows, with the contract's column names (extra columns are ignored unless they carry
            the spec's passthrough prefix), plus `SOURCE` and `ROW` columns identifying each row (added
            with file name "memory" and 1-based numbers when absent).
        spec: the table's contract spec.
        parents: already validated parent tables by name, for foreign keys and event checks.
        assume_timezone: IANA zone for timestamps written without an offset; None quarantines them.

    Returns:
        The valid rows (contract dtypes, sorted by `spec.sort_by`; an omittable column absent from `raw`
        is absent from them too) and the quarantine.

    Raises:
        ValueError: a required column is missing (naming the columns and their expected types).
    """
    parents = parents or {}
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        expected = ", ".join(f"{c} ({spec.column(c).dtype})" for c in missing)
        raise ValueError(f"table {spec.name}: missing required column(s) {expected}")
    # An omittable column the source left out stays out (its features are not built); see ColumnSpec.
    spec = spec.for_columns(raw.columns)
    if SOURCE not in raw.columns:
        raw = raw.with_columns(pl.lit("memory").alias(SOURCE))
    if ROW not in raw.columns:
        raw = raw.with_row_index(ROW, offset=1)
    passthrough = (
        [c for c in raw.columns if c.startswith(spec.passthrough_prefix)] if spec.passthrough_prefix else []
    )
    raw = raw.select(
        SOURCE,
        pl.col(ROW).cast(pl.Int64),
        *[
            (pl.col(c.name) if c.name in raw.columns else pl.lit(None, dtype=c.dtype)).alias(_RAW + c.name)
            for c in spec.columns
        ],
        *[pl.col(c).cast(pl.String) for c in passthrough],
    )
    typed_exprs, type_rules = _type_rules(spec, raw, assume_timezone)
    out_cols = [c.name for c in spec.columns] + passthrough
    # Typed columns only (the raw text stays in `raw`, looked up again for quarantined rows only).
    typed = raw.select(
        SOURCE, ROW, *typed_exprs, *passthrough, *[pl.col(_RAW + c.name) for c in spec.columns]
    )
    rules = type_rules + row_rules(spec)
    flag_names = [f"__f{i}" for i in range(len(rules))]
    flags = typed.select(
        SOURCE, ROW, *[(~r.check).fill_null(False).alias(f) for r, f in zip(rules, flag_names, strict=True)]
    )
    violations = _violations_long(flags, rules, flag_names)
    failed = flags.select(pl.any_horizontal(flag_names) if flag_names else pl.lit(False)).to_series()
    del flags
    passed = typed.select(SOURCE, ROW, *out_cols).filter(~failed)
    del typed

    passed, t_rules, t_flags = _table_rules(spec, passed, parents)
    t_violations = _violations_long(passed, t_rules, t_flags)
    t_failed = pl.any_horizontal(t_flags)
    valid = passed.filter(~t_failed)

    found = [v for v in (violations, t_violations) if not v.is_empty()]
    all_violations = pl.concat(found) if found else pl.DataFrame()
    quarantine = _quarantine_rows(spec.name, all_violations, raw)
    valid = valid.select(out_cols).sort([*spec.sort_by, *spec.key], maintain_order=True)
    return TableValidation(valid=valid, quarantine=quarantine, rows_in=raw.height)
