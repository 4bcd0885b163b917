"""Stage: decisions. What the replenishment history says as of a plan date: lead times, freight, stock.

Pure: contract tables (`replenishments`, `warehouse_sales`, `skus`) and a plan date in, small frames out.
Reads and writes nothing. Everything is point-in-time: a replenishment counts only if it was received
strictly before the plan date (its lead time was known then); stock is the last `on_hand_end` before it.

* `lead_time_samples`: door-to-door replenishment lead times (shipped_at -> received_at, customs included)
  per warehouse x mode, the most recent ones in a look-back window. Shipments still open at the plan date
  are not in the sample (their lead time is unknown), which biases towards fast shipments when a lane is
  suddenly congested; the planner's `handling_days` (order -> departure) is added by the restock step.
* `freight_rates`: freight per shipment = fixed + per-kg x shipped kg, fitted by least squares per
  warehouse x mode from `freight_cost_usd`.
* `stock_positions`: on hand (last `on_hand_end`), on order (shipped before and received on/after the plan
  date) per SKU x warehouse.
* `lane_reliability`: lead-time percentiles and customs days per warehouse x mode for the report.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

__all__ = ["freight_rates", "lane_reliability", "lead_time_samples", "stock_positions"]

_DAY_US = 86_400e6


def _as_of_ts(as_of: dt.date) -> dt.datetime:
    return dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)


def _completed(replenishments: pl.DataFrame, as_of: dt.date, lookback_days: int) -> pl.DataFrame:
    t = _as_of_ts(as_of)
    return replenishments.filter(
        pl.col("received_at").is_not_null()
        & (pl.col("received_at") < t)
        & (pl.col("shipped_at") >= t - dt.timedelta(days=lookback_days))
    ).with_columns(
        ((pl.col("received_at") - pl.col("shipped_at")).dt.total_microseconds() / _DAY_US).alias("lead_days"),
        pl.col("mode").cast(pl.String),
    )


def lead_time_samples(
    replenishments: pl.DataFrame, as_of: dt.date, lookback_days: int = 365, max_per_lane: int = 200
) -> pl.DataFrame:
    """Recent observed replenishment lead times per warehouse x mode, as known at `as_of`.

    Args:
        replenishments: the contract table.
        as_of: plan date; only shipments received before it count.
        lookback_days: only shipments that left at most this many days before `as_of`.
        max_per_lane: keep the most recent observations of each warehouse x mode.

    Returns:
        `warehouse_id`, `mode` (String), `lead_days` (Float64), `shipped_at`, most recent first.
    """
    done = _completed(replenishments, as_of, lookback_days)
    return (
        done.sort("shipped_at", descending=True)
        .group_by("warehouse_id", "mode", maintain_order=True)
        .head(max_per_lane)
        .select("warehouse_id", "mode", "lead_days", "shipped_at")
        .sort("warehouse_id", "mode", "shipped_at", descending=[False, False, True])
    )


def freight_rates(
    replenishments: pl.DataFrame, skus: pl.DataFrame, as_of: dt.date, lookback_days: int = 365
) -> pl.DataFrame:
    """Freight per replenishment = fixed_usd + per_kg_usd x kg, fitted per warehouse x mode.

    Args:
        replenishments: the contract table (needs `freight_cost_usd`).
        skus: the contract table (needs `weight_kg`).
        as_of: plan date; only shipments received before it count.
        lookback_days: fit window.

    Returns:
        `warehouse_id`, `mode`, `fixed_usd`, `per_kg_usd`, `n_obs`. A lane whose fit is degenerate (all the
        same weight, or a negative coefficient) gets fixed 0 and the mean USD per kg.
    """
    done = (
        _completed(replenishments, as_of, lookback_days)
        .join(skus.select("sku_id", "weight_kg"), on="sku_id", how="left")
        .filter(pl.col("freight_cost_usd").is_not_null() & pl.col("weight_kg").is_not_null())
        .with_columns((pl.col("units") * pl.col("weight_kg")).alias("kg"))
    )
    rows = []
    for (wh, mode), part in done.group_by("warehouse_id", "mode", maintain_order=True):
        kg, usd = part["kg"].to_numpy(), part["freight_cost_usd"].to_numpy()
        fixed, per_kg = 0.0, float(usd.sum() / max(kg.sum(), 1e-9))
        if part.height >= 3 and np.ptp(kg) > 0:
            a = np.column_stack([np.ones_like(kg), kg])
            (f, b), *_ = np.linalg.lstsq(a, usd, rcond=None)
            if f >= 0 and b >= 0:
                fixed, per_kg = float(f), float(b)
        rows.append((wh, mode, fixed, per_kg, part.height))
    schema = {"warehouse_id": pl.String, "mode": pl.String, "fixed_usd": pl.Float64, "per_kg_usd": pl.Float64,
              "n_obs": pl.Int64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row").sort("warehouse_id", "mode")


def stock_positions(
    sales: pl.DataFrame,
    replenishments: pl.DataFrame,
    as_of: dt.date,
    lead_samples: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """On hand and on order per SKU x warehouse at the start of `as_of`.

    Args:
        sales: the contract `warehouse_sales` table.
        replenishments: the contract table.
        as_of: plan date.
        lead_samples: `lead_time_samples(...)`; when given, each open lot gets an expected due date: its
            departure + the median lead time of its warehouse x mode, at least 1 day after `as_of` (a lot
            already overdue is expected tomorrow).

    Returns:
        `warehouse_id`, `sku_id`, `on_hand_units` (last `on_hand_end` before `as_of`, 0 if null),
        `on_order_units` (shipped before `as_of`, not received before it), `stock_date`; with `lead_samples`
        also `on_order_lots` and `on_order_due_days` (lists, one entry per open lot).
    """
    t = _as_of_ts(as_of)
    on_hand = (
        sales.filter(pl.col("date") < as_of)
        .sort("date")
        .group_by("warehouse_id", "sku_id")
        .agg(
            # The latest known stock count (a missing count on the last day is not zero stock).
            pl.col("on_hand_end").drop_nulls().last().fill_null(0).cast(pl.Int64).alias("on_hand_units"),
            pl.col("date").last().alias("stock_date"),
        )
    )
    open_lots = replenishments.filter(
        (pl.col("shipped_at") < t) & (pl.col("received_at").is_null() | (pl.col("received_at") >= t))
    ).with_columns(pl.col("mode").cast(pl.String))
    aggs = [pl.col("units").sum().cast(pl.Int64).alias("on_order_units")]
    if lead_samples is not None:
        median = lead_samples.group_by("warehouse_id", "mode").agg(pl.col("lead_days").median().alias("_med"))
        age = (t - pl.col("shipped_at")).dt.total_microseconds() / _DAY_US
        open_lots = open_lots.join(median, on=["warehouse_id", "mode"], how="left").with_columns(
            (pl.col("_med").fill_null(30.0) - age).clip(1.0, None).alias("_due")
        )
        aggs += [
            pl.col("units").cast(pl.Int64).alias("on_order_lots"),
            pl.col("_due").alias("on_order_due_days"),
        ]
    on_order = open_lots.group_by("warehouse_id", "sku_id").agg(aggs)
    out = on_hand.join(on_order, on=["warehouse_id", "sku_id"], how="full", coalesce=True).with_columns(
        pl.col("on_hand_units", "on_order_units").fill_null(0)
    )
    if lead_samples is not None:
        out = out.with_columns(
            pl.col("on_order_lots").fill_null(pl.lit([], pl.List(pl.Int64))),
            pl.col("on_order_due_days").fill_null(pl.lit([], pl.List(pl.Float64))),
        )
    return out.sort("warehouse_id", "sku_id")


def lane_reliability(replenishments: pl.DataFrame, as_of: dt.date, lookback_days: int = 365) -> pl.DataFrame:
    """Lead-time percentiles and customs days per warehouse x mode over the look-back window.

    Returns:
        `warehouse_id`, `mode`, `n_shipments`, `lead_days_p50`, `lead_days_p90`, `lead_days_p90_minus_p50`,
        `customs_days_p50`, `customs_days_p90`, `share_customs_over_3d`.
    """
    done = _completed(replenishments, as_of, lookback_days)
    customs = pl.col("customs_days") if "customs_days" in done.columns else pl.lit(None, pl.Float64)
    return (
        done.with_columns(customs.alias("_customs"))
        .group_by("warehouse_id", "mode")
        .agg(
            pl.len().alias("n_shipments"),
            pl.col("lead_days").quantile(0.5).alias("lead_days_p50"),
            pl.col("lead_days").quantile(0.9).alias("lead_days_p90"),
            pl.col("_customs").quantile(0.5).alias("customs_days_p50"),
            pl.col("_customs").quantile(0.9).alias("customs_days_p90"),
            (pl.col("_customs") > 3).mean().alias("share_customs_over_3d"),
        )
        .with_columns((pl.col("lead_days_p90") - pl.col("lead_days_p50")).alias("lead_days_p90_minus_p50"))
        .sort("warehouse_id", "mode")
    )
