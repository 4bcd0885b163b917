"""Restock replay: lost sales by hand, service curves rise with the quantile level, windows are honest."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from serving.decisions.restock.replay import (
    Forecaster,
    PolicyReplay,
    ReplayWindow,
    ReplayWorld,
    sales_as_demand,
    service_curves,
)

START = dt.date(2025, 3, 3)  # a Monday; 8 weeks of history before it, 4 weeks of replay after it
UTC = dt.UTC
# warehouse, sku, units a day: fast (21/week), medium (7/week), slow (0.1/day: 0.7/week)
RATES = (("W1", "S1", 3.0), ("W1", "S2", 1.0), ("W2", "S1", 0.1))


def tiny_world() -> dict[str, pl.DataFrame]:
    """Contract tables of a two-warehouse, three-series world with sea and air history (hand-made)."""
    days = [START + dt.timedelta(days=d) for d in range(-56, 28)]
    sales = pl.DataFrame(
        [
            (day, wh, sku, int(rate * (i + 1)) - int(rate * i), 30)
            for wh, sku, rate in RATES
            for i, day in enumerate(days)
        ],
        schema=["date", "warehouse_id", "sku_id", "units_sold", "on_hand_end"],
        orient="row",
    )
    rows = []
    for k, (wh, sku, _) in enumerate(RATES):
        for j, (mode, lead) in enumerate((("sea", 20), ("sea", 24), ("air", 5), ("air", 6), ("sea", 22))):
            shipped = dt.datetime(2025, 1, 6 + 4 * j + k, tzinfo=UTC)
            rows.append((f"R{k}{j}", wh, sku, 40, mode, shipped, shipped + dt.timedelta(days=lead), 90.0))
    shipped = dt.datetime(2025, 2, 24, tzinfo=UTC)  # open at the start: arrives on day 6 of the replay
    rows.append(("OPEN", "W1", "S1", 25, "sea", shipped, shipped + dt.timedelta(days=13), 80.0))
    replenishments = pl.DataFrame(
        rows,
        schema=["replenishment_id", "warehouse_id", "sku_id", "units", "mode", "shipped_at", "received_at",
                "freight_cost_usd"],
        orient="row",
    )  # fmt: skip
    skus = pl.DataFrame({"sku_id": ["S1", "S2"], "unit_cost_usd": [4.0, 9.0], "price_usd": [12.0, 25.0],
                         "weight_kg": [0.5, 1.0], "case_pack": [1, 2],
                         "min_order_units": [0, 0]})  # fmt: skip
    warehouses = pl.DataFrame({"warehouse_id": ["W1", "W2"], "capacity_units": [10_000, 10_000],
                               "holding_cost_usd_per_unit_week": [0.05, 0.05]})  # fmt: skip
    return {
        "warehouse_sales": sales,
        "replenishments": replenishments,
        "skus": skus,
        "warehouses": warehouses,
    }


def flat_forecaster() -> Forecaster:
    """Each series' true weekly rate as the mean and median, with a spread above it (16 weeks)."""

    def forecast(cutoff: dt.date) -> pl.DataFrame:
        return pl.DataFrame(
            [
                (wh, sku, h, cutoff + dt.timedelta(weeks=h - 1), 7 * r, 7 * r, 8.4 * r, 9.8 * r, 11.2 * r)
                for wh, sku, r in RATES
                for h in range(1, 17)
            ],
            schema=["warehouse_id", "sku_id", "horizon", "week_start", "demand_mean", "demand_q50",
                    "demand_q80", "demand_q90", "demand_q95"],
            orient="row",
        )  # fmt: skip

    return Forecaster(forecast, "flat", 0.5)


WINDOW = ReplayWindow(start=START, weeks=4, warmup=1, n_series=10, n_paths=30, seed=1, modes=("sea", "air"))


def test_policy_without_orders_sells_until_stock_runs_out() -> None:
    tables = tiny_world()
    world = ReplayWorld(tables, sales_as_demand(tables["warehouse_sales"]), WINDOW)
    assert world.keys["sku_id"].to_list() == ["S1", "S2", "S1"]
    assert world.keys["on_hand_units"].to_list() == [30, 30, 30]  # on hand the day before the start
    replay = PolicyReplay(world, "idle")
    for d in range(world.days):
        replay.day(d)
    # W1/S1: 30 on hand + 25 arriving on day 6, 3 a day: sold out on day 18 (55 units), then lost
    assert replay.sold[:, 0].sum() == 55 and replay.end_stock[17, 0] == 1 and replay.end_stock[18, 0] == 0
    m = replay.metrics(warmup=1)
    # after the warm-up week: W1/S1 runs out in week 3 and 4, the others never
    assert m.cycle_service_level == pytest.approx(1 - 2 / 9)
    assert (m.csl_fast, m.csl_medium, m.csl_slow) == (pytest.approx(1 / 3), 1.0, 1.0)
    assert m.freight_usd == 0.0 and m.stockout_usd > 0


def test_service_curves_rise_with_the_quantile_level() -> None:
    tables = tiny_world()
    levels = [0.05, 0.5, 0.95]
    curves = service_curves(
        tables, sales_as_demand(tables["warehouse_sales"]), WINDOW, levels, flat_forecaster()
    )
    assert set(curves) == {"slow", "medium", "fast"}
    for band in ("medium", "fast"):
        assert np.all(np.diff(curves[band]) >= 0), (band, curves[band])
    assert curves["fast"][-1] > curves["fast"][0]


def test_replay_without_series_in_the_window_is_a_clear_error() -> None:
    tables = tiny_world()
    late = ReplayWindow(start=START + dt.timedelta(weeks=20), weeks=2)
    with pytest.raises(ValueError, match="no series with demand"):
        ReplayWorld(tables, sales_as_demand(tables["warehouse_sales"]), late)
