"""Tests for features.demand_features: no leakage, horizons, calendar, feature set."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.demand_features import (
    DemandFeatureConfig,
    build_demand_features,
    demand_feature_set,
    weekly_calendar,
)
from features.demand_panel import build_weekly_panel, extend_panel

START = dt.date(2023, 1, 2)
N_WEEKS = 70
CFG = DemandFeatureConfig(horizons=4, lags=(1, 2), windows=(4, 13, 26))


def _daily(seed: int, n_weeks: int = N_WEEKS) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Daily sales of 3 series (2 SKUs of one category, 2 warehouses), random stock-outs."""
    rng = np.random.default_rng(seed)
    days = n_weeks * 7
    frames = []
    for wh, sku, first in (("W1", "A", 0), ("W1", "B", 35), ("W2", "A", 0)):
        dates = [START + dt.timedelta(days=int(d)) for d in range(first, days)]
        n = len(dates)
        frames.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "warehouse_id": [wh] * n,
                    "sku_id": [sku] * n,
                    "units_sold": rng.poisson(2.0, n).astype(np.int64),
                    "is_stockout": rng.uniform(size=n) < 0.05,
                    "price_usd": rng.uniform(9, 11, n),
                    "is_promo": rng.uniform(size=n) < 0.1,
                }
            )
        )
    skus = pl.DataFrame({"sku_id": ["A", "B"], "category": ["toys", "toys"]})
    warehouses = pl.DataFrame({"warehouse_id": ["W1", "W2"], "country": ["US", "DE"]})
    return pl.concat(frames), skus, warehouses


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut_week=st.integers(20, N_WEEKS - 2))
def test_features_never_change_when_future_weeks_are_appended(seed: int, cut_week: int) -> None:
    sales, skus, warehouses = _daily(seed)
    cutoff = START + dt.timedelta(weeks=cut_week)
    full = build_demand_features(build_weekly_panel(sales, skus), warehouses, config=CFG)
    past_panel = extend_panel(build_weekly_panel(sales, skus, cutoff=cutoff), cutoff)
    past = build_demand_features(past_panel, warehouses, config=CFG)
    keys = ["warehouse_id", "sku_id", "origin_week", "horizon"]
    feats = [*keys, "week_start", *[c for c in demand_feature_set(CFG).names if c not in keys]]
    left = full.filter(pl.col("origin_week") <= cutoff).select(feats).sort(keys)
    right = past.filter(pl.col("origin_week") <= cutoff).select(feats).sort(keys)
    assert_frame_equal(left, right)


def test_features_series_first_selling_at_the_cutoff_does_not_exist_yet() -> None:
    # Series W1 x B first sells in week 5: at a cutoff on that week it is unknown, in both builds.
    sales, skus, warehouses = _daily(1)
    cutoff = START + dt.timedelta(weeks=5)
    full = build_demand_features(build_weekly_panel(sales, skus), warehouses, config=CFG)
    past_panel = extend_panel(build_weekly_panel(sales, skus, cutoff=cutoff), cutoff)
    past = build_demand_features(past_panel, warehouses, config=CFG)
    keys = ["warehouse_id", "sku_id", "origin_week", "horizon"]
    left = full.filter(pl.col("origin_week") <= cutoff).select(keys).sort(keys)
    right = past.filter(pl.col("origin_week") <= cutoff).select(keys).sort(keys)
    assert_frame_equal(left, right)
    assert full.filter((pl.col("sku_id") == "B") & (pl.col("origin_week") <= cutoff)).is_empty()


def test_features_rows_per_origin_and_horizon_targets() -> None:
    sales, skus, warehouses = _daily(1)
    panel = build_weekly_panel(sales, skus)
    origin = START + dt.timedelta(weeks=60)
    rows = build_demand_features(panel, warehouses, origins=[origin], config=CFG)
    assert rows.height == 3 * 4
    assert rows["horizon"].dtype == pl.Int32
    first = rows.filter((pl.col("warehouse_id") == "W1") & (pl.col("sku_id") == "A"))
    assert first["week_start"].to_list() == [origin + dt.timedelta(weeks=h) for h in range(4)]
    truth = panel.filter(
        (pl.col("warehouse_id") == "W1") & (pl.col("sku_id") == "A") & (pl.col("week_start") >= origin)
    ).head(4)
    assert first["y_units"].to_list() == truth["units"].to_list()
    # lag_1 is the week before the origin (or the 4-week level when that week was censored).
    before = panel.filter(
        (pl.col("warehouse_id") == "W1") & (pl.col("sku_id") == "A") & (pl.col("week_start") < origin)
    ).tail(4)
    expected_lag = before["demand_est"][-1]
    if expected_lag is None:
        expected_lag = before["demand_est"].drop_nulls().mean()
    assert first["lag_1"][0] == expected_lag
    assert set(demand_feature_set(CFG).names) <= set(rows.columns)


def test_weekly_calendar_marks_peaks_and_holidays() -> None:
    cal = weekly_calendar(["US"], dt.date(2025, 11, 17), dt.date(2025, 12, 28))
    by_week = {r["week_start"]: r for r in cal.iter_rows(named=True)}
    assert by_week[dt.date(2025, 11, 24)]["days_black_friday"] > 0  # Black Friday 2025-11-28
    assert by_week[dt.date(2025, 11, 17)]["days_black_friday"] == 0
    assert by_week[dt.date(2025, 11, 24)]["holidays_in_week"] >= 1  # Thanksgiving
    assert by_week[dt.date(2025, 12, 8)]["days_christmas"] == 7
