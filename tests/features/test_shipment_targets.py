"""Targets and punctuality: lateness on the destination's local date; cancelled orders are never targets."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from features.shipment_features import build_booking_features
from features.shipment_targets import add_shipment_targets, is_on_time, late_known_at
from tests.features.test_shipment_features import _shipments, _t


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("country", "delivered", "on_time", "known_at"),
    [
        pytest.param(
            "US", _utc(2025, 1, 4, 3), True, _utc(2025, 1, 4, 3), id="us-evening-of-the-promised-day"
        ),
        pytest.param(
            "CN", _utc(2025, 1, 3, 17), False, _utc(2025, 1, 3, 16), id="cn-already-the-next-morning"
        ),
        pytest.param("ZZ", _utc(2025, 1, 4, 1), False, _utc(2025, 1, 4), id="unknown-country-is-utc"),
    ],
)
def test_lateness_is_judged_on_the_destinations_local_date(
    country: str, delivered: dt.datetime, on_time: bool, known_at: dt.datetime
) -> None:
    df = pl.DataFrame(
        {
            "created_at": [_utc(2025, 1, 1)],
            "destination_country": [country],
            "delivered_at": [delivered],
            "promised_date": [dt.date(2025, 1, 3)],
            "status": ["delivered"],
        }
    )
    out = add_shipment_targets(df).with_columns(is_on_time(), late_known_at())
    assert out["is_on_time"].item() is on_time
    assert out["is_late"].item() is (not on_time)
    assert out["late_known_at"].item() == known_at  # at delivery when on time, else at the local day end


def test_late_becomes_known_when_the_promised_day_ends_locally() -> None:
    df = pl.DataFrame(
        {
            "destination_country": ["US", "CN"],
            "delivered_at": [None, None],
            "promised_date": [dt.date(2025, 7, 1)] * 2,
            "status": ["in_transit"] * 2,
        },
        schema_overrides={"delivered_at": pl.Datetime("us", "UTC")},
    )
    known = df.select(late_known_at()).to_series().to_list()
    assert known == [_utc(2025, 7, 2, 4), _utc(2025, 7, 1, 16)]  # EDT and CST midnights


def test_cancelled_orders_have_no_target_and_never_count_in_the_on_time_history() -> None:
    ships = _shipments(
        [
            {"shipment_id": "c1", "created": 0, "promised": 2, "status": "cancelled"},
            {"shipment_id": "c2", "created": 1, "promised": 3, "status": "cancelled"},
            {"shipment_id": "ok", "created": 1, "delivered": 2.5, "promised": 4},
            {"shipment_id": "new", "created": 10, "promised": 14},
        ]
    )
    targets = add_shipment_targets(ships, as_of=_t(30))
    cancelled = targets.filter(pl.col("status") == "cancelled")
    assert cancelled["is_late"].to_list() == [None, None]
    assert cancelled["is_observed"].to_list() == [False, False]
    feats = build_booking_features(ships).filter(pl.col("shipment_id") == "new")
    # only `ok` has a known punctuality: the cancelled orders are neither late nor on time
    assert feats["lane_on_time_rate_last100"].item() == 1.0
