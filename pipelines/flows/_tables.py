"""Stage: orchestration (input). What the flows read: validated tables, the oracle, the default week.

Reads `<data>/validated/<table>.parquet` and `<data>/raw/oracle/<name>.parquet` (file names from
`pipelines.catalog`); writes nothing. One loader for every flow (shipment models, demand, plan, calibrate),
so "run ingest first" reads the same everywhere; `weekly_history` is the recent weekly sales the forecast
fan chart and the planner report show (the weekly panel of `features.demand_panel`, cut to a window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from features.demand_panel import SERIES, build_weekly_panel
from pipelines.catalog import oracle_file, table_file

__all__ = [
    "DEMAND_TABLES",
    "HISTORY_WEEKS",
    "SHIPMENT_TABLES",
    "load_oracle",
    "load_tables",
    "week_after_last_sale",
    "weekly_history",
]

SHIPMENT_TABLES = ("shipments", "shipment_events", "customs_declarations", "lanes")
DEMAND_TABLES = ("warehouse_sales", "skus", "warehouses")
HISTORY_WEEKS = 26


def load_tables(
    validated_dir: Path, names: Sequence[str] = SHIPMENT_TABLES, *, required: Sequence[str] | None = None
) -> dict[str, pl.DataFrame]:
    """The validated contract tables among `names` that exist.

    Args:
        validated_dir: the catalog's validated folder.
        names: tables to read when present.
        required: tables that must exist (default: the first of `names`).

    Raises:
        FileNotFoundError: a required table is missing, naming it and the command that writes it.
    """
    for name in names[:1] if required is None else required:
        path = table_file(validated_dir, name)
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `transitcast ingest` (or `make demo`) first")
    files = {n: table_file(validated_dir, n) for n in names}
    return {n: pl.read_parquet(path) for n, path in files.items() if path.exists()}


def load_oracle(raw_dir: Path, name: str = "shipments") -> pl.DataFrame | None:
    """The simulator's truth `name` (`shipments`, `demand_weekly`) when the raw folder came from it."""
    path = oracle_file(raw_dir, name)
    return pl.read_parquet(path) if path.exists() else None


def week_after_last_sale(sales: pl.DataFrame) -> dt.date:
    """Monday of the week after the last `warehouse_sales` date: the default forecast and plan week.

    Raises:
        ValueError: the table is empty.
    """
    last = sales.get_column("date").max()
    if not isinstance(last, dt.date):
        raise ValueError("warehouse_sales is empty: nothing to forecast or plan from")
    return last + dt.timedelta(days=7 - last.weekday())


def weekly_history(sales: pl.DataFrame, before: dt.date, weeks: int = HISTORY_WEEKS) -> pl.DataFrame:
    """Weekly units per series over the `weeks` complete weeks before `before` (zero-filled panel weeks).

    Returns:
        ``warehouse_id, sku_id, week_start, units``; empty when there are no sales in the window.
    """
    recent = sales.filter(pl.col("date") >= before - dt.timedelta(weeks=weeks))
    if recent.filter(pl.col("date") < before).is_empty():
        schema = {c: recent.schema.get(c, pl.String) for c in SERIES}
        return pl.DataFrame(schema={**schema, "week_start": pl.Date, "units": pl.Float64})
    return build_weekly_panel(recent, cutoff=before).select(*SERIES, "week_start", "units")
