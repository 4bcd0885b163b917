"""The Predictor: training features, batch = online, fallback for unknown lanes, clear input errors."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.shipment_features import build_booking_features
from models.lgbm import load_model
from serving.online.predictor import OUTPUT_COLUMNS, Predictor


@pytest.fixture(scope="module")
def predictor(models_dir: Path) -> Predictor:
    return Predictor.from_dir(models_dir)


def test_predictor_one_row_per_input_in_input_order(predictor: Predictor, open_rows: pl.DataFrame) -> None:
    rows = open_rows.sample(fraction=1.0, shuffle=True, seed=3)
    out = predictor.predict_shipments(rows)
    assert out.columns == list(OUTPUT_COLUMNS)
    assert out["shipment_id"].to_list() == rows["shipment_id"].to_list()
    assert (out["eta_days_q50"] <= out["eta_days_q80"]).all()
    assert (out["eta_days_q80"] <= out["eta_days_q95"]).all()
    assert out["p_late"].is_between(0, 1).all() and out["p_inspection"].is_between(0, 1).all()
    assert out["promise_date"].null_count() == 0
    assert (out["model_version"] == predictor.info.model_version).all()


def test_predictor_batch_and_online_give_the_same_predictions(
    predictor: Predictor, open_rows: pl.DataFrame
) -> None:
    batch = predictor.predict_shipments(open_rows)
    online = pl.concat([predictor.predict_shipments(open_rows[i : i + 1]) for i in range(open_rows.height)])
    assert_frame_equal(batch, online, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def test_predictor_features_equal_training_features(
    predictor: Predictor, serving_world: dict[str, pl.DataFrame], models_dir: Path, open_rows: pl.DataFrame
) -> None:
    world = serving_world
    training = build_booking_features(
        world["shipments"], lanes=world["lanes"], declarations=world["customs_declarations"]
    ).filter(pl.col("shipment_id").is_in(open_rows["shipment_id"].implode()))
    expected = load_model(models_dir / "eta").predict(training)
    got = predictor.predict_shipments(open_rows).select(expected.columns)
    assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def test_predictor_unknown_lane_gets_fallback_and_flag(predictor: Predictor, open_rows: pl.DataFrame) -> None:
    rows = open_rows.head(2).with_columns(
        pl.Series("origin_hub", ["NEWHUB", open_rows["origin_hub"][1]]),
        pl.Series("carrier", ["Brand New Carrier", open_rows["carrier"][1]]),
    )
    out = predictor.predict_shipments(rows)
    assert out["is_unknown_lane"].to_list() == [True, False]
    assert out.select(pl.col("eta_days_q50", "p_late").is_finite().all()).row(0) == (True, True)


def test_predictor_in_transit_eta_from_latest_milestone(
    predictor: Predictor, serving_world: dict[str, pl.DataFrame]
) -> None:
    shipments, events = serving_world["shipments"], serving_world["shipment_events"]
    open_ids = shipments.filter(pl.col("status") == "in_transit")["shipment_id"]
    scanned = events.filter(pl.col("shipment_id").is_in(open_ids.implode()))["shipment_id"].unique().sort()
    rows = shipments.filter(pl.col("shipment_id").is_in(scanned.head(10).implode()))
    scans = events.filter(pl.col("shipment_id").is_in(rows["shipment_id"].implode()))
    with_events = predictor.predict_shipments(rows, scans)
    assert with_events["remaining_days_q50"].null_count() == 0
    assert (with_events["remaining_days_q50"] <= with_events["remaining_days_q95"]).all()
    assert predictor.predict_shipments(rows)["remaining_days_q50"].null_count() == rows.height


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda df: df.drop("hs_code"), "missing required column", id="missing-column"),
        pytest.param(
            lambda df: df.with_columns(pl.lit("S1").alias("shipment_id")), "duplicated id", id="duplicate-id"
        ),
        pytest.param(
            lambda df: df.with_columns(pl.lit("teleport").alias("mode")), "shipments.mode", id="bad-mode"
        ),
    ],
)
def test_predictor_bad_input_names_the_field(  # type: ignore[no-untyped-def]
    predictor: Predictor, open_rows: pl.DataFrame, change, message
) -> None:
    with pytest.raises(ValueError, match=message):
        predictor.predict_shipments(change(open_rows.head(3).with_columns(pl.col("mode").cast(pl.String))))


def test_predictor_version_is_stable_across_loads(models_dir: Path, predictor: Predictor) -> None:
    again = Predictor.from_dir(models_dir)
    assert again.info.model_version == predictor.info.model_version
    assert again.info.snapshot_version == predictor.info.snapshot_version


def test_predictor_shipment_ids_do_not_change_predictions(
    predictor: Predictor, open_rows: pl.DataFrame
) -> None:
    renamed = open_rows.with_columns(pl.format("other-{}", pl.int_range(pl.len())).alias("shipment_id"))
    a = predictor.predict_shipments(open_rows).drop("shipment_id")
    b = predictor.predict_shipments(renamed).drop("shipment_id")
    assert_frame_equal(a, b)


def test_predictor_in_transit_features_equal_training_snapshots(
    predictor: Predictor, serving_world: dict[str, pl.DataFrame], models_dir: Path
) -> None:
    from features.milestones import build_milestone_snapshots

    ships, events = serving_world["shipments"], serving_world["shipment_events"]
    booking = build_booking_features(
        ships, lanes=serving_world["lanes"], declarations=serving_world["customs_declarations"]
    )
    training = build_milestone_snapshots(ships, events, booking)
    delivered = ships.filter(pl.col("status") == "delivered").tail(200).head(6)
    model = load_model(models_dir / "intransit")
    for row in delivered.iter_rows(named=True):
        scans = events.filter(pl.col("shipment_id") == row["shipment_id"]).sort("event_at")
        at = scans["event_at"][2]  # right after the third scan, before delivery
        expected = model.predict(
            training.filter((pl.col("shipment_id") == row["shipment_id"]) & (pl.col("snapshot_at") == at))
        )
        rows = ships.filter(pl.col("shipment_id") == row["shipment_id"]).drop("delivered_at", "status")
        got = predictor.predict_shipments(rows, scans, as_of=at).select(expected.columns)
        assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
