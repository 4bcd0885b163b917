"""Tests for features.demand_panel: zero weeks, censoring, volume class, cutoffs."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from features.demand_panel import (
    build_weekly_panel,
    extend_panel,
    volume_class,
)

MON = dt.date(2025, 1, 6)  # a Monday


def _sales(rows: list[tuple[int, int, bool]], sku: str = "S1") -> pl.DataFrame:
    """Daily rows (day offset from MON, units, is_stockout) for one series."""
    return pl.DataFrame(
        {
            "date": [MON + dt.timedelta(days=d) for d, _, _ in rows],
            "warehouse_id": ["W1"] * len(rows),
            "sku_id": [sku] * len(rows),
            "units_sold": [u for _, u, _ in rows],
            "is_stockout": [s for _, _, s in rows],
        },
        schema_overrides={"units_sold": pl.Int64},
    )


def test_panel_sums_weeks_and_fills_zero_weeks() -> None:
    # week 0: 1+2 units; week 1: no rows at all; week 2: full week of 1 unit/day ending on Sunday.
    sales = _sales([(0, 1, False), (1, 2, False), *[(14 + d, 1, False) for d in range(7)]])
    panel = build_weekly_panel(sales)
    expected = pl.DataFrame(
        {
            "week_start": [MON, MON + dt.timedelta(7), MON + dt.timedelta(14)],
            "units": [3.0, 0.0, 7.0],
            "n_days": pl.Series([2, 0, 7], dtype=pl.Int32),
            "is_censored": [False, False, False],
            "hist_weeks": pl.Series([0, 1, 2], dtype=pl.Int32),
        }
    )
    assert panel.select(expected.columns).equals(expected)
    assert panel["demand_obs"].to_list() == [3.0, 0.0, 7.0]


def test_panel_censored_week_is_not_a_target_and_is_scaled_up() -> None:
    # 4 in-stock days with 2 units each, one stock-out day with 1 unit, two stock-out days without sales.
    rows = [(d, 2, False) for d in range(4)] + [(4, 1, True), (5, 0, True), (6, 0, True)]
    panel = build_weekly_panel(_sales(rows))
    row = panel.row(0, named=True)
    assert row["is_censored"] is True
    assert row["demand_obs"] is None
    assert row["units"] == 9.0
    assert row["demand_est"] == pytest.approx(9.0 * 7 / 4.5)


def test_panel_week_fully_out_of_stock_has_no_demand_estimate() -> None:
    panel = build_weekly_panel(_sales([(d, 0, True) for d in range(7)]))
    assert panel["demand_est"].to_list() == [None]


def test_panel_cutoff_drops_later_sales_and_incomplete_weeks() -> None:
    sales = _sales([(d, 1, False) for d in range(21)])
    panel = build_weekly_panel(sales, cutoff=MON + dt.timedelta(days=10))
    assert panel["week_start"].to_list() == [MON]  # the second week is incomplete before the cutoff
    assert panel["units"].to_list() == [7.0]


def test_panel_rejects_negative_units_naming_the_row() -> None:
    sales = _sales([(0, 1, False), (1, -2, False)])
    with pytest.raises(ValueError, match=r"units_sold.*W1/S1 on 2025-01-07"):
        build_weekly_panel(sales)


def test_volume_class_thresholds() -> None:
    frame = pl.DataFrame({"m": [0.5, 0.5, 5.0, 50.0, None], "h": [3, 20, 20, 20, 20]})
    out = frame.select(volume_class(pl.col("m"), pl.col("h")).alias("c"))["c"].to_list()
    assert out == ["new", "slow", "medium", "fast", "slow"]


def test_extend_panel_appends_null_weeks_and_counts_age() -> None:
    sales = _sales([(d, 1, False) for d in range(14)])
    skus = pl.DataFrame({"sku_id": ["S1"], "category": ["toys"], "launch_date": [MON - dt.timedelta(14)]})
    panel = build_weekly_panel(sales, skus)
    assert panel["age_weeks"].to_list() == [2, 3]
    ext = extend_panel(panel, MON + dt.timedelta(days=28))
    assert ext["week_start"].to_list()[-2:] == [MON + dt.timedelta(21), MON + dt.timedelta(28)]
    assert ext["units"].to_list()[-2:] == [None, None]
    assert ext["age_weeks"].to_list() == [2, 3, 4, 5, 6]
    assert ext["category"].to_list() == ["toys"] * 5
