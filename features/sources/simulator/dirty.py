"""Stage: simulate. Inject the mistakes real exports contain, to exercise (and demonstrate) the quarantine.

Reads and writes nothing. `inject_errors(tables, rate, rng)` turns the simulator's clean tables into text
tables (as a CSV export would be) with a share `rate` of rows broken in known ways: unreadable numbers,
negative weights, unknown countries, deliveries before creation, duplicate ids, unknown milestone names,
scans of unknown shipments, bad HS codes, negative sales, receipts before shipment. It returns the list of
what it broke (table, 1-based row number, column, rule), so a test can check that ingest quarantines exactly
those rows (plus the rows that depend on them through foreign keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["INJECTED_SCHEMA", "inject_errors"]

INJECTED_SCHEMA = pl.Schema(
    {"table": pl.String(), "row_number": pl.Int64(), "column": pl.String(), "rule": pl.String()}
)


@dataclass(frozen=True)
class _Fault:
    column: str
    rule: str
    value: Callable[[pl.DataFrame], pl.Expr]  # the broken text value, from the (text) row
    applies: pl.Expr | None = None  # only rows where this holds can get the fault


def _ts_minus_day(col: str) -> Callable[[pl.DataFrame], pl.Expr]:
    def value(_: pl.DataFrame) -> pl.Expr:
        ts = pl.col(col).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC")
        return (ts - pl.duration(days=1)).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")

    return value


def _lit(text: str) -> Callable[[pl.DataFrame], pl.Expr]:
    return lambda _: pl.lit(text)


_FAULTS: dict[str, list[_Fault]] = {
    "shipments": [
        _Fault("weight_kg", "type", _lit("n/a")),
        _Fault(
            "weight_kg",
            "non_negative",
            lambda _: pl.lit("-") + pl.col("weight_kg"),
            applies=pl.col("weight_kg").cast(pl.Float64, strict=False) > 0,
        ),
        _Fault("destination_country", "iso2_country", _lit("XX")),
        _Fault(
            "delivered_at",
            "delivered_after_created",
            _ts_minus_day("created_at"),
            applies=pl.col("delivered_at").is_not_null(),
        ),
    ],
    "shipment_events": [
        _Fault("event", "vocabulary", _lit("teleported")),
        _Fault("shipment_id", "foreign_key", lambda _: pl.lit("UNKNOWN-") + pl.col("shipment_id")),
    ],
    "customs_declarations": [_Fault("hs_code", "hs_code_6_digits", _lit("12AB"))],
    "warehouse_sales": [_Fault("units_sold", "non_negative", _lit("-3"))],
    "replenishments": [
        _Fault(
            "received_at",
            "received_after_shipped",
            _ts_minus_day("shipped_at"),
            applies=pl.col("received_at").is_not_null(),
        )
    ],
}
_DUPLICATED = {"shipments": "shipment_id", "skus": "sku_id"}


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        if isinstance(t, pl.Datetime)
        else pl.col(c).cast(pl.String)
        for c, t in df.schema.items()
    )


def _break_table(
    name: str, df: pl.DataFrame, rate: float, rng: np.random.Generator
) -> tuple[pl.DataFrame, list[dict[str, object]]]:
    faults = [f for f in _FAULTS.get(name, []) if f.column in df.columns]  # dropped columns: nothing to break
    text = _as_text(df).with_row_index("__i")
    injected: list[dict[str, object]] = []
    taken: set[int] = set()
    per_fault = int(round(rate * df.height / max(len(faults) + (name in _DUPLICATED), 1)))
    for fault in faults:
        eligible = text.filter(fault.applies) if fault.applies is not None else text
        pool = np.setdiff1d(eligible["__i"].to_numpy(), np.fromiter(taken, dtype=np.int64))
        chosen = np.sort(rng.choice(pool, size=min(per_fault, pool.size), replace=False))
        taken.update(int(i) for i in chosen)
        hit = pl.col("__i").is_in(chosen.tolist())
        text = text.with_columns(
            pl.when(hit).then(fault.value(text)).otherwise(pl.col(fault.column)).alias(fault.column)
        )
        injected += [
            {"table": name, "row_number": int(i) + 1, "column": fault.column, "rule": fault.rule}
            for i in chosen
        ]
    if name in _DUPLICATED and per_fault:
        pool = np.setdiff1d(np.arange(df.height), np.fromiter(taken, dtype=np.int64))
        chosen = np.sort(rng.choice(pool, size=min(per_fault, pool.size), replace=False))
        copies = text.filter(pl.col("__i").is_in(chosen.tolist()))
        injected += [
            {
                "table": name,
                "row_number": df.height + k + 1,
                "column": _DUPLICATED[name],
                "rule": "duplicate_key",
            }
            for k in range(copies.height)
        ]
        text = pl.concat([text, copies])
    return text.drop("__i"), injected


def inject_errors(
    tables: dict[str, pl.DataFrame], rate: float, rng: np.random.Generator
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Break a share `rate` of the rows of each table in known ways.

    Args:
        tables: clean contract tables.
        rate: share of rows to break per table (0 returns the tables unchanged).
        rng: random generator (the same seed breaks the same rows).

    Returns:
        (text tables with the broken rows, one row per injected fault: table, row_number, column, rule).
    """
    if rate <= 0:
        return tables, pl.DataFrame(schema=INJECTED_SCHEMA)
    out: dict[str, pl.DataFrame] = {}
    injected: list[dict[str, object]] = []
    for name in sorted(tables):
        out[name], faults = _break_table(name, tables[name], rate, rng)
        injected += faults
    return out, pl.DataFrame(injected, schema=INJECTED_SCHEMA).sort("table", "row_number")
