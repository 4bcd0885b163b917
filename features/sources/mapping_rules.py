"""Stage: ingest (mapping-file adapter). One column rule of a mapping file -> a Polars expression + checks.

Reads and writes nothing. `compile_rule` turns a rule (`features.sources.mapping_spec`) into the expression
that computes the value from the source frame and the `Check`s whose failure sends a source row to the
rejected output (a timestamp that does not parse, a country name that is unknown, ...). Mistakes in the
mapping itself (a source column that does not exist, an expression that does not parse, a naive timestamp
without a time zone, a value missing from a map without a default) raise a `MappingError` instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import polars as pl

from features.sources.country_names import available_languages, lookup_country
from features.sources.mapping_spec import (
    ColumnRule,
    ConstRule,
    CountryRule,
    DateRule,
    DatetimeRule,
    LoadedMapping,
    Loc,
    MapRule,
    Rule,
    Scalar,
    SqlRule,
    check_zone,
)

__all__ = ["MAPPING_RULE_DOCS", "ROW", "Check", "Compiled", "RuleContext", "compile_rule", "scalar_text"]

UTC: Final = "UTC"
ROW: Final = "__source_row"
"""1-based row number of the source file (header excluded), carried through the mapping."""

MAPPING_RULE_DOCS: Final[dict[str, str]] = {
    "unparseable_datetime": "the value is not a timestamp in the rule's format (or a local time that does "
    "not exist in its time zone)",
    "unparseable_date": "the value is not a date in the rule's format",
    "value_not_in_map": "the value is not in the rule's `values` and the rule has no `default` "
    "(`unmapped: reject`)",
    "country_unknown": "no country has this name in the mapping's languages (add it to `countries.aliases`)",
    "country_ambiguous": "several countries match this name (add it to `countries.aliases`)",
    "group_rejected": "another source row of the same group (`group_by`) was rejected",
}
"""Rejection rules of the mapping adapter, besides the ingest rules it shares (`type`, `vocabulary`,
`timezone_missing`, `not_null`)."""


@dataclass(frozen=True)
class Check:
    """A reason to reject a source row.

    Attributes:
        rule: rule name written to the rejected output.
        column: the source column(s) blamed.
        failed: true on rows that break the rule.
        raw: the offending raw value, as text.
        detail: what is wrong and how to fix it (an expression, so it can name the value).
    """

    rule: str
    column: str
    failed: pl.Expr
    raw: pl.Expr
    detail: pl.Expr


@dataclass(frozen=True)
class Compiled:
    """A compiled rule: the value expression, its checks, and the source columns it reads."""

    value: pl.Expr
    checks: tuple[Check, ...] = ()
    sources: tuple[str, ...] = ()
    notes: dict[str, pl.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleContext:
    """What compiling a rule needs: the mapping (for messages), the frame so far, the default time zone."""

    loaded: LoadedMapping
    frame: pl.DataFrame
    zone: str | None
    lineage: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def dtype(self, expr: pl.Expr) -> pl.DataType:
        """The dtype `expr` has on the frame."""
        return self.frame.lazy().select(expr.alias("__v")).collect_schema()["__v"]

    def origins(self, names: Sequence[str]) -> tuple[str, ...]:
        """The source-file columns behind `names` (a derived column stands for the columns it was made of)."""
        found: dict[str, None] = {}
        for name in names:
            found |= dict.fromkeys(self.lineage.get(name, (name,)))
        return tuple(found)


def scalar_text(value: Scalar) -> str | None:
    """A mapping-file scalar as the text a CSV cell would hold (`true`, `3`, `1.5`); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return expr.str.strip_chars() if dtype == pl.String else expr.cast(pl.String)


def _source(ctx: RuleContext, name: str, loc: Loc) -> pl.Expr:
    columns = [c for c in ctx.frame.columns if c != ROW]
    if name in columns:
        return pl.col(name)
    close = difflib.get_close_matches(name, columns, n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    listed = ", ".join(repr(c) for c in columns[:12]) + (" ..." if len(columns) > 12 else "")
    raise ctx.loaded.error(
        loc,
        f"unknown source column {name!r}",
        f"{hint}write a column of the source file ({len(columns)}: {listed}) or a name under `derive:`",
    )


def _nullify(expr: pl.Expr, values: Sequence[str]) -> pl.Expr:
    return pl.when(expr.is_in(list(values))).then(None).otherwise(expr) if values else expr


def _failed_parse(rule: str, name: str, text: pl.Expr, value: pl.Expr, detail: str) -> Check:
    return Check(rule, name, text.is_not_null() & value.is_null(), text, pl.lit(detail))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _compile_sql(rule: SqlRule, loc: Loc, ctx: RuleContext) -> Compiled:
    try:
        expr = pl.sql_expr(rule.sql)
    except Exception as exc:  # polars raises SQLInterfaceError/SQLSyntaxError
        raise ctx.loaded.error(
            loc,
            f"bad expression {rule.sql!r}: {_first_line(exc)}",
            "write a Polars SQL expression (docs/adapters.md)",
        ) from None
    roots = expr.meta.root_names()
    for name in roots:
        _source(ctx, name, loc)
    try:
        ctx.frame.select(expr.alias("__v"))
    except Exception as exc:  # a type error, or a CAST of a value that is not a number, shows when evaluated
        raise ctx.loaded.error(
            loc,
            f"bad expression {rule.sql!r}: {_first_line(exc)}",
            "check the types of the columns it uses: CSV columns are text, CAST(x AS DOUBLE) stops at a "
            "value that is not a number, TRY_CAST makes it null",
        ) from None
    return Compiled(expr, sources=tuple(dict.fromkeys(roots)))


def _parse_dtype(ctx: RuleContext, parsed: pl.Expr, loc: Loc, column: str, fmt: str | None) -> pl.DataType:
    """The dtype of a parse on the frame; a format Polars refuses is a `MappingError` at `format`."""
    try:
        return ctx.frame.select(parsed.alias("__v")).schema["__v"]
    except Exception as exc:  # polars raises ComputeError/InvalidOperationError for a bad format
        raise ctx.loaded.error(
            (*loc, "format"),
            f"cannot parse source column {column!r} with format {fmt!r}: {_first_line(exc)}",
            "use strftime codes such as %Y-%m-%d %H:%M:%S, %d.%m.%Y (%z for a UTC offset)",
        ) from None


def _compile_datetime(rule: DatetimeRule, loc: Loc, ctx: RuleContext, name: str) -> Compiled:
    col = _source(ctx, rule.datetime, loc)
    dtype = ctx.frame.schema[rule.datetime]
    zone = check_zone(rule.timezone, ctx.loaded, (*loc, "timezone")) if rule.timezone else ctx.zone
    text = _nullify(_text(col, dtype), rule.null_values)
    if dtype == pl.String:
        parsed = text.str.to_datetime(rule.format, strict=False, time_unit="us")
        parsed_dtype = _parse_dtype(ctx, parsed, loc, rule.datetime, rule.format)
    elif isinstance(dtype, pl.Datetime | pl.Date):
        parsed, parsed_dtype = col.cast(pl.Datetime("us", getattr(dtype, "time_zone", None))), dtype
        zone = zone or (UTC if dtype == pl.Date else None)  # a date is 00:00 UTC, as in the code adapters
    else:
        raise ctx.loaded.error(
            loc,
            f"source column {rule.datetime!r} is {dtype}, not text or a timestamp",
            "use `sql:` to convert it",
        )
    if getattr(parsed_dtype, "time_zone", None) is None:
        if zone is None:
            raise ctx.loaded.error(
                loc,
                f"source column {rule.datetime!r} holds timestamps without a UTC offset and no zone is set",
                "set `source: {timezone: ZONE}` in the mapping, `timezone:` on this rule, or pass "
                "--assume-timezone ZONE (or parse an offset with %z)",
            )
        parsed = parsed.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    value = parsed.dt.convert_time_zone(UTC).dt.cast_time_unit("us")
    fmt = f"format {rule.format!r}" if rule.format else "an ISO-like format"
    where = f" (or a local time that does not exist in {zone})" if zone else ""
    detail = f"{name}: not a timestamp in {fmt}{where}; fix the value, or the rule's format/null_values"
    return Compiled(
        value, (_failed_parse("unparseable_datetime", rule.datetime, text, value, detail),), (rule.datetime,)
    )


def _compile_date(rule: DateRule, loc: Loc, ctx: RuleContext, name: str) -> Compiled:
    col = _source(ctx, rule.date, loc)
    dtype = ctx.frame.schema[rule.date]
    text = _nullify(_text(col, dtype), rule.null_values)
    if dtype == pl.String:
        value = text.str.to_date(rule.format, strict=False)
        _parse_dtype(ctx, value, loc, rule.date, rule.format)
    elif isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and ctx.zone is not None:
            col = col.dt.convert_time_zone(ctx.zone)  # the local date where the zone is known
        value = col.dt.date()
    elif dtype == pl.Date:
        value = col
    else:
        raise ctx.loaded.error(
            loc, f"source column {rule.date!r} is {dtype}, not text or a date", "use `sql:` to convert it"
        )
    fmt = f"format {rule.format!r}" if rule.format else "an ISO-like format"
    detail = f"{name}: not a date in {fmt}; fix the value, or the rule's format/null_values"
    return Compiled(value, (_failed_parse("unparseable_date", rule.date, text, value, detail),), (rule.date,))


def _compile_map(rule: MapRule, loc: Loc, ctx: RuleContext, name: str) -> Compiled:
    col = _source(ctx, rule.map, loc)
    text = col.cast(pl.String)
    table = {k: scalar_text(v) for k, v in rule.values.items()}
    unmapped = text.is_not_null() & ~text.is_in(list(table))
    if "default" in rule.model_fields_set:
        value = text.replace_strict(table, default=scalar_text(rule.default), return_dtype=pl.String)
        return Compiled(value, sources=(rule.map,), notes={f"map_default:{name}": unmapped})
    value = text.replace_strict(table, default=None, return_dtype=pl.String)
    if rule.unmapped == "reject":
        detail = pl.format(
            "{}: {} is not in the map; add it under `values:` or set `default:`", pl.lit(name), text
        )
        return Compiled(value, (Check("value_not_in_map", rule.map, unmapped, text, detail),), (rule.map,))
    missing = (
        ctx.frame.filter(unmapped)
        .group_by(text.alias("value"))
        .agg(pl.len().alias("rows"), pl.col(ROW).min().alias("first_row"))
        .sort("rows", "value", descending=[True, False])
    )
    if missing.height:
        shown = ", ".join(
            f"{r['value']!r} ({r['rows']} row{'s' if r['rows'] > 1 else ''}, first row {r['first_row']})"
            for r in missing.head(5).iter_rows(named=True)
        )
        more = f" and {missing.height - 5} more" if missing.height > 5 else ""
        raise ctx.loaded.error(
            (*loc, "values"),
            f"source column {rule.map!r} has values that are not in the map: {shown}{more}",
            "add them under `values:`, set `default:`, or `unmapped: reject` to send those rows to the "
            "rejected output",
        )
    return Compiled(value, sources=(rule.map,))


def _compile_country(rule: CountryRule, loc: Loc, ctx: RuleContext, name: str) -> Compiled:
    col = _source(ctx, rule.country, loc)
    spec = ctx.loaded.spec.countries
    unknown_langs = [lang for lang in spec.languages if lang not in available_languages()]
    if unknown_langs:
        raise ctx.loaded.error(
            ("countries", "languages"),
            f"no country names in language(s) {', '.join(unknown_langs)}",
            f"use pycountry locale names such as en, de, fr, es, pt, pt_BR, zh_CN "
            f"({len(available_languages())} known)",
        )
    text = _nullify(_text(col, ctx.frame.schema[rule.country]), rule.null_values)
    names = ctx.frame.select(text.unique().drop_nulls()).to_series().to_list()
    matches = {n: lookup_country(n, spec.languages, spec.aliases) for n in names}
    value = text.replace_strict({n: m.code for n, m in matches.items()}, default=None, return_dtype=pl.String)
    langs = ", ".join(spec.languages)
    ambiguous = {
        n: f"{name}: {n!r} matches several countries ({', '.join(m.candidates)}); add it to countries.aliases"
        for n, m in matches.items()
        if m.kind == "ambiguous"
    }
    unknown = [n for n, m in matches.items() if m.kind == "unknown"]
    checks = (
        Check(
            "country_ambiguous",
            rule.country,
            text.is_in(list(ambiguous)),
            text,
            text.replace_strict(ambiguous, default=None, return_dtype=pl.String),
        ),
        Check(
            "country_unknown",
            rule.country,
            text.is_in(unknown),
            text,
            pl.lit(
                f"{name}: not a country name in {langs}; add it to countries.aliases or countries.languages"
            ),
        ),
    )
    return Compiled(value, checks, (rule.country,))


def compile_rule(rule: Rule, loc: Loc, ctx: RuleContext, name: str) -> Compiled:
    """Compile one column rule.

    Args:
        rule: the rule from the mapping file.
        loc: its key path in the mapping file (for messages).
        ctx: the mapping, the source frame (with the derived columns so far) and the default time zone.
        name: what the rule produces, for messages (`shipments.created_at`, `derive.po_date`).

    Returns:
        The value expression, the checks that reject rows, and the source-file columns it is made of
        (through the derived columns it reads).

    Raises:
        MappingError: unknown source column, bad expression or format, bad time zone, a naive timestamp
            without a zone, values missing from a map that has no default, unknown country-name language.
    """
    if isinstance(rule, ColumnRule):
        compiled = Compiled(_source(ctx, rule.column, loc), sources=(rule.column,))
    elif isinstance(rule, ConstRule):
        compiled = Compiled(pl.lit(scalar_text(rule.const), dtype=pl.String))
    elif isinstance(rule, SqlRule):
        compiled = _compile_sql(rule, loc, ctx)
    elif isinstance(rule, DatetimeRule):
        compiled = _compile_datetime(rule, loc, ctx, name)
    elif isinstance(rule, DateRule):
        compiled = _compile_date(rule, loc, ctx, name)
    elif isinstance(rule, MapRule):
        compiled = _compile_map(rule, loc, ctx, name)
    else:
        compiled = _compile_country(rule, loc, ctx, name)
    return replace(compiled, sources=ctx.origins(compiled.sources))
