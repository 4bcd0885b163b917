"""The shipment side of the simulator: contract, determinism, causal structure, censoring and the oracle."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from features.contract.schema import EVENT_RANK, TABLES
from features.ingest import validate_tables
from features.reference.calendar import daily_calendar
from features.sources.simulator.shipments import ShipmentConfig, simulate_shipments
from features.sources.simulator.world import DESTINATIONS, HS_CHAPTERS, POLICY_CHANGES

START, END = dt.date(2024, 9, 2), dt.date(2025, 4, 27)  # 11.11, BFCM, Christmas, Chinese New Year 2025
N = 8_000
Tables = tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]


@cache
def _sim(seed: int = 5, n: int = N, closures: tuple[tuple[str, dt.date], ...] = ()) -> Tables:
    config = ShipmentConfig(n_shipments=n, n_sellers=300, oracle_draws=32, extra_closures=closures)
    return simulate_shipments(config, START, END, np.random.default_rng(seed))


def _shipments(seed: int = 5) -> pl.DataFrame:
    """Shipments with the oracle, realised transit days and lateness."""
    tables, oracle = _sim(seed)
    return (
        tables["shipments"]
        .join(oracle["shipments"], on="shipment_id")
        .with_columns(
            transit_days=(pl.col("delivered_at") - pl.col("created_at")).dt.total_seconds() / 86_400,
            is_late=pl.col("delivered_at").dt.date() > pl.col("promised_date"),
        )
    )


def _end_of_window() -> dt.datetime:
    return dt.datetime.combine(END + dt.timedelta(days=1), dt.time(), dt.UTC)


def test_simulate_shipments_same_seed_gives_identical_tables() -> None:
    config = ShipmentConfig(n_shipments=N, n_sellers=300, oracle_draws=32)
    tables, oracle = simulate_shipments(config, START, END, np.random.default_rng(5))
    first_tables, first_oracle = _sim()
    for name, df in first_tables.items():
        assert_frame_equal(tables[name], df)
    for name, df in first_oracle.items():
        assert_frame_equal(oracle[name], df)


def test_simulate_shipments_other_seed_differs() -> None:
    assert not _sim(6)[0]["shipments"].equals(_sim(5)[0]["shipments"])
    assert not _sim(6)[0]["shipment_events"].equals(_sim(5)[0]["shipment_events"])


@pytest.mark.parametrize("name", ["shipments", "shipment_events", "customs_declarations", "lanes"])
def test_simulate_shipments_tables_have_exactly_the_contract_schema(name: str) -> None:
    df = _sim()[0][name]
    assert df.schema == TABLES[name].schema
    assert df.height > 0


def test_simulate_shipments_passes_ingest_validation() -> None:
    result = validate_tables(_sim()[0])
    assert result.quarantine.height == 0, result.quarantine.group_by("table", "rule").len().to_dicts()


def test_events_follow_event_rank_in_time_and_never_precede_creation() -> None:
    tables, _ = _sim()
    rank = pl.col("event").cast(pl.String).replace_strict(EVENT_RANK, return_dtype=pl.Int8)
    events = (
        tables["shipment_events"]
        .join(tables["shipments"].select("shipment_id", "created_at"), on="shipment_id")
        .with_columns(rank.alias("rank"))
        .sort("shipment_id", "event_at", "rank", maintain_order=True)
        .with_columns(previous=pl.col("rank").cum_max().shift(1).over("shipment_id"))
    )
    assert (events["event_at"] >= events["created_at"]).all()
    assert events.filter(pl.col("rank") < pl.col("previous")).height == 0
    terminal = events.filter(pl.col("event").is_in(["delivered", "returned", "lost"]))
    assert terminal["shipment_id"].is_unique().all()


def test_delivered_at_is_set_iff_status_is_delivered() -> None:
    s = _sim()[0]["shipments"]
    assert (s["delivered_at"].is_not_null() == (s["status"] == "delivered")).all()
    assert set(s["status"].unique()) == {"delivered", "in_transit", "returned", "lost"}


def test_in_transit_shipments_have_no_events_after_end_and_no_terminal_event() -> None:
    tables, _ = _sim()
    events = tables["shipment_events"]
    assert events["event_at"].max() <= _end_of_window()
    open_ids = tables["shipments"].filter(pl.col("status") == "in_transit")["shipment_id"]
    assert open_ids.len() > 0
    open_events = events.filter(pl.col("shipment_id").is_in(open_ids.implode()))
    assert not open_events["event"].is_in(["delivered", "returned", "lost"]).any()
    declared = tables["customs_declarations"]
    assert declared["declared_at"].max() <= _end_of_window()
    assert (declared.filter(pl.col("outcome") == "held")["released_at"].is_null()).all()


def test_modes_travel_within_their_typical_door_to_door_days() -> None:
    medians = dict(_shipments().group_by("mode").agg(pl.col("transit_days").median()).iter_rows())
    assert 10 <= medians["postal"] <= 40
    assert 6 <= medians["dedicated_line"] <= 15
    assert 3 <= medians["express"] <= 7
    assert 1 <= medians["overseas_warehouse"] <= 5


def test_express_is_faster_than_postal_on_every_shared_lane() -> None:
    lanes = (
        _shipments()
        .filter(pl.col("mode").is_in(["express", "postal"]), pl.col("status") == "delivered")
        .group_by("origin_hub", "destination_country")
        .agg(
            pl.col("transit_days").filter(pl.col("mode") == "express").mean().alias("express"),
            pl.col("transit_days").filter(pl.col("mode") == "postal").mean().alias("postal"),
            (pl.col("mode") == "express").sum().alias("n_express"),
            (pl.col("mode") == "postal").sum().alias("n_postal"),
        )
        .filter(pl.col("n_express") >= 5, pl.col("n_postal") >= 5)
    )
    assert lanes.height >= 15
    assert (lanes["express"] < lanes["postal"]).all()


def test_shipments_booked_in_ecommerce_peaks_are_slower_than_comparable_off_peak_ones() -> None:
    calendar = daily_calendar(START, END).select("date", "ecommerce_peak", "origin_capacity")
    s = (
        _shipments()
        .filter(pl.col("status") == "delivered", pl.col("mode") != "overseas_warehouse")
        .with_columns(pl.col("created_at").dt.date().alias("date"))
        .join(calendar, on="date")
        .filter(pl.col("origin_capacity") == 1.0)  # leave Chinese New Year / Golden Week out
        .with_columns(is_peak=pl.col("ecommerce_peak").is_not_null())
    )
    strata = (
        s.group_by("mode", "destination_country")
        .agg(
            pl.col("transit_days").filter(pl.col("is_peak")).mean().alias("peak"),
            pl.col("transit_days").filter(~pl.col("is_peak")).mean().alias("normal"),
            pl.col("is_peak").sum().alias("n_peak"),
        )
        .drop_nulls()
    )
    gap = (strata["peak"] - strata["normal"]) * strata["n_peak"]
    assert gap.sum() / strata["n_peak"].sum() > 0.5


def _inspections() -> pl.DataFrame:
    tables, _ = _sim()
    return tables["customs_declarations"].with_columns(chapter=pl.col("hs_code").str.slice(0, 2))


def test_high_risk_hs_chapters_are_inspected_more_than_low_risk_ones() -> None:
    risk = {c.chapter: c.risk for c in HS_CHAPTERS}
    high = [c for c, r in risk.items() if r >= 1.0]
    low = [c for c, r in risk.items() if r <= -0.2]
    d = _inspections()
    rate_high = d.filter(pl.col("chapter").is_in(high))["is_inspected"].mean()
    rate_low = d.filter(pl.col("chapter").is_in(low))["is_inspected"].mean()
    assert rate_high > 2 * rate_low


def test_declarations_above_de_minimis_are_inspected_more() -> None:
    first_change = min(c.date for c in POLICY_CHANGES)
    threshold = pl.DataFrame(
        {
            "destination_country": [d.country for d in DESTINATIONS],
            "de_minimis": [d.de_minimis_usd for d in DESTINATIONS],
        }
    )
    d = (
        _inspections()
        .filter(pl.col("declared_at").dt.date() < first_change - dt.timedelta(days=14))
        .join(threshold, on="destination_country")
        .with_columns(above=pl.col("declared_value_usd") > pl.col("de_minimis"))
    )
    rates = dict(d.group_by("above").agg(pl.col("is_inspected").mean()).iter_rows())
    assert d["above"].sum() > 100
    assert rates[True] > 2 * rates[False]


def test_customs_declarations_are_consistent_with_shipments_and_events() -> None:
    tables, _ = _sim()
    declared = tables["customs_declarations"].join(
        tables["shipments"].select("shipment_id", "mode", "status"), on="shipment_id"
    )
    assert (declared["mode"] != "overseas_warehouse").all()
    assert declared["shipment_id"].is_unique().all()
    released = tables["shipment_events"].filter(pl.col("event") == "customs_released")
    both = declared.join(released, on="shipment_id").filter(pl.col("released_at").is_not_null())
    assert both.height > 1_000
    assert (both["released_at"] == both["event_at"]).all()
    seized = declared.filter(pl.col("outcome") == "seized")
    assert (seized["status"] != "delivered").all()
    assert (declared.filter(pl.col("is_fraud"))["is_inspected"]).all()


def test_shipping_costs_follow_the_lane_rates() -> None:
    tables, _ = _sim()
    calendar = daily_calendar(START, END).select("date", "ecommerce_peak")
    remote = [r.code for d in DESTINATIONS for r in d.regions if r.is_remote]
    s = (
        tables["shipments"]
        .filter(pl.col("mode") != "overseas_warehouse", ~pl.col("destination_region").is_in(remote))
        .with_columns(pl.col("created_at").dt.date().alias("date"))
        .join(calendar, on="date")
        .join(tables["lanes"], on=["origin_hub", "destination_country", "mode", "carrier"], how="left")
    )
    assert s["base_rate_usd"].null_count() == 0, "a shipment travelled on a lane missing from `lanes`"
    tariff = pl.col("base_rate_usd") + pl.col("per_kg_rate_usd") * pl.col("weight_kg")
    off_peak = s.filter(pl.col("ecommerce_peak").is_null())
    assert ((off_peak["shipping_cost_usd"] - off_peak.select(tariff).to_series()).abs() < 0.02).all()
    peak = s.filter(pl.col("ecommerce_peak").is_not_null())
    assert (peak["shipping_cost_usd"] > peak.select(tariff).to_series()).all()


def test_a_destination_holiday_never_shortens_transit() -> None:
    first = dt.date(2024, 12, 16)
    closed = tuple((c, first + dt.timedelta(days=i)) for c in ("US", "GB", "DE") for i in range(6))
    base_tables, base_oracle = _sim()
    more_tables, more_oracle = _sim(closures=closed)
    booked = ["delivered_at", "status"]
    assert_frame_equal(more_tables["shipments"].drop(booked), base_tables["shipments"].drop(booked))
    both = base_tables["shipments"].join(more_tables["shipments"], on="shipment_id", suffix="_more")
    delivered = both.filter(pl.col("delivered_at").is_not_null(), pl.col("delivered_at_more").is_not_null())
    assert (delivered["delivered_at_more"] >= delivered["delivered_at"]).all()
    assert (delivered["delivered_at_more"] > delivered["delivered_at"]).sum() > 50
    newly_delivered = both.filter(pl.col("delivered_at").is_null(), pl.col("delivered_at_more").is_not_null())
    assert newly_delivered.height == 0
    oracle = base_oracle["shipments"].join(more_oracle["shipments"], on="shipment_id", suffix="_more")
    for q in ("eta_days_q50", "eta_days_q95", "p_late"):
        assert (oracle[f"{q}_more"].fill_null(0) >= oracle[q].fill_null(0) - 1e-9).all(), q


def test_oracle_p_late_is_calibrated_against_realised_lateness() -> None:
    s = _shipments().filter(
        pl.col("status") == "delivered", pl.col("created_at").dt.date() < END - dt.timedelta(days=60)
    )
    assert s.height > 4_000
    assert abs(s["p_late"].mean() - s["is_late"].cast(pl.Float64).mean()) < 0.02
    assert 0.05 < s["is_late"].mean() < 0.2


def test_oracle_quantiles_do_not_cross_and_cover_the_realised_transit() -> None:
    s = _shipments().filter(pl.col("status") == "delivered", pl.col("eta_days_q50").is_not_null())
    assert (s["eta_days_q50"] <= s["eta_days_q80"]).all()
    assert (s["eta_days_q80"] <= s["eta_days_q95"]).all()
    covered = (s["transit_days"] <= s["eta_days_q80"]).mean()
    assert 0.74 < covered < 0.86
    assert s["p_inspection"].is_between(0, 1).all()


def test_shipment_config_is_frozen_and_rejects_unknown_settings() -> None:
    with pytest.raises(ValidationError):
        ShipmentConfig(n_shipment=10)  # type: ignore[call-arg]
    config = ShipmentConfig()
    with pytest.raises(ValidationError):
        config.n_shipments = 5  # type: ignore[misc]


def test_a_given_sku_catalogue_is_shipped_with_its_own_hs_codes() -> None:
    skus = pl.DataFrame(
        {
            "sku_id": ["SKU0001", "SKU0002", "SKU0003"],
            "category": ["toys", "garden", "beauty"],
            "hs_code": ["950300", "820190", "330499"],  # 82 has no own risk profile: the neutral one applies
            "unit_cost_usd": [3.0, 5.0, 2.0],
            "price_usd": [12.0, 30.0, 9.0],
            "weight_kg": [0.4, None, 0.1],
        }
    )
    config = ShipmentConfig(n_shipments=500, n_sellers=20, oracle_draws=4)
    tables, _ = simulate_shipments(config, START, END, np.random.default_rng(1), skus=skus)
    shipped = tables["shipments"].select("sku_id", "hs_code").unique()
    assert shipped.join(skus.select("sku_id", "hs_code"), on=["sku_id", "hs_code"], how="anti").height == 0
    assert shipped.height == 3


def test_every_shipment_travels_on_a_lane_of_the_lanes_table() -> None:
    tables, _ = _sim()
    lanes = tables["lanes"]
    key = ["origin_hub", "destination_country", "mode", "carrier"]
    assert lanes.select(key).is_unique().all()
    assert tables["shipments"].join(lanes, on=key, how="anti").height == 0
    assert (lanes["contract_transit_days"] > 0).all()


def test_postal_tracking_misses_more_scans_than_express() -> None:
    tables, _ = _sim()
    delivered = tables["shipments"].filter(pl.col("status") == "delivered").select("shipment_id", "mode")
    scans = (
        tables["shipment_events"]
        .filter(pl.col("event").is_in(["picked_up", "arrived_origin_hub", "linehaul_departed"]))
        .group_by("shipment_id")
        .len()
    )
    missing = (
        delivered.join(scans, on="shipment_id", how="left")
        .group_by("mode")
        .agg((pl.col("len").fill_null(0) < 3).mean().alias("missing"))
    )
    rates = dict(missing.iter_rows())
    assert rates["postal"] > 3 * rates["express"]


def test_remote_regions_are_late_more_often() -> None:
    remote = [r.code for d in DESTINATIONS for r in d.regions if r.is_remote]
    s = _shipments().filter(pl.col("status") == "delivered")
    rates = dict(
        s.group_by(pl.col("destination_region").is_in(remote).alias("remote"))
        .agg(pl.col("is_late").mean())
        .iter_rows()
    )
    assert rates[True] > rates[False] + 0.05
