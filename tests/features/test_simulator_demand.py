"""Tests of the overseas-warehouse simulator: contract, stock accounting, demand structure and the oracle."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from features.contract.schema import TABLES
from features.reference.calendar import black_friday, chinese_new_year
from features.sources.simulator.demand import (
    DEMAND_DAILY_SCHEMA,
    DEMAND_WEEKLY_SCHEMA,
    DemandConfig,
    _nb_quantiles,
    simulate_demand,
)
from features.sources.simulator.demand_categories import CATEGORIES

START, END = dt.date(2023, 1, 2), dt.date(2025, 11, 30)
WAREHOUSE_IDS = ["WH-AU-SYD", "WH-CA-YYZ", "WH-DE-FRA", "WH-GB-BHX", "WH-US-LAX", "WH-US-NJ"]


def _simulate(
    seed: int, n_skus: int = 30, start: dt.date = dt.date(2024, 9, 2), end: dt.date = dt.date(2024, 12, 29)
) -> dict[str, pl.DataFrame]:
    tables, oracle = simulate_demand(DemandConfig(n_skus=n_skus), start, end, np.random.default_rng(seed))
    return tables | oracle


@pytest.fixture(scope="module")
def world() -> dict[str, pl.DataFrame]:
    """About three years of 150 SKUs: large enough for seasonal and peak statistics."""
    return _simulate(seed=11, n_skus=150, start=START, end=END)


@pytest.fixture(scope="module")
def daily(world: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Sales joined to the true daily demand, with the SKU's category and the warehouse's country."""
    return (
        world["warehouse_sales"]
        .join(world["demand_daily"], on=["date", "warehouse_id", "sku_id"], how="left", validate="1:1")
        .join(world["skus"].select("sku_id", "category", "launch_date"), on="sku_id")
        .join(world["warehouses"].select("warehouse_id", "country"), on="warehouse_id")
    )


@pytest.fixture(scope="module")
def weekly(world: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Full oracle weeks with the demand mean relative to the series' average week."""
    return (
        world["demand_weekly"]
        .filter(pl.col("n_days") == 7)
        .join(world["skus"].select("sku_id", "category"), on="sku_id")
        .join(world["warehouses"].select("warehouse_id", "country"), on="warehouse_id")
        .with_columns(
            (pl.col("demand_mean") / pl.col("demand_mean").mean().over("warehouse_id", "sku_id")).alias("rel")
        )
    )


# ---------------------------------------------------------------------------------------------------------
# Determinism and contract
# ---------------------------------------------------------------------------------------------------------
def test_simulate_demand_same_seed_gives_identical_tables() -> None:
    first, second = _simulate(seed=5), _simulate(seed=5)
    assert first.keys() == second.keys()
    for name in first:
        assert_frame_equal(first[name], second[name])


def test_simulate_demand_different_seed_differs() -> None:
    first, second = _simulate(seed=5), _simulate(seed=6)
    assert not first["warehouse_sales"].equals(second["warehouse_sales"])
    assert not first["skus"].equals(second["skus"])


def test_simulate_demand_tables_have_exact_contract_schemas(world: dict[str, pl.DataFrame]) -> None:
    for name in ("skus", "warehouses", "warehouse_sales", "replenishments"):
        assert world[name].schema == TABLES[name].schema, name
        assert world[name].height > 0, name
    assert world["demand_weekly"].schema == DEMAND_WEEKLY_SCHEMA
    assert world["demand_daily"].schema == DEMAND_DAILY_SCHEMA


@pytest.mark.parametrize("name", ["skus", "warehouses", "warehouse_sales", "replenishments"])
def test_simulate_demand_tables_are_sorted_with_unique_keys(
    world: dict[str, pl.DataFrame], name: str
) -> None:
    spec = TABLES[name]
    df = world[name]
    assert df.select(spec.key).is_unique().all()
    assert_frame_equal(df, df.sort(spec.sort_by, maintain_order=True))
    required = [c.name for c in spec.columns if not c.nullable]
    assert df.select(pl.col(required).null_count().sum()).row(0) == (0,) * len(required)


def test_simulate_demand_optional_columns_are_filled(world: dict[str, pl.DataFrame]) -> None:
    for name, columns in {
        "skus": ["weight_kg", "case_pack", "min_order_units", "launch_date"],
        "warehouses": ["region", "holding_cost_usd_per_unit_week"],
        "warehouse_sales": ["on_hand_end", "price_usd", "is_promo"],
        "replenishments": ["origin_hub", "freight_cost_usd"],
    }.items():
        assert world[name].select(pl.col(columns).null_count().sum()).row(0) == (0,) * len(columns), name


def test_simulate_demand_uses_fixed_ids_and_partial_listings(world: dict[str, pl.DataFrame]) -> None:
    assert world["warehouses"]["warehouse_id"].to_list() == WAREHOUSE_IDS
    assert world["skus"]["sku_id"].to_list() == [f"SKU{i:04d}" for i in range(1, 151)]
    listings = world["warehouse_sales"].select("warehouse_id", "sku_id").unique()
    per_sku = listings.group_by("sku_id").len()["len"]
    assert per_sku.min() >= 1
    assert (per_sku < len(WAREHOUSE_IDS)).mean() > 0.5  # most SKUs are not stocked everywhere
    regions = dict(zip(*world["warehouses"].select("warehouse_id", "region"), strict=True))
    assert regions["WH-US-LAX"] == "US-CA" and regions["WH-US-NJ"] == "US-NJ"


def test_simulate_demand_hs_codes_match_the_category(world: dict[str, pl.DataFrame]) -> None:
    skus = world["skus"]
    assert skus["hs_code"].str.contains(r"^\d{6}$").all()
    for category, hs_code in skus.select("category", "hs_code").iter_rows():
        assert hs_code in CATEGORIES[category].hs_codes
    assert (skus["unit_cost_usd"] < skus["price_usd"]).all()
    assert (skus["min_order_units"] % skus["case_pack"] == 0).all()


# ---------------------------------------------------------------------------------------------------------
# Stock accounting
# ---------------------------------------------------------------------------------------------------------
def test_simulate_demand_sales_are_demand_censored_by_stock(daily: pl.DataFrame) -> None:
    assert daily["demand_units"].null_count() == 0
    assert (daily["units_sold"] <= daily["demand_units"]).all()
    in_stock = daily.filter(~pl.col("is_stockout"))
    assert (in_stock["units_sold"] == in_stock["demand_units"]).all()
    assert (daily["on_hand_end"] >= 0).all()
    stockouts = daily.filter(pl.col("is_stockout"))
    assert (stockouts["on_hand_end"] == 0).all()  # the contract's stockout_on_hand rule
    censored = daily.filter(pl.col("units_sold") < pl.col("demand_units"))
    assert censored["is_stockout"].all()


def test_simulate_demand_stock_balances_with_receipts(world: dict[str, pl.DataFrame]) -> None:
    receipts = (
        world["replenishments"]
        .filter(pl.col("received_at").is_not_null())
        .group_by("warehouse_id", "sku_id", pl.col("received_at").dt.date().alias("date"))
        .agg(pl.col("units").sum().alias("received"))
    )
    sales = world["warehouse_sales"].join(receipts, on=["warehouse_id", "sku_id", "date"], how="left")
    balance = sales.with_columns(
        pl.col("on_hand_end").shift(1).over("warehouse_id", "sku_id").alias("previous"),
        pl.col("date").diff().over("warehouse_id", "sku_id").dt.total_days().alias("gap"),
    ).filter(pl.col("gap") == 1)
    expected = balance["previous"] + balance["received"].fill_null(0) - balance["units_sold"]
    assert (balance["on_hand_end"] == expected).all()


def test_simulate_demand_stockouts_are_a_few_percent_and_peak_more(daily: pl.DataFrame) -> None:
    rate = daily["is_stockout"].mean()
    assert 0.005 < rate < 0.10
    november_december = daily.filter(pl.col("date").dt.month() >= 11)["is_stockout"].mean()
    spring = daily.filter(pl.col("date").dt.month().is_between(4, 6))["is_stockout"].mean()
    assert november_december > spring


# ---------------------------------------------------------------------------------------------------------
# Demand structure
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", ["electronics_accessories", "toys", "home_kitchen"])
def test_simulate_demand_black_friday_week_beats_ordinary_weeks(weekly: pl.DataFrame, category: str) -> None:
    bf_weeks = [black_friday(y) - dt.timedelta(days=4) for y in (2023, 2024, 2025)]
    rows = weekly.filter(pl.col("category") == category)
    peak = rows.filter(pl.col("week_start").is_in(bf_weeks))["rel"].mean()
    ordinary = rows.filter(pl.col("week_start").dt.month().is_between(2, 9))["rel"].mean()
    assert peak > 1.3 * ordinary


def test_simulate_demand_post_christmas_dip(weekly: pl.DataFrame) -> None:
    xmas_run_up = weekly.filter(pl.col("week_start").dt.month() == 12, pl.col("week_start").dt.day() <= 15)
    after = weekly.filter(pl.col("week_start").dt.month() == 12, pl.col("week_start").dt.day() >= 24)
    assert after["rel"].mean() < 0.8 * xmas_run_up["rel"].mean()


def test_simulate_demand_garden_seasons_are_opposite_in_australia(weekly: pl.DataFrame) -> None:
    garden = weekly.filter(pl.col("category") == "garden")

    def spring_over_autumn(country: str) -> float:
        rows = garden.filter(pl.col("country") == country)
        northern_spring = rows.filter(pl.col("week_start").dt.month().is_between(4, 6))["rel"].mean()
        northern_autumn = rows.filter(pl.col("week_start").dt.month().is_between(9, 11))["rel"].mean()
        return northern_spring / northern_autumn

    assert spring_over_autumn("DE") > 1.5
    assert spring_over_autumn("AU") < 1 / 1.5


def test_simulate_demand_monday_busier_than_saturday(daily: pl.DataFrame) -> None:
    by_day = daily.group_by(pl.col("date").dt.weekday().alias("weekday")).agg(pl.col("demand_mean").sum())
    totals = dict(by_day.iter_rows())
    assert totals[1] > 1.2 * totals[6]


def test_simulate_demand_promotions_cut_price_and_lift_demand(daily: pl.DataFrame) -> None:
    per_series = (
        daily.group_by("warehouse_id", "sku_id")
        .agg(
            pl.col("demand_mean").filter(pl.col("is_promo")).mean().alias("promo"),
            pl.col("demand_mean").filter(~pl.col("is_promo")).mean().alias("regular"),
            pl.col("price_usd").filter(pl.col("is_promo")).median().alias("promo_price"),
            pl.col("price_usd").filter(~pl.col("is_promo")).median().alias("regular_price"),
        )
        .drop_nulls()
    )
    assert 0.02 < daily["is_promo"].mean() < 0.25
    assert (per_series["promo"] / per_series["regular"]).median() > 1.2
    assert (per_series["promo_price"] < per_series["regular_price"]).mean() > 0.8


def test_simulate_demand_new_skus_do_not_sell_before_launch(daily: pl.DataFrame) -> None:
    new = daily.filter(pl.col("launch_date") > START)
    assert new.select("sku_id").n_unique() >= 5
    assert new.filter(pl.col("date") < pl.col("launch_date"))["units_sold"].sum() == 0
    first_weeks = new.filter(pl.col("date") < pl.col("launch_date") + dt.timedelta(days=14))
    later = new.filter(pl.col("date") > pl.col("launch_date") + dt.timedelta(days=90))
    assert first_weeks["demand_mean"].mean() < later["demand_mean"].mean()  # cold start ramp-up


def test_simulate_demand_long_tail_is_intermittent(weekly: pl.DataFrame) -> None:
    zero = (weekly["demand_units"] == 0).mean()
    assert 0.05 < zero < 0.6
    per_series = weekly.group_by("warehouse_id", "sku_id").agg(
        pl.col("demand_mean").mean().alias("mean"), (pl.col("demand_units") == 0).mean().alias("zero")
    )
    slow = per_series.filter(pl.col("mean") <= pl.col("mean").quantile(0.25))
    fast = per_series.filter(pl.col("mean") >= pl.col("mean").quantile(0.9))
    assert slow["zero"].mean() > 0.4
    assert fast["zero"].mean() < 0.05
    assert per_series["mean"].max() > 20 * per_series["mean"].median()  # a few fast movers


# ---------------------------------------------------------------------------------------------------------
# Replenishments
# ---------------------------------------------------------------------------------------------------------
def test_simulate_demand_replenishment_lead_times_by_mode(world: dict[str, pl.DataFrame]) -> None:
    rep = world["replenishments"]
    closed = rep.filter(pl.col("received_at").is_not_null()).with_columns(
        ((pl.col("received_at") - pl.col("shipped_at")).dt.total_hours() / 24).alias("lead_days")
    )
    assert (closed["received_at"] >= closed["shipped_at"]).all()
    lead = dict(closed.group_by("mode").agg(pl.col("lead_days").mean()).iter_rows())
    assert lead["air"] < lead["rail"] < lead["sea"]
    assert 25 <= lead["sea"] <= 45 and 5 <= lead["air"] <= 12
    rail = rep.filter(pl.col("mode") == "rail")
    assert set(rail["warehouse_id"].unique()) <= {"WH-DE-FRA", "WH-GB-BHX"}
    assert (rep["units"] >= 1).all() and (rep["freight_cost_usd"] > 0).all()


def test_simulate_demand_open_replenishments_at_end(world: dict[str, pl.DataFrame]) -> None:
    rep = world["replenishments"]
    end_at = dt.datetime.combine(END + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    assert (rep["shipped_at"] < end_at).all()
    still_open = rep.filter(pl.col("received_at").is_null())
    assert still_open.height > 0
    assert still_open["customs_days"].null_count() == still_open.height
    assert (rep["received_at"].drop_nulls() < end_at).all()


def test_simulate_demand_chinese_new_year_slows_replenishment(world: dict[str, pl.DataFrame]) -> None:
    sea = world["replenishments"].filter(pl.col("mode") == "sea", pl.col("received_at").is_not_null())
    windows = [
        (chinese_new_year(y) - dt.timedelta(days=7), chinese_new_year(y) + dt.timedelta(days=14))
        for y in (2023, 2024, 2025)
    ]
    in_cny = pl.any_horizontal(pl.col("shipped_at").dt.date().is_between(lo, hi) for lo, hi in windows)
    lead_days = (pl.col("received_at") - pl.col("shipped_at")).dt.total_days()
    lead = sea.with_columns(in_cny.alias("cny"), lead_days.alias("lead_days"))
    by_cny = dict(lead.group_by("cny").agg(pl.col("lead_days").mean()).iter_rows())
    assert by_cny[True] > by_cny[False] + 3


# ---------------------------------------------------------------------------------------------------------
# Oracle
# ---------------------------------------------------------------------------------------------------------
def test_simulate_demand_oracle_mean_matches_realised_demand(world: dict[str, pl.DataFrame]) -> None:
    weekly = world["demand_weekly"]
    assert abs(weekly["demand_mean"].sum() / weekly["demand_units"].sum() - 1) < 0.03
    daily_units = world["demand_daily"]["demand_units"].sum()
    assert daily_units == weekly["demand_units"].sum()


def test_simulate_demand_oracle_quantiles_are_ordered_and_calibrated(world: dict[str, pl.DataFrame]) -> None:
    weekly = world["demand_weekly"]
    q = ["demand_q50", "demand_q80", "demand_q90", "demand_q95"]
    for lower, upper in zip(q, q[1:], strict=False):
        assert (weekly[lower] <= weekly[upper]).all()
    for column, level in zip(q, (0.5, 0.8, 0.9, 0.95), strict=True):
        coverage = (weekly["demand_units"] <= weekly[column]).mean()
        assert level - 0.02 <= coverage <= level + 0.1, column  # discrete: P(X <= q_p) >= p


def test_nb_quantiles_match_scipy() -> None:
    rng = np.random.default_rng(0)
    mean = np.concatenate([rng.lognormal(0.0, 2.0, 3000), [0.0, 1e-6, 2500.0]])
    size = rng.lognormal(1.0, 0.6, mean.size)
    probs = (0.5, 0.8, 0.9, 0.95)
    ours = _nb_quantiles(mean, size, probs)
    reference = stats.nbinom.ppf(np.array(probs)[:, None], size, size / (size + mean))
    np.testing.assert_array_equal(ours, np.nan_to_num(reference))


def test_simulate_demand_rejects_reversed_dates() -> None:
    with pytest.raises(ValueError, match="before start"):
        simulate_demand(
            DemandConfig(n_skus=3), dt.date(2024, 2, 1), dt.date(2024, 1, 1), np.random.default_rng(0)
        )
