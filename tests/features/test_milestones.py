"""In-transit snapshots: state after each scan, as-of milestone history, latest state equals training rows."""

from __future__ import annotations

import datetime as dt
from functools import cache

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.contract.schema import table_spec
from features.milestones import (
    MILESTONE_FEATURES,
    MilestoneFeatureConfig,
    build_milestone_snapshots,
    latest_snapshot,
    milestone_feature_set,
)
from features.shipment_features import build_booking_features
from features.sources.simulator import SimulatedWorld, SimulatorConfig, simulate
from tests.features.test_shipment_features import _shipments, _t


def _events(rows: list[tuple[str, str, float, str]]) -> pl.DataFrame:
    schema = table_spec("shipment_events").schema
    return pl.DataFrame(
        [(sid, ev, _t(d), c, None, None) for sid, ev, d, c in rows],
        schema=["shipment_id", "event", "event_at", "country", "location", "leg_id"],
        orient="row",
    ).select(pl.col(c).cast(t) for c, t in schema.items())


def _example() -> tuple[pl.DataFrame, pl.DataFrame]:
    ships = _shipments(
        [
            {"shipment_id": "a", "created": 0, "delivered": 6.5, "promised": 7},
            {"shipment_id": "b", "created": 7, "promised": 20},
        ]
    )
    events = _events(
        [
            ("a", "picked_up", 0.5, "CN"),
            ("a", "linehaul_departed", 1, "CN"),
            ("a", "import_customs_entered", 3, "US"),
            ("a", "customs_held", 3.5, "US"),
            ("a", "customs_released", 5, "US"),
            ("a", "delivery_failed", 6, "US"),
            ("a", "delivered", 6.5, "US"),
            ("b", "picked_up", 7.5, "CN"),
            ("b", "linehaul_departed", 9, "CN"),
        ]
    )
    return ships, events


def test_build_milestone_snapshots_state_after_each_scan() -> None:
    ships, events = _example()
    snaps = build_milestone_snapshots(ships, events, build_booking_features(ships))
    got = snaps.filter(pl.col("shipment_id") == "a").select(
        pl.col("last_event").cast(pl.String),
        "elapsed_days",
        "days_since_prev_scan",
        "n_scans",
        "n_failed_attempts",
        "has_customs_held",
        "n_countries_seen",
        "is_in_destination",
        "days_to_promise",
        "remaining_days",
    )
    expected = pl.DataFrame(
        {
            "last_event": [
                "picked_up",
                "linehaul_departed",
                "import_customs_entered",
                "customs_held",
                "customs_released",
                "delivery_failed",
            ],
            "elapsed_days": [0.5, 1.0, 3.0, 3.5, 5.0, 6.0],
            "days_since_prev_scan": [0.5, 0.5, 2.0, 0.5, 1.5, 1.0],
            "n_scans": [1, 2, 3, 4, 5, 6],
            "n_failed_attempts": [0, 0, 0, 0, 0, 1],
            "has_customs_held": [False, False, False, True, True, True],
            "n_countries_seen": [1, 1, 2, 2, 2, 2],
            "is_in_destination": [False, False, True, True, True, True],
            # the promise ends at the end of day 7 in New York (2025-03-10, EDT: 04:00 UTC the next day)
            "days_to_promise": [d + 4 / 24 for d in (7.5, 7.0, 5.0, 4.5, 3.0, 2.0)],
            "remaining_days": [6.0, 5.5, 3.5, 3.0, 1.5, 0.5],
        },
        schema_overrides={"n_scans": pl.Int32, "n_failed_attempts": pl.Int32, "n_countries_seen": pl.Int32},
    )
    assert_frame_equal(got, expected)
    # b: open (null target); its scans see a's remaining days after the same milestone (a delivered at 6.5)
    b = snaps.filter(pl.col("shipment_id") == "b")
    assert b["remaining_days"].to_list() == [None, None]
    assert b["lane_event_remaining_days_q50_last50"].to_list() == [6.0, 5.5]
    assert b["lane_event_n_obs"].to_list() == [1, 1]
    # a's own scans never see a (delivered after them)
    assert snaps.filter(pl.col("shipment_id") == "a")["lane_event_n_obs"].to_list() == [0] * 6


def test_build_milestone_snapshots_columns_follow_the_feature_set() -> None:
    ships, events = _example()
    snaps = build_milestone_snapshots(ships, events, build_booking_features(ships))
    assert snaps.columns == ["shipment_id", "snapshot_at", *MILESTONE_FEATURES.names, "remaining_days"]
    assert milestone_feature_set(MilestoneFeatureConfig()) == MILESTONE_FEATURES
    assert "last_event" in MILESTONE_FEATURES.categorical


def test_latest_snapshot_uses_only_what_is_known_at_as_of() -> None:
    ships, events = _example()
    booking = build_booking_features(ships)
    # day 4: a is held in customs, b not created yet
    now = latest_snapshot(ships, events, booking, _t(4))
    assert now["shipment_id"].to_list() == ["a"]
    row = now.row(0, named=True)
    assert (row["last_event"], row["n_scans"], row["snapshot_age_days"]) == ("customs_held", 4, 0.5)
    # day 8: a is delivered (closed); b has one scan; its history sees a (delivered at 6.5 < 7.5)
    later = latest_snapshot(ships, events, booking, _t(8))
    assert later["shipment_id"].to_list() == ["b"]
    assert later["lane_event_remaining_days_q50_last50"].to_list() == [6.0]
    # day 7.2: b is booked but not scanned
    unscanned = latest_snapshot(ships, events, booking, _t(7.2)).row(0, named=True)
    assert (unscanned["shipment_id"], unscanned["last_event"], unscanned["n_scans"]) == ("b", None, 0)
    assert unscanned["snapshot_at"] == _t(7)
    with pytest.raises(ValueError, match="timezone"):
        latest_snapshot(ships, events, booking, dt.datetime(2025, 3, 10))


def test_scans_after_a_terminal_event_are_not_snapshots() -> None:
    ships, events = _example()
    extra = pl.concat([events, _events([("a", "out_for_delivery", 6.8, "US")])])
    snaps = build_milestone_snapshots(ships, extra, build_booking_features(ships))
    assert snaps.filter(pl.col("shipment_id") == "a").height == 6


def test_parallel_legs_collapse_to_one_chain_that_ends_with_the_last_leg() -> None:
    ships = _shipments([{"shipment_id": "m", "created": 0, "delivered": 9, "promised": 12}])
    legs = _events(
        [
            ("m", "picked_up", 0.5, "CN"),  # leg A
            ("m", "picked_up", 1.0, "CN"),  # leg B
            ("m", "linehaul_departed", 2.0, "CN"),  # A
            ("m", "delivered", 5.0, "US"),  # A ends: B is still on its way
            ("m", "linehaul_departed", 6.0, "CN"),  # B
            ("m", "delivered", 9.0, "US"),  # B ends: the shipment's chain ends
            ("m", "out_for_delivery", 9.5, "US"),  # after the end: not a state
        ]
    ).with_columns(pl.Series("leg_id", ["A", "B", "A", "A", "B", "B", "B"]))
    booking = build_booking_features(ships)
    snaps = build_milestone_snapshots(ships, legs, booking)
    assert snaps["last_event"].cast(pl.String).to_list() == [
        "picked_up",
        "picked_up",
        "linehaul_departed",
        "delivered",
        "linehaul_departed",
    ]
    assert snaps["n_scans"].to_list() == [1, 2, 3, 4, 5]
    assert latest_snapshot(ships, legs, booking, as_of=_t(5.5))["n_scans"].to_list() == [4]  # still open
    assert latest_snapshot(ships, legs, booking, as_of=_t(9.2)).height == 0  # closed
    # without leg ids the first delivery scan ends the chain
    one_chain = build_milestone_snapshots(
        ships, legs.with_columns(pl.lit(None, pl.String).alias("leg_id")), booking
    )
    assert one_chain.height == 3


@cache
def _world() -> SimulatedWorld:
    base = SimulatorConfig(start_date=dt.date(2024, 9, 2), end_date=dt.date(2025, 3, 30), seed=5)
    return simulate(
        base.model_copy(
            update={
                "shipments": base.shipments.model_copy(update={"n_shipments": 3_000}),
                "demand": base.demand.model_copy(update={"n_skus": 20}),
            }
        )
    )


def test_latest_snapshot_equals_the_training_row_of_the_same_scan() -> None:
    t = _world().tables
    ships, events = t["shipments"], t["shipment_events"]
    booking = build_booking_features(ships, lanes=t["lanes"])
    train = build_milestone_snapshots(ships, events, booking)
    as_of = dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC)
    now = latest_snapshot(ships, events, booking, as_of)
    assert now.height > 20
    assert (now["snapshot_at"] <= as_of).all()
    scanned = now.filter(pl.col("n_scans") > 0).drop("as_of", "snapshot_age_days")
    same = train.join(scanned.select("shipment_id", "snapshot_at"), on=["shipment_id", "snapshot_at"])
    assert same.height == scanned.height
    assert_frame_equal(
        scanned.sort("shipment_id"),
        same.drop("remaining_days").sort("shipment_id"),
        check_exact=False,
        rel_tol=1e-9,
    )
    # events after as_of change nothing
    past_only = latest_snapshot(ships, events.filter(pl.col("event_at") <= as_of), booking, as_of)
    assert_frame_equal(now, past_only)


def test_lane_event_history_tracks_remaining_days() -> None:
    t = _world().tables
    snaps = build_milestone_snapshots(
        t["shipments"], t["shipment_events"], build_booking_features(t["shipments"])
    )
    seen = snaps.drop_nulls(["remaining_days", "lane_event_remaining_days_q50_last50"])
    assert seen.select(pl.corr("lane_event_remaining_days_q50_last50", "remaining_days")).item() > 0.7
