"""Stage: ingest (mapping-file adapter). A flat export + a mapping file -> contract tables + rejected rows.

`apply_mapping` is pure: the source frame and a parsed mapping (`features.sources.mapping_spec`) in, an
`AdapterResult` out (contract tables with exact contract dtypes, the rejected source rows, notes), like the
code adapters `scms`, `online_retail` and `kcs`. `read_mapping` and `read_flat` are the only functions here
that touch the disk (they read; nothing is written here: `transitcast adapt mapping` writes atomically).

Per source row, every rule of every table is evaluated; a row that breaks one (a timestamp that does not
parse, an unknown country name, a required value that is empty, a value outside a vocabulary) is rejected
with its first failure, from every table, so that `rows_in == rows_mapped + rows_rejected` and no table
refers to a row another table dropped. `group_by` makes one output row per key (several source rows per
shipment): a group is mapped from all its rows or rejected with all of them (`group_rejected`).
`docs/adapters.md` has the keys of a mapping file and two worked examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from features.contract.rules import RULE_DOCS
from features.contract.schema import EventType, TableSpec
from features.contract.validation import coerce_column
from features.sources import REJECTED_SCHEMA, AdapterResult, as_rejected
from features.sources.mapping_rules import ROW, Check, Compiled, RuleContext, compile_rule
from features.sources.mapping_spec import (
    LoadedMapping,
    Loc,
    MappingError,
    Rule,
    TableMapping,
    check_zone,
    parse_mapping,
)
from features.sources.mapping_targets import EVENT, EVENT_AT, EVENTS_TABLE, check_table_mapping

__all__ = [
    "EVENTS_TABLE",
    "LoadedMapping",
    "MappingError",
    "adapt_flat_file",
    "apply_mapping",
    "parse_mapping",
    "read_flat",
    "read_mapping",
]


@dataclass
class _Plan:
    """One contract table, compiled: the column expressions of each part (one part per event, or one)."""

    spec: TableSpec
    mapping: TableMapping
    parts: list[tuple[pl.Expr | None, dict[str, pl.Expr]]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: dict[str, pl.Expr] = field(default_factory=dict)


def read_mapping(path: Path) -> LoadedMapping:
    """Read and validate a mapping file (YAML).

    Raises:
        MappingError: the file is missing, unreadable, or not a valid mapping (see `parse_mapping`).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(
            f"{path}: cannot read the mapping file ({exc}). Fix: pass an existing YAML file"
        ) from None
    return parse_mapping(text, str(path))


def read_flat(path: Path, separator: str = ",") -> pl.DataFrame:
    """Read a flat source file: CSV (every column as text, so nothing is guessed), or Parquet as saved.

    Args:
        path: a `.csv`, `.csv.gz`, `.tsv` or `.parquet` file, or a folder holding exactly one Parquet file.
        separator: the CSV field separator (the mapping's `source.separator`).

    Raises:
        ValueError: the file does not exist, has another suffix, or cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if len(files) != 1:
            raise ValueError(f"{path}: expected one .parquet file in the folder, found {len(files)}")
        path = files[0]
    name = path.name.lower()
    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    try:
        if name.endswith(".parquet"):
            return pl.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            sep = "\t" if name.endswith(".tsv") else separator
            return pl.read_csv(path, infer_schema=False, separator=sep, encoding="utf8-lossy")
    except Exception as exc:  # polars raises several error types for unreadable files
        raise ValueError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    raise ValueError(f"{path}: not a .csv, .csv.gz, .tsv or .parquet file")


# ---------------------------------------------------------------------------------------------------------
# Compiling
# ---------------------------------------------------------------------------------------------------------
def _coerce(
    compiled: Compiled, spec: TableSpec, column: str, ctx: RuleContext
) -> tuple[pl.Expr, list[Check]]:
    """The compiled value cast to the contract dtype, with the checks that reject rows it cannot hold."""
    name = f"{spec.name}.{column}"
    target = spec.schema.get(column, pl.String())
    value = compiled.value
    expr, tz_missing = coerce_column(value, column, target, ctx.dtype(value), ctx.zone)
    blame = ", ".join(compiled.sources) or name
    raw = value.cast(pl.String)
    rule = "vocabulary" if isinstance(target, pl.Enum) else "type"
    expected = ", ".join(target.categories.to_list()) if isinstance(target, pl.Enum) else f"expected {target}"
    checks = [
        *compiled.checks,
        Check(
            "timezone_missing",
            blame,
            tz_missing & expr.is_null(),
            raw,
            pl.lit(f"{name}: no UTC offset; set `source.timezone` in the mapping or pass --assume-timezone"),
        ),
        Check(
            rule,
            blame,
            value.is_not_null() & expr.is_null(),
            raw,
            pl.lit(f"{name}: {RULE_DOCS[rule]}: {expected}"),
        ),
    ]
    nullable = spec.column(column).nullable if column in spec.schema else True
    if not nullable:
        detail = f"{name}: {RULE_DOCS['not_null']} (made from {blame})"
        sources = [pl.col(c).cast(pl.String).fill_null("null") for c in compiled.sources]
        empty = pl.concat_str(sources, separator=" | ") if sources else raw
        checks.append(Check("not_null", blame, expr.is_null(), empty, pl.lit(detail)))
    return expr, checks


def _compile_columns(
    plan: _Plan, rules: Mapping[str, Rule], loc: Loc, ctx: RuleContext, when: pl.Expr | None
) -> dict[str, pl.Expr]:
    out: dict[str, pl.Expr] = {}
    for column, rule in rules.items():
        compiled = compile_rule(rule, (*loc, column), ctx, f"{plan.spec.name}.{column}")
        out[column], checks = _coerce(compiled, plan.spec, column, ctx)
        for c in checks:  # an event's columns only matter on rows that have the event
            failed = c.failed if when is None else when & c.failed
            plan.checks.append(Check(c.rule, c.column, failed, c.raw, c.detail))
        for key, flag in compiled.notes.items():
            plan.notes[key] = flag if when is None else when & flag
    return out


def _plan(name: str, tm: TableMapping, ctx: RuleContext) -> _Plan:
    plan = _Plan(check_table_mapping(ctx.loaded, name, tm), tm)
    loc: Loc = ("tables", name)
    if not tm.events:
        plan.parts.append((None, _compile_columns(plan, tm.columns, (*loc, "columns"), ctx, None)))
        return plan
    for i, ev in enumerate(tm.events):
        at_loc: Loc = (*loc, "events", i, "at")
        at, checks = _coerce(compile_rule(ev.at, at_loc, ctx, f"{name}.{EVENT_AT}"), plan.spec, EVENT_AT, ctx)
        # An empty timestamp is not a rejection: the event has not happened (yet).
        plan.checks.extend(c for c in checks if c.rule != "not_null")
        emitted = at.is_not_null()
        shared = _compile_columns(
            plan,
            {k: v for k, v in tm.columns.items() if k not in ev.columns},
            (*loc, "columns"),
            ctx,
            emitted,
        )
        own = _compile_columns(plan, ev.columns, (*loc, "events", i, "columns"), ctx, emitted)
        columns = {**shared, **own, EVENT: pl.lit(ev.event).cast(EventType), EVENT_AT: at}
        plan.parts.append((emitted, columns))
        plan.notes[f"events:{ev.event}"] = emitted
    return plan


def _derive(ctx: RuleContext) -> tuple[RuleContext, list[Check]]:
    """Add the derived columns to the frame, in order, remembering the source columns each is made of."""
    checks: list[Check] = []
    lineage = dict(ctx.lineage)
    for name, rule in ctx.loaded.spec.derive.items():
        if name in ctx.frame.columns:
            raise ctx.loaded.error(
                ("derive", name),
                f"{name!r} is already a source column",
                "give the derived column another name",
            )
        compiled = compile_rule(rule, ("derive", name), ctx, f"derive.{name}")
        checks.extend(compiled.checks)
        lineage[name] = compiled.sources
        ctx = RuleContext(ctx.loaded, ctx.frame.with_columns(compiled.value.alias(name)), ctx.zone, lineage)
    return ctx, checks


# ---------------------------------------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------------------------------------
def _rejections(frame: pl.DataFrame, checks: list[Check]) -> pl.DataFrame:
    """One row per source row that breaks a check: its first failure (`REJECTED_SCHEMA` + nothing else)."""
    if not checks:
        return pl.DataFrame(schema=REJECTED_SCHEMA)
    first = pl.coalesce([pl.when(c.failed.fill_null(False)).then(pl.lit(i)) for i, c in enumerate(checks)])
    hit = frame.with_columns(first.alias("__first")).filter(pl.col("__first").is_not_null())
    raw = pl.lit(None, dtype=pl.String)
    detail = pl.lit(None, dtype=pl.String)
    for i, c in reversed(list(enumerate(checks))):
        mine = pl.col("__first") == i
        raw = pl.when(mine).then(c.raw.cast(pl.String)).otherwise(raw)
        detail = pl.when(mine).then(c.detail).otherwise(detail)
    return as_rejected(
        hit.select(
            pl.col(ROW).alias("source_row"),
            pl.col("__first")
            .replace_strict({i: c.column for i, c in enumerate(checks)}, return_dtype=pl.String)
            .alias("column"),
            pl.col("__first")
            .replace_strict({i: c.rule for i, c in enumerate(checks)}, return_dtype=pl.String)
            .alias("rule"),
            raw.alias("raw_value"),
            detail.alias("detail"),
        )
    )


def _group_rejections(frame: pl.DataFrame, plan: _Plan, rejected: pl.DataFrame) -> pl.DataFrame:
    """Rows of a group (same `group_by` key) that holds a rejected row, not yet rejected themselves."""
    by = list(plan.mapping.group_by)
    columns = plan.parts[0][1]
    keys = frame.select(ROW, *[columns[c].alias(c) for c in by])
    bad = (
        keys.join(rejected.select(pl.col("source_row").alias(ROW), "rule"), on=ROW)
        .group_by(by)
        .agg(pl.col(ROW).min().alias("__bad_row"), pl.col("rule").first())
    )
    fresh = keys.join(bad, on=by).join(rejected.select(pl.col("source_row").alias(ROW)), on=ROW, how="anti")
    key_text = pl.concat_str([pl.col(c).cast(pl.String) for c in by], separator=" | ")
    return as_rejected(
        fresh.select(
            pl.col(ROW).alias("source_row"),
            pl.lit(f"{plan.spec.name}.{', '.join(by)}").alias("column"),
            pl.lit("group_rejected").alias("rule"),
            key_text.alias("raw_value"),
            pl.format(
                "{}: source row {} of the same {} was rejected ({})",
                pl.lit(plan.spec.name),
                "__bad_row",
                pl.lit(", ".join(by)),
                "rule",
            ).alias("detail"),
        )
    )


# ---------------------------------------------------------------------------------------------------------
# Output tables
# ---------------------------------------------------------------------------------------------------------
def _table(frame: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """The mapped rows of one table: contract columns in contract order, then `attr_*` passthrough columns.

    A column the mapping leaves out is added as nulls when it is nullable, and left out when it is an
    optional business column that must be set whenever present (the contract keeps it absent).
    """
    spec = plan.spec
    prefix = spec.passthrough_prefix
    mapped = {c for _, columns in plan.parts for c in columns}
    schema = {c.name: c.dtype for c in spec.columns if c.name in mapped or c.nullable}
    extra = [c for c in sorted(mapped) if prefix and c.startswith(prefix)]
    parts = []
    for emitted, columns in plan.parts:
        rows = frame if emitted is None else frame.filter(emitted)
        parts.append(
            rows.select(
                *[(columns[c] if c in columns else pl.lit(None)).cast(t).alias(c) for c, t in schema.items()],
                *[columns[c].cast(pl.String).alias(c) for c in extra],
            )
        )
    out = pl.concat(parts, how="vertical")
    tm = plan.mapping
    if tm.group_by:
        rest = [c for c in out.columns if c not in tm.group_by]
        aggs = [getattr(pl.col(c), tm.aggregate.get(c, "first"))() for c in rest]
        out = out.group_by(list(tm.group_by), maintain_order=True).agg(aggs)
        out = out.select(*[pl.col(c).cast(t) for c, t in schema.items()], *extra)
    elif tm.events:
        out = out.unique(maintain_order=True)  # several source rows of one shipment give one event
    return out.sort([*spec.sort_by, *spec.key], maintain_order=True)


def apply_mapping(
    frame: pl.DataFrame, loaded: LoadedMapping, *, assume_timezone: str | None = None
) -> AdapterResult:
    """Map a flat source frame into contract tables with a mapping file.

    Args:
        frame: the source rows, as `read_flat` returns them (CSV: all text).
        loaded: the parsed mapping (`read_mapping` / `parse_mapping`).
        assume_timezone: IANA zone of timestamps without a UTC offset; overrides `source.timezone` (a rule's
            own `timezone:` still wins for its column).

    Returns:
        The contract tables named in the mapping (exact contract dtypes, `attr_*` passthrough columns where
        the table has them), the rejected source rows (first failure each, `source_row` 1-based) and notes
        (`rows_in == rows_mapped + rows_rejected`, rejections by rule, rows per table and event, values
        that took a map's default).

    Raises:
        MappingError: the mapping does not fit the contract or the source (unknown table, target or source
            column, bad expression or time zone, a required contract column not mapped, a value missing from
            a map without a default, ...). The message names the file, line, key, rule and fix.
    """
    spec = loaded.spec
    if assume_timezone:
        zone: str | None = check_zone(assume_timezone, LoadedMapping(spec, "--assume-timezone"), ())
    else:
        zone = (
            check_zone(spec.source.timezone, loaded, ("source", "timezone")) if spec.source.timezone else None
        )
    nulls = list(spec.source.null_values)
    if nulls:
        frame = frame.with_columns(
            pl.when(pl.col(c).str.strip_chars().is_in(nulls)).then(None).otherwise(pl.col(c)).alias(c)
            for c, t in frame.schema.items()
            if t == pl.String
        )
    frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    ctx, checks = _derive(RuleContext(loaded, frame, zone))
    frame = ctx.frame
    plans = [_plan(name, tm, ctx) for name, tm in spec.tables.items()]
    rejected = _rejections(frame, checks + [c for p in plans for c in p.checks])
    grouped = [p for p in plans if p.mapping.group_by]
    while grouped:
        fresh = [_group_rejections(frame, p, rejected) for p in grouped]
        if not any(f.height for f in fresh):
            break
        rejected = as_rejected(pl.concat([rejected, *fresh]))
    mapped = frame.join(rejected.select(pl.col("source_row").alias(ROW)), on=ROW, how="anti")
    tables: dict[str, pl.DataFrame] = {p.spec.name: _table(mapped, p) for p in plans}
    notes = {"rows_in": frame.height, "rows_mapped": mapped.height, "rows_rejected": rejected.height}
    if frame.height != mapped.height + rejected.height:  # pragma: no cover - invariant
        raise RuntimeError("mapping row accounting broken")
    notes |= {
        f"rejected_rows:{r}": n for r, n in rejected.get_column("rule").value_counts(sort=True).iter_rows()
    }
    notes |= {f"table:{name}": t.height for name, t in tables.items()}
    flags = {k: v for p in plans for k, v in p.notes.items()}
    if flags:
        counts = mapped.select(v.fill_null(False).sum().alias(k) for k, v in flags.items()).row(0, named=True)
        notes |= {k: int(v) for k, v in counts.items()}
    return AdapterResult(tables=tables, rejected=rejected, notes=notes)


def adapt_flat_file(src: Path, mapping: Path, assume_timezone: str | None = None) -> AdapterResult:
    """Read a mapping file and a flat source file and map it (`transitcast adapt mapping`).

    Raises:
        MappingError: the mapping file is invalid or does not fit the source (nothing is mapped).
        ValueError: the source file cannot be read.
    """
    loaded = read_mapping(mapping)
    return apply_mapping(
        read_flat(src, loaded.spec.source.separator), loaded, assume_timezone=assume_timezone
    )
