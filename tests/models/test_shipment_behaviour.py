"""Behavioural tests of the shipment models, in business language, on a seeded simulated world."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.shipment_features import build_booking_features
from models.lgbm import load_model
from models.quantile import QuantileRegressor
from models.shipment_tasks import (
    TASKS,
    ShipmentModelsConfig,
    backtest_task,
    evaluate_task,
    fit_task,
    prepare_task_frames,
)


@pytest.fixture(scope="module")
def world(sim_world: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return sim_world


@pytest.fixture(scope="module")
def config(fast_shipment_config: ShipmentModelsConfig) -> ShipmentModelsConfig:
    return fast_shipment_config


@pytest.fixture(scope="module")
def eta_model(world: dict[str, pl.DataFrame], config: ShipmentModelsConfig) -> QuantileRegressor:
    frames = prepare_task_frames(world, config, ("eta",))
    model = fit_task(frames["eta"], config).model
    assert isinstance(model, QuantileRegressor)
    return model


def _features(world: dict[str, pl.DataFrame], shipments: pl.DataFrame) -> pl.DataFrame:
    """Booking features of `shipments` scored against the world's history (as a service would)."""
    return build_booking_features(
        shipments,
        history=world["shipments"],
        lanes=world["lanes"],
        declarations=world["customs_declarations"],
    )


def test_eta_model_beats_its_baselines_and_approaches_the_oracle(
    world: dict[str, pl.DataFrame], config: ShipmentModelsConfig
) -> None:
    frame = prepare_task_frames(world, config, ("eta",))["eta"]
    metrics = evaluate_task(backtest_task(frame, config, world["oracle"]), TASKS["eta"])
    pinball = dict(
        metrics.filter((pl.col("slice") == "overall") & (pl.col("metric") == "pinball"))
        .group_by("model")
        .agg(pl.col("value").mean())
        .iter_rows()
    )
    assert pinball["transitcast"] < pinball["lane_history_calibrated"] < pinball["lane_history"]
    assert pinball["lane_history"] < pinball["contract_days"]
    assert pinball["transitcast"] < 1.6 * pinball["oracle"]  # 12k shipments; the benchmark checks 100k


def test_express_is_not_slower_than_postal_on_the_same_lane(
    world: dict[str, pl.DataFrame], eta_model: QuantileRegressor
) -> None:
    lanes = world["lanes"]
    recent = world["shipments"].filter(pl.col("mode") == "postal").tail(300)
    express_carrier = (
        lanes.filter(pl.col("mode") == "express")
        .group_by("origin_hub", "destination_country")
        .agg(pl.first("carrier"))
    )
    postal = recent.join(
        express_carrier.select("origin_hub", "destination_country"), on=["origin_hub", "destination_country"]
    )
    express = (
        postal.drop("carrier")
        .join(express_carrier, on=["origin_hub", "destination_country"])
        .with_columns(
            pl.lit("express").cast(postal.schema["mode"]).alias("mode"), pl.col("shipment_id") + "-x"
        )
    )
    slow = eta_model.predict(_features(world, postal))["eta_days_q50"]
    fast = eta_model.predict(_features(world, express.select(postal.columns)))["eta_days_q50"]
    assert postal.height > 50
    assert fast.mean() < 0.7 * slow.mean()  # type: ignore[operator]
    assert (fast <= slow).mean() >= 0.95  # type: ignore[operator]


def test_shipment_ids_do_not_change_predictions(
    world: dict[str, pl.DataFrame], eta_model: QuantileRegressor
) -> None:
    rows = world["shipments"].tail(200)
    renamed = rows.with_columns(pl.lit("ZZZ-") + pl.col("shipment_id").str.reverse())
    assert_frame_equal(
        eta_model.predict(_features(world, rows)), eta_model.predict(_features(world, renamed))
    )


def test_destination_holiday_inside_the_window_never_shortens_the_eta(
    world: dict[str, pl.DataFrame], eta_model: QuantileRegressor
) -> None:
    feats = _features(world, world["shipments"].tail(2_000))
    assert (feats["dest_holidays_in_window"] > 0).sum() > 50
    zeroed = [pl.lit(0).cast(feats.schema[c]).alias(c) for c in ("dest_holidays_in_window",)]
    with_holidays, no_holidays = eta_model.predict(feats), eta_model.predict(feats.with_columns(zeroed))
    for col in with_holidays.columns:
        assert (with_holidays[col] >= no_holidays[col] - 1e-9).all(), col


def test_eta_quantiles_never_cross_and_save_load_is_identical(
    world: dict[str, pl.DataFrame], eta_model: QuantileRegressor, tmp_path: Path
) -> None:
    feats = _features(world, world["shipments"].tail(1_000))
    preds = eta_model.predict(feats)
    assert (preds["eta_days_q50"] <= preds["eta_days_q80"]).all()
    assert (preds["eta_days_q80"] <= preds["eta_days_q95"]).all()
    loaded = load_model(eta_model.save(tmp_path / "eta"))
    assert_frame_equal(loaded.predict(feats), preds)
