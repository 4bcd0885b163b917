"""Booking features: explicit as-of values, no leakage from the future, stable names, signal on a world."""

from __future__ import annotations

import datetime as dt
from functools import cache

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.contract.schema import table_spec
from features.feature_set import FeatureSet
from features.shipment_features import (
    FEATURES,
    BookingFeatureConfig,
    add_shipment_targets,
    booking_feature_set,
    booking_history_state,
    build_booking_features,
    resolve_booking_config,
)
from features.sources.simulator import SimulatedWorld, SimulatorConfig, simulate

D0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def _t(days: float) -> dt.datetime:
    return D0 + dt.timedelta(days=days)


def _shipments(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Contract-typed shipments: each row gives at least id, created/delivered days and promised day."""
    defaults: dict[str, object] = {
        "origin_country": "CN",
        "origin_hub": "SZX",
        "destination_country": "US",
        "destination_region": "US-CA",
        "mode": "express",
        "carrier": "DHL",
        "weight_kg": 0.5,
        "declared_value_usd": 20.0,
        "hs_code": "851830",
        "item_count": 1,
        "incoterm": "DDP",
        "shipping_cost_usd": 9.0,
        "seller_id": None,
        "sku_id": None,
        "warehouse_id": None,
    }
    records = []
    for r in rows:
        rec = defaults | r
        created, delivered = rec.pop("created"), rec.pop("delivered", None)
        rec["created_at"] = _t(created)  # type: ignore[arg-type]
        rec["delivered_at"] = None if delivered is None else _t(delivered)  # type: ignore[arg-type]
        rec["promised_date"] = (D0 + dt.timedelta(days=rec.pop("promised"))).date()  # type: ignore[arg-type]
        rec.setdefault("status", "in_transit" if delivered is None else "delivered")
        records.append(rec)
    schema = table_spec("shipments").schema
    return pl.DataFrame(records).select(pl.col(c).cast(t) for c, t in schema.items())


def _lane_example() -> pl.DataFrame:
    """Lane SZX-US-express-DHL and one parcel on the same destination x mode with another carrier."""
    return _shipments(
        [
            # on time: delivered day 3.5 (3.5 days), promised day 5
            {"shipment_id": "s1", "created": 0, "delivered": 3.5, "promised": 5},
            # late: promised day 4, still open when that day ends (known late at day 5), delivered day 8
            {"shipment_id": "s2", "created": 1, "delivered": 8, "promised": 4},
            # never delivered (lost): known late at the end of its promised day 6
            {"shipment_id": "s3", "created": 2, "promised": 6, "status": "lost"},
            {"shipment_id": "s4", "created": 6, "delivered": 10, "promised": 12},
            {"shipment_id": "s5", "created": 9, "promised": 14},
            {"shipment_id": "s6", "created": 9, "promised": 14, "carrier": "FedEx"},
        ]
    )


def test_build_booking_features_lane_history_explicit_values() -> None:
    out = build_booking_features(_lane_example()).select(
        "shipment_id",
        "lane_n_obs",
        "lane_transit_days_q50_last50",
        "lane_transit_days_mean_last50",
        "lane_on_time_rate_last100",
        "lane_booked_count_7d",
        "dest_mode_n_obs",
        "dest_mode_on_time_rate_last200",
    )
    expected = pl.DataFrame(
        {
            "shipment_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
            # delivered strictly before creation: s4 sees s1 only, s5 sees s1 and s2
            "lane_n_obs": [0, 0, 0, 1, 2, 0],
            "lane_transit_days_q50_last50": [None, None, None, 3.5, 5.25, None],
            "lane_transit_days_mean_last50": [None, None, None, 3.5, 5.25, None],
            # s4 (day 6): s1 on time, s2 late; s5 (day 9): s1 on time, s2 and s3 late
            "lane_on_time_rate_last100": [None, None, None, 0.5, 1 / 3, None],
            # created in [created - 7 days, created): s5 sees s3 (day 2) and s4 (day 6)
            "lane_booked_count_7d": [0, 1, 2, 3, 2, 0],
            "dest_mode_n_obs": [0, 0, 0, 1, 2, 2],
            "dest_mode_on_time_rate_last200": [None, None, None, 0.5, 1 / 3, 1 / 3],
        },
        schema_overrides={
            "lane_booked_count_7d": pl.Int64,
            "lane_n_obs": pl.Int64,
            "dest_mode_n_obs": pl.Int64,
        },
    )
    assert_frame_equal(out, expected)


def test_build_booking_features_keeps_input_order_and_ids() -> None:
    ships = _lane_example()
    shuffled = ships.sample(fraction=1.0, shuffle=True, seed=3)
    out = build_booking_features(shuffled)
    assert out["shipment_id"].to_list() == shuffled["shipment_id"].to_list()
    by_id = build_booking_features(ships)
    assert_frame_equal(out.sort("shipment_id"), by_id.sort("shipment_id"))


def test_build_booking_features_customs_history_is_as_of() -> None:
    ships = _shipments(
        [
            {"shipment_id": "a", "created": 1.5, "promised": 9},
            {"shipment_id": "b", "created": 4, "promised": 9},
            {"shipment_id": "c", "created": 4, "promised": 9, "hs_code": "610910"},
        ]
    )
    decl = pl.DataFrame(
        {
            "declaration_id": ["d1", "d2"],
            "shipment_id": [None, None],
            "declared_at": [_t(0), _t(1)],
            "destination_country": ["US", "US"],
            "hs_code": ["851770", "850440"],
            "declared_value_usd": [10.0, 12.0],
            "is_inspected": [True, False],
            "outcome": ["released", "released"],
            "released_at": [_t(3), _t(1.5)],
        }
    )
    schema = table_spec("customs_declarations").schema
    decl = decl.with_columns(pl.lit(None).alias(c) for c in schema if c not in decl.columns).select(
        pl.col(c).cast(t) for c, t in schema.items()
    )
    out = build_booking_features(ships, declarations=decl).select(
        "customs_is_inspected_rate_last200",
        "customs_n_obs",
        "customs_clearance_days_mean_last200",
        "customs_dest_is_inspected_rate_last1000",
    )
    # at day 1.5 only d1's inspection is known (1 day after lodging); no release strictly before day 1.5
    assert out.row(0) == (1.0, 1, None, 1.0)
    assert out.row(1) == (0.5, 2, 1.75, 0.5)
    # another HS chapter has no history, the destination-level rate still applies
    assert out.row(2) == (None, 0, None, 0.5)


def test_build_booking_features_calendar_promise_and_de_minimis() -> None:
    ships = _shipments(
        [
            {"shipment_id": "xmas", "created": 292, "promised": 305, "declared_value_usd": 30.0},
            {"shipment_id": "spring", "created": 0, "promised": 9, "declared_value_usd": 50.0},
        ]
    )
    assert ships["created_at"].dt.date().to_list()[0] == dt.date(2025, 12, 20)
    lanes = pl.DataFrame(
        {
            "origin_hub": ["SZX"],
            "origin_country": ["CN"],
            "destination_country": ["US"],
            "mode": ["express"],
            "carrier": ["DHL"],
            "contract_transit_days": [6.0],
            "base_rate_usd": [14.0],
            "per_kg_rate_usd": [16.0],
        }
    ).cast(dict(table_spec("lanes").schema))  # type: ignore[arg-type]
    out = build_booking_features(ships, lanes=lanes)
    xmas = out.row(0, named=True)
    # no lane history: the expected transit is the contract; window 2025-12-20 .. 12-26
    assert xmas["expected_transit_days"] == 6.0
    assert xmas["promised_days"] == 13
    assert xmas["promise_slack_days"] == 7.0
    assert xmas["dest_holidays_in_window"] == 1  # Christmas Day
    assert xmas["peak_days_in_window"] == 3  # the Christmas peak ends on 12-22
    assert (xmas["ecommerce_peak"], xmas["is_ecommerce_peak"]) == ("christmas", True)
    assert xmas["booking_weekday"] == 6  # Saturday (ISO)
    # the US threshold is 0 from 2025-08-29: everything is dutiable
    assert (xmas["de_minimis_usd"], xmas["is_over_de_minimis"], xmas["de_minimis_headroom_usd"]) == (
        0.0,
        True,
        -30.0,
    )
    spring = out.row(1, named=True)
    assert (spring["de_minimis_usd"], spring["is_over_de_minimis"]) == (800.0, False)
    assert spring["ecommerce_peak"] is None
    assert spring["origin_capacity"] == 1.0
    assert out.schema["ecommerce_peak"] == pl.Enum(["singles_day", "black_friday_cyber_monday", "christmas"])


def test_add_shipment_targets_labels() -> None:
    ships = _lane_example()
    out = add_shipment_targets(ships, as_of=_t(13)).select(
        "shipment_id", "transit_days", "is_late", "is_observed"
    )
    expected = pl.DataFrame(
        {
            "shipment_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
            "transit_days": [3.5, 7.0, None, 4.0, None, None],
            # s3 lost: late; s5/s6 open and promised day 14 has not ended at day 13: unknown
            "is_late": [False, True, True, False, None, None],
            "is_observed": [True, True, False, True, False, False],
        }
    )
    assert_frame_equal(out, expected)
    later = add_shipment_targets(ships, as_of=_t(16))["is_late"].to_list()
    assert later[4:] == [True, True]
    assert add_shipment_targets(ships)["is_late"].to_list()[4:] == [None, None]


def test_booking_feature_names_are_stable_and_follow_the_config() -> None:
    cfg = BookingFeatureConfig()
    assert booking_feature_set(cfg) == booking_feature_set(BookingFeatureConfig()) == FEATURES
    assert "lane_transit_days_q80_last50" in FEATURES.numeric
    assert "lane_transit_days_q50_last10_minus_last100" in FEATURES.numeric
    assert set(FEATURES.categorical) == {
        "mode",
        "carrier",
        "origin_hub",
        "destination_country",
        "destination_region",
        "hs_chapter",
        "incoterm",
        "ecommerce_peak",
    }
    other = booking_feature_set(BookingFeatureConfig(transit_n=30, transit_quantiles=(0.5, 0.9)))
    assert "lane_transit_days_q90_last30" in other.numeric
    assert "lane_transit_days_q80_last50" not in other.numeric
    with pytest.raises(ValueError):
        BookingFeatureConfig(unknown=1)  # type: ignore[call-arg]


def test_build_booking_features_has_the_same_columns_with_or_without_optional_tables() -> None:
    world = _world()
    ships = world.tables["shipments"].head(300)
    bare = build_booking_features(ships)
    full = build_booking_features(
        ships, lanes=world.tables["lanes"], declarations=world.tables["customs_declarations"]
    )
    assert bare.columns == full.columns == ["shipment_id", "created_at", *FEATURES.names]
    assert bare.schema == full.schema
    assert bare["contract_transit_days"].null_count() == bare.height
    assert full["contract_transit_days"].null_count() == 0


# ---------------------------------------------------------------------------------------------------------
# On a small simulated world
# ---------------------------------------------------------------------------------------------------------
@cache
def _world() -> SimulatedWorld:
    base = SimulatorConfig(start_date=dt.date(2024, 6, 3), end_date=dt.date(2025, 3, 30), seed=11)
    return simulate(
        base.model_copy(
            update={
                "shipments": base.shipments.model_copy(update={"n_shipments": 6_000}),
                "demand": base.demand.model_copy(update={"n_skus": 20}),
            }
        )
    )


@cache
def _world_features() -> pl.DataFrame:
    t = _world().tables
    return build_booking_features(t["shipments"], lanes=t["lanes"], declarations=t["customs_declarations"])


def test_feature_set_columns_have_model_ready_dtypes() -> None:
    df = _world_features()
    fs: FeatureSet = FEATURES
    for c in fs.numeric:
        assert df.schema[c].is_numeric() or df.schema[c] == pl.Boolean, c
    for c in fs.categorical:
        assert df.schema[c] in (pl.String,) or isinstance(df.schema[c], pl.Enum), c


def test_lane_median_tracks_realised_transit_and_express_beats_postal() -> None:
    t = _world().tables
    df = _world_features().join(
        add_shipment_targets(t["shipments"]).select("shipment_id", "transit_days"), on="shipment_id"
    )
    seen = df.filter(pl.col("lane_n_obs") >= 5).drop_nulls("transit_days")
    assert seen.height > 1_000
    corr = seen.select(pl.corr("lane_transit_days_q50_last50", "transit_days")).item()
    assert corr > 0.7
    by_mode = dict(
        seen.group_by(pl.col("mode").cast(pl.String))
        .agg(pl.col("lane_transit_days_q50_last50").median())
        .rows()
    )
    assert by_mode["express"] < by_mode["dedicated_line"] < by_mode["postal"]


@settings(max_examples=4, deadline=None)
@given(cut=st.floats(0.2, 0.9))
def test_appending_future_shipments_never_changes_past_features(cut: float) -> None:
    t = _world().tables
    ships = t["shipments"].sort("created_at")
    cutoff = ships["created_at"][int(cut * ships.height)]
    past = ships.filter(pl.col("created_at") <= cutoff)
    kw = {"lanes": t["lanes"], "declarations": t["customs_declarations"]}
    alone = build_booking_features(past, **kw)
    with_future = build_booking_features(ships, **kw).filter(pl.col("created_at") <= cutoff)
    assert_frame_equal(alone, with_future)


def test_scoring_new_bookings_against_a_history_equals_the_batch_rows() -> None:
    t = _world().tables
    ships = t["shipments"]
    new = ships.sample(n=50, seed=1)
    scored = build_booking_features(
        new, history=ships, lanes=t["lanes"], declarations=t["customs_declarations"]
    )
    batch = _world_features().join(new.select("shipment_id"), on="shipment_id", maintain_order="right")
    assert_frame_equal(scored, batch, check_exact=False, rel_tol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# A contract that fits any shipper: optional columns
# ---------------------------------------------------------------------------------------------------------
_ABSENT = (
    "carrier",
    "hs_code",
    "declared_value_usd",
    "weight_kg",
    "incoterm",
    "item_count",
    "shipping_cost_usd",
)


def test_features_of_absent_columns_are_not_built_and_the_set_records_its_inputs() -> None:
    t = _world().tables
    ships = t["shipments"].head(400).drop(*_ABSENT)
    out = build_booking_features(ships, lanes=t["lanes"], declarations=t["customs_declarations"])
    fs = booking_feature_set(BookingFeatureConfig(), ships.columns)
    assert out.columns == ["shipment_id", "created_at", *fs.names]
    assert fs.inputs == ()
    gone = {"carrier", "hs_chapter", "incoterm", "weight_kg", "item_count", "declared_value_usd"}
    assert not gone & set(fs.names)
    assert not any(n.startswith(("de_minimis", "customs_is_", "customs_clearance")) for n in fs.names)
    assert "customs_dest_is_inspected_rate_last1000" in fs.names  # per destination: no HS code needed
    assert out["lane_n_obs"].max() > 0  # lanes keyed without the carrier still have history
    assert out["contract_transit_days"].null_count() == 0  # the median quote of the lane's carriers
    assert set(fs.names) < set(FEATURES.names)


def test_lane_without_carrier_pools_the_carriers_of_the_lane() -> None:
    ships = _lane_example().drop("carrier")
    out = build_booking_features(ships).filter(pl.col("shipment_id") == "s6")
    assert out["lane_n_obs"].item() == 2  # s1 and s2, which another carrier delivered


def test_scoring_against_a_state_refuses_rows_without_a_column_the_model_was_trained_with() -> None:
    t = _world().tables
    ships = t["shipments"]
    state = booking_history_state(ships, declarations=t["customs_declarations"])  # every optional input
    rows = ships.tail(5)
    for column in ("hs_code", "carrier"):
        with pytest.raises(
            ValueError, match=rf"lack column\(s\) {column} that these features were built from"
        ):
            build_booking_features(rows.drop(column), state=state)
    trained = resolve_booking_config(BookingFeatureConfig(), ships.drop("weight_kg").columns)
    with pytest.raises(ValueError, match="another feature config"):
        build_booking_features(rows, config=trained.model_copy(update={"transit_n": 30}), state=state)


def test_online_equals_batch_for_a_source_without_carrier_or_hs_code() -> None:
    t = _world().tables
    ships = t["shipments"].drop("carrier", "hs_code")
    trained = resolve_booking_config(BookingFeatureConfig(), ships.columns)  # what training fixes
    new = ships.sample(n=30, seed=2)
    state = booking_history_state(ships, declarations=t["customs_declarations"], config=trained)
    online = build_booking_features(new, lanes=t["lanes"], state=state)
    batch = build_booking_features(
        new, history=ships, lanes=t["lanes"], declarations=t["customs_declarations"]
    )
    assert_frame_equal(online, batch)
    assert "carrier" not in online.columns and "hs_chapter" not in online.columns
