"""Boosting from a trailing baseline, degenerate boosters, and the baseline as a shippable model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.backtest import split_by_time
from models.baselines import BaselineSpec, FittedBaseline
from models.classifier import CalibratedClassifier
from models.lgbm import LGBMConfig, load_model
from models.quantile import QuantileRegressor
from tests.models.conftest import FEATURES

QS = (0.5, 0.8, 0.95)
CONTRACT = BaselineSpec("contract", ((("contract_days",)) * 3), group_col="mode")
STOPPING = LGBMConfig(num_boost_round=60, num_threads=1, early_stopping_rounds=5)


def test_fitted_baseline_coalesces_its_columns_then_falls_back_per_group() -> None:
    spec = BaselineSpec("lane", (("lane_rate", "dest_rate"),), "one_minus", group_col="mode")
    train = pl.DataFrame({"mode": ["a"] * 40 + ["b"] * 40, "y": [1.0] * 10 + [0.0] * 30 + [1.0] * 40})
    fitted = FittedBaseline.fit(spec, train, "y")
    assert fitted.groups == {"a": (0.25,), "b": (1.0,)} and fitted.global_values == (0.625,)
    rows = pl.DataFrame({"lane_rate": [0.9, None, None, None], "dest_rate": [0.5, 0.7, None, None],
                         "mode": ["a", "a", "a", "c"]})  # fmt: skip
    assert fitted.values(rows)[:, 0].tolist() == pytest.approx([0.1, 0.3, 0.25, 0.625])
    assert FittedBaseline.from_dict(fitted.to_dict()) == fitted


@pytest.fixture(scope="module")
def parts(small_shipments: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rest, calib = split_by_time(small_shipments, "created_at", 0.2)
    train, valid = split_by_time(rest, "created_at", 0.2)
    return train, valid, calib


def test_boosting_adds_the_trees_to_the_baseline_and_round_trips(
    parts: tuple[pl.DataFrame, ...], tmp_path: Path
) -> None:
    train, valid, calib = parts
    model = QuantileRegressor(FEATURES, QS, log_target=True, config=STOPPING, baseline=CONTRACT)
    model.fit(train, "transit_days", valid=valid).calibrate(calib, "transit_days", group_col="mode")
    assert model.boosters and model.system == "transitcast"
    x, margins = model.matrix(calib), model.margins(calib)
    assert margins is not None
    raw = model.boosters["q50"].predict(x, raw_score=True) + margins["q50"]
    np.testing.assert_allclose(model.predict_raw(calib)["q50"], raw)
    loaded = load_model(model.save(tmp_path / "eta"))
    assert_frame_equal(loaded.predict(calib), model.predict(calib))
    # the Predictor's call: a shared matrix and a thread count
    assert_frame_equal(
        loaded.predict(calib, matrix=loaded.matrix(calib), num_threads=1), model.predict(calib)
    )


def test_a_booster_that_adds_nothing_is_dropped_and_the_baseline_stands(
    parts: tuple[pl.DataFrame, ...],
) -> None:
    train, valid, _ = parts
    exact = [df.with_columns(pl.col("contract_days").alias("transit_days")) for df in (train, valid)]
    model = QuantileRegressor(FEATURES, QS, log_target=True, config=STOPPING, baseline=CONTRACT)
    model.fit(exact[0], "transit_days", valid=exact[1])
    assert model.boosters == {} and set(model.training_["degenerate"]) == {"q50", "q80", "q95"}
    np.testing.assert_allclose(model.predict(valid)["eta_days_q80"], valid["contract_days"], rtol=1e-12)


def test_the_calibrated_baseline_is_a_model_with_the_same_interface(
    parts: tuple[pl.DataFrame, ...], tmp_path: Path
) -> None:
    train, _, calib = parts
    model = QuantileRegressor(FEATURES, QS, log_target=True, config=STOPPING, baseline=CONTRACT)
    model.fit_baseline(train, "transit_days").calibrate(calib, "transit_days", group_col="mode")
    model.system = "baseline:contract_calibrated"
    path = model.save(tmp_path / "eta")
    loaded = load_model(path)
    assert loaded.system == "baseline:contract_calibrated" and not list(path.glob("booster_*.txt"))
    preds = loaded.predict(calib, matrix=loaded.matrix(calib), num_threads=1)
    assert_frame_equal(preds, model.predict(calib))
    assert (preds["eta_days_q50"] <= preds["eta_days_q95"]).all()


def test_a_classifier_boosts_from_the_log_odds_of_its_baseline(parts: tuple[pl.DataFrame, ...]) -> None:
    train, valid, calib = parts
    spec = BaselineSpec("mode_rate", group_col="mode")
    clf = CalibratedClassifier(FEATURES, output_col="p", method="auto", config=STOPPING, baseline=spec)
    clf.fit(train, "is_inspected", valid=valid).calibrate(calib, "is_inspected")
    base = CalibratedClassifier(FEATURES, output_col="p", config=STOPPING, baseline=spec)
    base.fit_baseline(train, "is_inspected")
    rates = train.group_by("mode").agg(pl.col("is_inspected").mean())
    expected = calib.join(rates, on="mode", how="left")["is_inspected_right"]
    np.testing.assert_allclose(base.predict(calib)["p"], expected, rtol=1e-9)
    p = clf.predict(calib)["p"]
    assert ((p > 0) & (p < 1)).all() and clf.calibrator is not None
