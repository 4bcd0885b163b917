"""The Predictor's fast paths give the values of the general code on the same rows.

* booking features from the as-of state built at load == `build_booking_features` on the snapshot's
  history (rows inside the history, just after its end, days later, several and unknown lanes), and
  bit-identical to the training frame's features;
* the floor re-scoring only the rows whose floor features are non-zero == re-scoring every row;
* a feature matrix shared by several models == each model building its own.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.shipment_features import build_booking_features
from models.quantile import QuantileRegressor, enforce_monotone
from serving.online.predictor import BOOKING_TASKS, Predictor, coerce_shipments


@pytest.fixture(scope="module")
def predictor(models_dir: Path) -> Predictor:
    return Predictor.from_dir(models_dir)


def _general(predictor: Predictor, rows: pl.DataFrame) -> pl.DataFrame:
    snap = predictor.snapshot
    return build_booking_features(
        rows,
        history=snap.shipments,
        lanes=snap.lanes,
        declarations=snap.declarations,
        config=snap.booking,
    )


def _after_end(predictor: Predictor, rows: pl.DataFrame, offsets: list[dt.timedelta]) -> pl.DataFrame:
    """`rows` re-booked at the snapshot's end + offset (promise moved by the same whole days)."""
    end = predictor.snapshot.as_of
    shift = [end + o for o in offsets]
    moved = [(s - c).days for s, c in zip(shift, rows["created_at"].to_list(), strict=True)]
    return rows.with_columns(
        pl.Series("created_at", shift, dtype=rows.schema["created_at"]),
        (pl.col("promised_date") + pl.Series(moved).cast(pl.Int32).cast(pl.Duration("ms")))
        .cast(pl.Date)
        .alias("promised_date"),
        (pl.col("shipment_id") + "-new").alias("shipment_id"),
    )


def test_state_features_equal_the_builder_inside_and_after_the_snapshot(
    predictor: Predictor, open_rows: pl.DataFrame
) -> None:
    inside = coerce_shipments(open_rows)
    offsets = [dt.timedelta(microseconds=1), dt.timedelta(minutes=5), dt.timedelta(hours=20)]
    offsets += [dt.timedelta(days=3), dt.timedelta(days=45)]
    after = coerce_shipments(_after_end(predictor, open_rows.head(len(offsets)), offsets))
    unknown = inside.head(3).with_columns(
        pl.Series("origin_hub", ["NEWHUB", "NEWHUB", inside["origin_hub"][2]]),
        pl.Series("carrier", ["New Carrier", inside["carrier"][1], "New Carrier"]),
        (pl.col("shipment_id") + "-x").alias("shipment_id"),
    )
    rows = pl.concat([inside, after, unknown])
    assert rows.select(pl.struct(predictor.snapshot.booking.lane_keys).n_unique()).item() >= 5
    got = predictor.booking_features(rows)
    assert_frame_equal(got, _general(predictor, rows), check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    assert got["shipment_id"].to_list() == rows["shipment_id"].to_list()


def test_state_features_are_bit_identical_to_training_features(
    predictor: Predictor, serving_world: dict[str, pl.DataFrame], open_rows: pl.DataFrame
) -> None:
    world = serving_world
    training = build_booking_features(
        world["shipments"],
        lanes=world["lanes"],
        declarations=world["customs_declarations"],
        config=predictor.snapshot.booking,
    )
    expected = (
        open_rows.select("shipment_id")
        .join(training, on="shipment_id", how="left", maintain_order="left")
        .select(training.columns)
    )
    got = predictor.booking_features(coerce_shipments(open_rows))
    assert got.equals(expected)
    # one row at a time: the binary-search path of few-row requests
    one_by_one = [predictor.booking_features(coerce_shipments(open_rows[i : i + 1])) for i in range(8)]
    assert pl.concat(one_by_one).equals(expected.head(8))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=29), min_size=1, max_size=6, unique=True),
    minutes=st.lists(st.integers(min_value=-60 * 24 * 10, max_value=60 * 24 * 60), min_size=6, max_size=6),
)
def test_state_features_equal_the_builder_at_random_moments(
    predictor: Predictor, open_rows: pl.DataFrame, picks: list[int], minutes: list[int]
) -> None:
    rows = open_rows[picks]
    offsets = [dt.timedelta(minutes=m) for m in minutes[: len(picks)]]
    rows = coerce_shipments(_after_end(predictor, rows, offsets))
    got = predictor.booking_features(rows)
    assert_frame_equal(got, _general(predictor, rows), check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


def _floor_everywhere(model: QuantileRegressor, frame: pl.DataFrame) -> np.ndarray:
    """The floor as first written: every subset of floor features zeroed on every row."""
    raw = model.predict_raw(frame)
    present = [c for c in model.floor_features if c in frame.columns]
    for k in range(1, len(present) + 1):
        for subset in itertools.combinations(present, k):
            zeroed = frame.with_columns(pl.lit(0).cast(frame.schema[c]).alias(c) for c in subset)
            without = model.predict_raw(zeroed)
            raw = {name: np.maximum(values, without[name]) for name, values in raw.items()}
    z = enforce_monotone(np.column_stack([raw[name] for name in model._names]))
    if model.conformal is not None:
        col = model.conformal.group_col
        groups = frame.get_column(col) if col is not None else None
        z = enforce_monotone(z + model.conformal.offsets(groups, frame.height))
    return z


def test_floor_on_nonzero_rows_equals_the_floor_on_every_row(
    predictor: Predictor, serving_world: dict[str, pl.DataFrame]
) -> None:
    rows = coerce_shipments(serving_world["shipments"].tail(300).drop("delivered_at", "status"))
    features = predictor.booking_features(rows)
    floors = ("dest_holidays_in_window", "peak_days_in_window")
    # zeros, non-zeros and nulls in both floor features
    features = features.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise(pl.col(floors[0])).alias(floors[0]),
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(0).otherwise(pl.col(floors[1])).alias(floors[1]),
    )
    for task in ("eta", "clearance"):
        model = predictor.models[task]
        assert isinstance(model, QuantileRegressor) and set(floors) <= set(model.floor_features)
        mixed = features.select(pl.col(floors[0]).fill_null(1).eq(0).mean()).item()
        assert 0 < mixed < 1
        np.testing.assert_array_equal(model.predict_working(features), _floor_everywhere(model, features))


def test_shared_matrix_changes_no_prediction(predictor: Predictor, open_rows: pl.DataFrame) -> None:
    features = predictor.booking_features(coerce_shipments(open_rows))
    eta = predictor.models["eta"]
    shared = eta.matrix(features)
    sharing = [t for t in BOOKING_TASKS if predictor.models[t].matrix_key == eta.matrix_key]
    assert len(sharing) >= 2  # the world's models share a feature set and encoder
    for task in BOOKING_TASKS:
        model = predictor.models[task]
        alone = model.predict(features)
        if model.matrix_key == eta.matrix_key:
            assert_frame_equal(model.predict(features, matrix=shared, num_threads=2), alone, check_exact=True)
    with pytest.raises(ValueError, match="shape"):
        eta.predict_matrix(shared[:, 1:])


def test_small_requests_predict_what_a_batch_predicts(
    predictor: Predictor, serving_world: dict[str, pl.DataFrame]
) -> None:
    """One-row requests take the small paths (Python-encoded matrix, dict offsets, one booster call with the
    floor rows); a 300-row batch takes the Polars paths: the outputs are the same, bit for bit."""
    rows = serving_world["shipments"].tail(300).drop("delivered_at", "status")
    batch = predictor.predict_shipments(rows)
    picks = [0, 1, 2, 57, 120, 233, 299]
    one_by_one = pl.concat([predictor.predict_shipments(rows[i : i + 1]) for i in picks])
    assert_frame_equal(one_by_one, batch[picks], check_exact=True)
    # the picked rows cover floored and unfloored rows
    features = predictor.booking_features(coerce_shipments(rows[picks]))
    holidays = features["dest_holidays_in_window"].fill_null(1)
    assert 0 < (holidays > 0).sum() < len(picks) or features["peak_days_in_window"].fill_null(1).sum() > 0
