"""Stage: decisions. The restock plan's inputs, checked and aligned: one row and one array slot per series.

Pure: demand paths, stock positions, the `skus` and `warehouses` tables and ABC classes in; a
`SeriesInputs` out (the joined frame and the arrays the policy computes with, all in the same series order).
Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from serving.decisions.restock.policy import SERIES, RestockConfig, service_quantile

__all__ = ["SeriesInputs", "StockPosition", "cover_demand", "join_series", "series_inputs"]

_DEFAULT_HOLDING_USD_WEEK = 0.06


@dataclass(frozen=True)
class StockPosition:
    """On hand and open lots of each series.

    Attributes:
        on_hand: units on hand now [S].
        lot_units: units of each open lot [S, K] (0 for padding).
        lot_due: days until each lot is due [S, K] (inf for padding; 0 when positions carry no lots).
    """

    on_hand: np.ndarray
    lot_units: np.ndarray
    lot_due: np.ndarray

    def within(self, days: np.ndarray) -> np.ndarray:
        """Position [S, P] counting the lots due within `days` [S, P] (per series and path)."""
        due = self.lot_due[:, None, :] <= days[:, :, None]
        return self.on_hand[:, None] + (self.lot_units[:, None, :] * due).sum(-1)


@dataclass(frozen=True)
class SeriesInputs:
    """Everything the policy needs per series, aligned with `base` (sorted by warehouse, SKU).

    Attributes:
        base: one row per series (positions, SKU and warehouse columns, class, `service_target`).
        demand: sample paths [S, P, H] (weekly units, horizon 1 = the plan week).
        weekly_mean: mean weekly units over the first (up to) 4 weeks [S].
        alpha: quantile level of demand over cover that meets the series' target [S].
        position: on hand and open lots.
        case: case pack [S]; moq: minimum order units [S]; weight: kg per unit [S].
        unit_cost: purchase cost per unit [S]; short_cost: lost margin + penalty per unit short [S].
        hold: holding cost per unit and week [S]; review_demand: mean demand over one review period [S].
    """

    base: pl.DataFrame
    demand: np.ndarray
    weekly_mean: np.ndarray
    alpha: np.ndarray
    position: StockPosition
    case: np.ndarray
    moq: np.ndarray
    weight: np.ndarray
    unit_cost: np.ndarray
    short_cost: np.ndarray
    hold: np.ndarray
    review_demand: np.ndarray


def cover_demand(d: np.ndarray, cover_weeks: np.ndarray) -> np.ndarray:
    """Demand over `cover_weeks` [S, P] (fractional last week) from paths `d` [S, P, H]."""
    h = np.arange(d.shape[2])
    w = np.clip(cover_weeks[:, :, None] - h[None, None, :], 0.0, 1.0)
    return (d * w).sum(axis=2)


def _check_columns(
    paths: pl.DataFrame, positions: pl.DataFrame, skus: pl.DataFrame, warehouses: pl.DataFrame
) -> list[str]:
    """Raise on a missing column; return the lot columns the positions carry (both or none)."""
    for name, frame, cols in (
        ("positions", positions, [*SERIES, "on_hand_units", "on_order_units"]),
        ("paths", paths, [*SERIES, "path_id", "horizon", "units"]),
        ("skus", skus, ["sku_id", "unit_cost_usd", "price_usd"]),
        ("warehouses", warehouses, ["warehouse_id", "capacity_units"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} is missing columns {missing}")
    lots: list[str] = [c for c in ("on_order_lots", "on_order_due_days") if c in positions.columns]
    if len(lots) == 1:
        raise ValueError("positions need both on_order_lots and on_order_due_days, or neither")
    return lots


def join_series(
    paths: pl.DataFrame,
    positions: pl.DataFrame,
    skus: pl.DataFrame,
    warehouses: pl.DataFrame,
    classes: pl.DataFrame | None,
    config: RestockConfig,
) -> pl.DataFrame:
    """One row per series in both `paths` and `positions`: position, SKU, warehouse, class and target.

    Raises:
        ValueError: on a missing column, a series without a SKU row, a class without a target, or no
            series at all.
    """
    lots = _check_columns(paths, positions, skus, warehouses)
    keys = paths.select(SERIES).unique().join(positions.select(SERIES), on=SERIES).sort(SERIES)
    sku_cols = ["sku_id", "unit_cost_usd", "price_usd", "weight_kg", "case_pack", "min_order_units"]
    sku = skus.select(*(c if c in skus.columns else pl.lit(None).alias(c) for c in sku_cols))
    holding = "holding_cost_usd_per_unit_week"
    holding_col = pl.col(holding) if holding in warehouses.columns else pl.lit(_DEFAULT_HOLDING_USD_WEEK)
    wh_cols = warehouses.select(
        "warehouse_id",
        "capacity_units",
        holding_col.fill_null(_DEFAULT_HOLDING_USD_WEEK).alias("holding_usd_week"),
    )
    cls = (
        classes.select(*SERIES, "abc_class")
        if classes is not None
        else pl.DataFrame(schema={"warehouse_id": pl.String, "sku_id": pl.String, "abc_class": pl.String})
    )
    base = (
        keys.join(positions.select(*SERIES, "on_hand_units", "on_order_units", *lots), on=SERIES, how="left")
        .join(sku, on="sku_id", how="left")
        .join(wh_cols, on="warehouse_id", how="left")
        .join(cls, on=SERIES, how="left")
        .with_columns(
            pl.col("abc_class").fill_null("C"),
            pl.col("case_pack").fill_null(1).clip(1, None),
            pl.col("min_order_units").fill_null(0),
            pl.col("weight_kg").fill_null(0.0),
        )
    )
    no_sku = base.filter(pl.col("unit_cost_usd").is_null())
    if no_sku.height:
        row = no_sku.row(0, named=True)
        raise ValueError(f"sku {row['sku_id']!r} (warehouse {row['warehouse_id']}) is not in skus")
    target = pl.col("abc_class").replace_strict(
        config.service_by_class, default=None, return_dtype=pl.Float64
    )
    base = base.with_columns(target.alias("service_target"))
    if base["service_target"].is_null().any():
        raise ValueError(f"service_by_class has no target for classes {base['abc_class'].unique().to_list()}")
    if keys.is_empty():
        raise ValueError("no SKU x warehouse is in both the demand paths and the stock positions")
    return base.sort(SERIES)  # joins do not keep row order: align every array with the paths array


def _path_array(paths: pl.DataFrame, keys: pl.DataFrame) -> np.ndarray:
    """Paths as an array [series, path, horizon] in the order of `keys`."""
    p = paths.join(keys.with_row_index("_s"), on=SERIES, how="inner").sort("_s", "path_id", "horizon")
    n_s = keys.height
    n_h = int(p["horizon"].n_unique())
    if p.is_empty() or p["horizon"].min() != 1 or p["horizon"].max() != n_h:
        raise ValueError("paths must cover horizons 1..H (horizon 1 = the week starting on the plan date)")
    n_p = p.height // (n_s * n_h)
    if n_p * n_s * n_h != p.height:
        raise ValueError("paths must hold the same paths x horizons 1..H for every series")
    return p["units"].to_numpy().reshape(n_s, n_p, n_h)


def _stock_position(base: pl.DataFrame) -> StockPosition:
    """On hand and on-order lots [S, K]; one lot due at day 0 per series without lot columns."""
    on_hand = base["on_hand_units"].to_numpy().astype(float)
    if "on_order_lots" not in base.columns:
        units = base["on_order_units"].to_numpy().astype(float)[:, None]
        return StockPosition(on_hand, units, np.zeros((base.height, 1)))
    lots = base["on_order_lots"].fill_null([]).to_list()
    due = base["on_order_due_days"].fill_null([]).to_list()
    k = max(1, max((len(u) for u in lots), default=1))
    u_arr, d_arr = np.zeros((base.height, k)), np.full((base.height, k), np.inf)
    for i, (u, dd) in enumerate(zip(lots, due, strict=True)):
        if len(u) != len(dd):
            raise ValueError(f"series {i}: on_order_lots and on_order_due_days differ in length")
        u_arr[i, : len(u)], d_arr[i, : len(dd)] = u, dd
    return StockPosition(on_hand, u_arr, d_arr)


def series_inputs(paths: pl.DataFrame, base: pl.DataFrame, config: RestockConfig) -> SeriesInputs:
    """The arrays of the policy, aligned with `base` (`join_series`)."""
    d = _path_array(paths, base.select(SERIES))
    n_s, n_p, n_h = d.shape
    weekly_mean = d[:, :, : min(4, n_h)].sum(axis=2).mean(axis=1) / min(4, n_h)
    unit_cost = base["unit_cost_usd"].to_numpy()
    review = np.full((n_s, n_p), config.review_days / 7.0)
    return SeriesInputs(
        base=base,
        demand=d,
        weekly_mean=weekly_mean,
        alpha=service_quantile(base["service_target"].to_numpy(), weekly_mean, config),
        position=_stock_position(base),
        case=base["case_pack"].to_numpy().astype(float),
        moq=base["min_order_units"].to_numpy().astype(float),
        weight=base["weight_kg"].to_numpy(),
        unit_cost=unit_cost,
        short_cost=np.maximum(base["price_usd"].to_numpy() - unit_cost, 0.0) + config.stockout_penalty_usd,
        hold=base["holding_usd_week"].to_numpy(),
        review_demand=cover_demand(d, review).mean(axis=1),
    )
