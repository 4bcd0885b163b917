"""Model tests on seeded synthetic shipments: encoding, quantiles, calibration, persistence, baselines."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from polars.testing import assert_frame_equal

from models.backtest import split_by_time
from models.baselines import (
    TrailingConfig,
    predict_from_column,
    predict_late_rule,
    predict_prevalence,
    predict_trailing_quantiles,
)
from models.calibration import ConformalOffsets, IsotonicCalibrator, PlattCalibrator, conformal_offset
from models.classifier import CalibratedClassifier
from models.encoding import CategoryEncoder, FeatureSet, feature_matrix, feature_set_to_dict
from models.lgbm import LGBMConfig, LGBMModel, load_model
from models.metrics import brier, coverage, ece, evaluate, pinball, relative_to
from models.quantile import QuantileRegressor, enforce_monotone
from tests.models.conftest import FEATURES

QS = (0.5, 0.8, 0.95)
FAST = LGBMConfig(num_boost_round=150, num_threads=1, early_stopping_rounds=None)
ETA_COLS = ["eta_days_q50", "eta_days_q80", "eta_days_q95"]


@pytest.fixture(scope="module")
def folds(shipments: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Time-ordered train (60%) / calibration (20%) / test (20%)."""
    rest, test = split_by_time(shipments, "created_at", 0.2)
    train, calib = split_by_time(rest, "created_at", 0.25)
    return train, calib, test


@pytest.fixture(scope="module")
def eta_model(folds: tuple[pl.DataFrame, ...]) -> QuantileRegressor:
    train, calib, _ = folds
    model = QuantileRegressor(FEATURES, QS, prefix="eta_days", log_target=True, config=FAST)
    return model.fit(train, "transit_days").calibrate(calib, "transit_days")


# ---------------------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------------------
def test_encoder_levels_sorted_unknown_and_null_are_missing() -> None:
    enc = CategoryEncoder().fit(pl.DataFrame({"mode": ["sea", "air", None, "sea"]}), ["mode"])
    assert enc.levels == {"mode": ["air", "sea"]}
    out = enc.transform(pl.DataFrame({"mode": ["sea", "rail", None, "air"]}))
    assert out["mode"].dtype == pl.Int32
    assert out["mode"].to_list() == [1, None, None, 0]
    assert CategoryEncoder.from_dict(json.loads(json.dumps(enc.to_dict()))).levels == enc.levels


def test_encoder_enum_categorical_and_string_share_codes() -> None:
    values = ["express", "postal", "express"]
    enc = CategoryEncoder().fit(
        pl.DataFrame({"m": pl.Series(values, dtype=pl.Enum(["postal", "express"]))}), ["m"]
    )
    as_string = enc.transform(pl.DataFrame({"m": values}))["m"]
    as_cat = enc.transform(pl.DataFrame({"m": pl.Series(values, dtype=pl.Categorical)}))["m"]
    assert as_string.to_list() == as_cat.to_list() == [0, 1, 0]


def test_feature_matrix_order_nan_and_type_checks() -> None:
    fs = FeatureSet(numeric=("w", "flag"), categorical=("c",))
    frame = pl.DataFrame(
        {"c": ["b", "a", None], "w": [1.5, None, 3.0], "flag": [True, False, None], "id": [1, 2, 3]}
    )
    enc = CategoryEncoder().fit(frame, fs.categorical)
    x = feature_matrix(frame, fs, enc)
    assert x.dtype == np.float64 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, np.array([[1.5, 1.0, 1.0], [np.nan, 0.0, 0.0], [3.0, np.nan, np.nan]]))
    with pytest.raises(TypeError, match="numeric feature 'w'"):
        feature_matrix(frame.with_columns(w=pl.lit(dt.datetime(2025, 1, 1))), fs, enc)
    with pytest.raises(ValueError, match="missing"):
        feature_matrix(frame.drop("w"), fs, enc)
    with pytest.raises(ValueError, match="duplicate"):
        LGBMModel(FeatureSet(numeric=("a",), categorical=("a",)))


# ---------------------------------------------------------------------------------------------------------
# Quantiles never cross
# ---------------------------------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 5)), elements=st.floats(-1e6, 1e6)))
def test_enforce_monotone_is_non_decreasing_and_idempotent(preds: np.ndarray) -> None:
    out = enforce_monotone(preds)
    assert (np.diff(out, axis=1) >= 0).all()
    assert (out >= preds).all()
    np.testing.assert_array_equal(enforce_monotone(out), out)


_CAT = {
    "mode": ["postal", "dedicated_line", "express", "rail", ""],
    "destination_country": ["US", "BR", "ZZ"],
    "carrier": ["c1", "c4", "new_carrier"],
    "hs_chapter": ["61", "85", "99"],
}
_row = st.fixed_dictionaries(
    {
        "weight_kg": st.one_of(st.none(), st.floats(-10, 1e4, allow_nan=False)),
        "declared_value_usd": st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
        "contract_days": st.one_of(st.none(), st.floats(0, 60, allow_nan=False)),
        "is_peak": st.one_of(st.none(), st.booleans()),
        **{c: st.one_of(st.none(), st.sampled_from(v)) for c, v in _CAT.items()},
    }
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=15))
def test_quantiles_never_cross_on_random_inputs(eta_model: QuantileRegressor, rows: list[dict]) -> None:
    schema = dict.fromkeys(("weight_kg", "declared_value_usd", "contract_days"), pl.Float64)
    schema |= {"is_peak": pl.Boolean} | dict.fromkeys(_CAT, pl.String)
    frame = pl.DataFrame(rows, schema=schema)
    for calibrated in (False, True):
        out = eta_model.predict(frame, calibrated=calibrated).to_numpy()
        assert out.shape == (len(rows), 3)
        assert np.isfinite(out).all()
        assert (np.diff(out, axis=1) >= 0).all()


def test_crossing_offsets_are_made_monotone(eta_model: QuantileRegressor, folds: tuple) -> None:
    test = folds[2].head(200)
    crossing = QuantileRegressor(FEATURES, QS, log_target=True, config=FAST)
    crossing.encoder, crossing.boosters = eta_model.encoder, eta_model.boosters
    crossing.conformal = ConformalOffsets(QS, (2.0, 0.0, -2.0))
    out = crossing.predict(test).to_numpy()
    assert (np.diff(out, axis=1) >= 0).all()


# ---------------------------------------------------------------------------------------------------------
# Conformal calibration and accuracy
# ---------------------------------------------------------------------------------------------------------
def test_conformal_calibration_reaches_nominal_coverage_on_later_fold(
    eta_model: QuantileRegressor, folds: tuple
) -> None:
    test = folds[2]
    before = test.hstack(
        eta_model.predict(test, calibrated=False).rename(lambda c: c.replace("eta_days", "raw"))
    )
    scored = before.hstack(eta_model.predict(test))
    cov = coverage(scored, ["raw", "eta_days"], "transit_days", cutoff_col=None)
    after = {r["metric"]: r["value"] for r in cov.filter(model="eta_days").iter_rows(named=True)}
    raw = {r["metric"]: r["value"] for r in cov.filter(model="raw").iter_rows(named=True)}
    for q in QS:
        name = f"coverage_q{round(q * 100)}"
        assert abs(after[name] - q) <= 0.02, (name, raw[name], after[name])
    worst_raw = max(abs(raw[f"coverage_q{round(q * 100)}"] - q) for q in QS)
    worst_after = max(abs(after[f"coverage_q{round(q * 100)}"] - q) for q in QS)
    assert worst_after < worst_raw


def test_per_mode_conformal_offsets_fix_the_worst_mode(eta_model: QuantileRegressor, folds: tuple) -> None:
    _, calib, test = folds
    grouped = QuantileRegressor(FEATURES, QS, log_target=True, config=FAST)
    grouped.encoder, grouped.boosters = eta_model.encoder, eta_model.boosters
    grouped.calibrate(calib, "transit_days", group_col="mode", min_group_size=200)
    assert grouped.conformal is not None and set(grouped.conformal.groups) == {
        "postal",
        "dedicated_line",
        "express",
    }
    scored = test.hstack(eta_model.predict(test)).hstack(
        grouped.predict(test).rename(lambda c: c.replace("eta_days", "grouped"))
    )
    cov = coverage(
        scored, ["eta_days", "grouped"], "transit_days", cutoff_col=None, by=["mode"], quantiles=[0.95]
    )
    worst = cov.with_columns(err=(pl.col("value") - 0.95).abs()).group_by("model").agg(pl.col("err").max())
    errs = dict(worst.iter_rows())
    assert errs["grouped"] < errs["eta_days"]
    # without the group column at predict time the global offsets are used, with no error
    assert grouped.predict(test.drop("mode").with_columns(mode=pl.lit(None, pl.String))).height == test.height


def test_quantile_model_beats_contract_days_and_trailing_lane_baselines(
    eta_model: QuantileRegressor, folds: tuple
) -> None:
    train, calib, test = folds
    contract = predict_from_column(test, "contract_days", prefix="contract").select(
        "contract_q50", "contract_q80", "contract_q95"
    )
    lane_cfg = TrailingConfig(
        target_col="transit_days",
        group_cols=("mode", "destination_country", "carrier"),
        time_col="created_at",
        observed_col="delivered_at",
        window=200,
        prefix="lane",
        fallback_col="contract_days",
    )
    lane = predict_trailing_quantiles(test, lane_cfg, history=pl.concat([train, calib])).select(
        "lane_q50", "lane_q80", "lane_q95"
    )
    scored = test.hstack(eta_model.predict(test)).hstack(contract).hstack(lane)
    metrics = pinball(scored, ["eta_days", "contract", "lane", "oracle"], "transit_days", cutoff_col=None)
    overall = dict(metrics.filter(metric="pinball").select("model", "value").iter_rows())
    assert overall["eta_days"] < overall["lane"] < overall["contract"]
    ratio = relative_to(metrics, "oracle").filter(metric="pinball", model="eta_days")["value"].item()
    assert 1.0 <= ratio < 1.1  # within 10% of the true conditional quantiles


def test_express_is_not_slower_than_postal_on_the_same_lane(
    eta_model: QuantileRegressor, folds: tuple
) -> None:
    rows = folds[2].head(300)
    postal = rows.with_columns(mode=pl.lit("postal"), contract_days=pl.lit(20.0))
    express = rows.with_columns(mode=pl.lit("express"), contract_days=pl.lit(5.0))
    p, e = eta_model.predict(postal), eta_model.predict(express)
    assert (e["eta_days_q50"] <= p["eta_days_q50"]).all()
    assert (e["eta_days_q95"] <= p["eta_days_q95"]).all()


def test_ids_and_extra_columns_do_not_change_predictions(eta_model: QuantileRegressor, folds: tuple) -> None:
    rows = folds[2].head(100)
    other = rows.with_columns(shipment_id=pl.lit("X"), transit_days=pl.lit(0.0), junk=pl.lit("y"))
    assert_frame_equal(eta_model.predict(rows), eta_model.predict(other.select(pl.all().reverse()).reverse()))


def test_fit_is_deterministic_and_early_stopping_is_recorded(small_shipments: pl.DataFrame) -> None:
    train, valid = split_by_time(small_shipments, "created_at", 0.3)
    cfg = LGBMConfig(num_boost_round=400, early_stopping_rounds=10, num_threads=1)
    a = LGBMModel(FEATURES, config=cfg, output_col="days").fit(train, "transit_days", valid=valid)
    b = LGBMModel(FEATURES, config=cfg, output_col="days").fit(train, "transit_days", valid=valid)
    assert_frame_equal(a.predict(valid), b.predict(valid), check_exact=True)
    assert a.training_["best_iteration"]["model"] < 400
    assert a.training_["fingerprint"] == b.training_["fingerprint"]
    with pytest.raises(ValueError, match="nulls"):
        a.fit(train.with_columns(transit_days=pl.lit(None, pl.Float64)), "transit_days")


# ---------------------------------------------------------------------------------------------------------
# Classifier calibration
# ---------------------------------------------------------------------------------------------------------
OVERFIT = LGBMConfig(
    num_boost_round=300,
    num_threads=1,
    early_stopping_rounds=None,
    params={"num_leaves": 63, "learning_rate": 0.2, "min_data_in_leaf": 5, "lambda_l2": 0.0},
)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_lowers_ece_on_later_fold(folds: tuple, method: str) -> None:
    train, calib, test = folds
    clf = CalibratedClassifier(FEATURES, output_col="p_late", method=method, config=OVERFIT)  # type: ignore[arg-type]
    clf.fit(train, "is_late")
    raw = clf.predict(test).rename({"p_late": "raw"})
    clf.calibrate(calib, "is_late")
    scored = test.hstack(raw).hstack(clf.predict(test))
    result = evaluate(scored, [ece, brier], ["raw", "p_late"], "is_late", cutoff_col=None)
    values = {(r["model"], r["metric"]): r["value"] for r in result.iter_rows(named=True)}
    assert values[("p_late", "ece")] < 0.5 * values[("raw", "ece")]
    assert values[("p_late", "brier")] < values[("raw", "brier")]


def test_inspection_classifier_beats_prevalence_baselines(folds: tuple) -> None:
    train, calib, test = folds
    clf = CalibratedClassifier(FEATURES, output_col="p_inspection", config=FAST).fit(train, "is_inspected")
    clf.calibrate(calib, "is_inspected")
    scored = (
        test.hstack(clf.predict(test))
        .pipe(predict_prevalence, train, "is_inspected", output_col="base_rate")
        .pipe(
            predict_prevalence,
            train,
            "is_inspected",
            output_col="by_dest",
            group_cols=["destination_country"],
        )
    )
    scores = dict(
        brier(scored, ["p_inspection", "base_rate", "by_dest"], "is_inspected", cutoff_col=None)
        .select("model", "value")
        .iter_rows()
    )
    assert scores["p_inspection"] < scores["by_dest"] < scores["base_rate"]


def test_classifier_rejects_non_binary_target(small_shipments: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="0/1"):
        CalibratedClassifier(FEATURES, config=FAST).fit(small_shipments, "transit_days")


def test_calibrators_roundtrip_and_conformal_offset() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1])
    iso = IsotonicCalibrator.fit(p, y)
    assert (np.diff(iso.transform(np.linspace(0, 1, 11))) >= 0).all()
    platt = PlattCalibrator.fit(p, y)
    assert platt.slope > 0
    # ceil((5 + 1) * 0.5) = 3rd smallest; ceil(6 * 0.95) = 6 > 5 -> the largest
    assert conformal_offset(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), 0.5) == 3.0
    assert conformal_offset(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), 0.95) == 5.0


# ---------------------------------------------------------------------------------------------------------
# Persistence and unknown categories
# ---------------------------------------------------------------------------------------------------------
def _fit_kind(kind: str, data: pl.DataFrame) -> LGBMModel:
    train, calib = split_by_time(data, "created_at", 0.3)
    if kind == "point":
        return LGBMModel(FEATURES, config=FAST, output_col="days").fit(train, "transit_days")
    if kind == "quantile":
        model = QuantileRegressor(FEATURES, QS, prefix="clearance_days", log_target=True, config=FAST)
        return model.fit(train, "transit_days").calibrate(
            calib, "transit_days", group_col="mode", min_group_size=20
        )
    method = "platt" if kind == "platt" else "isotonic"
    clf = CalibratedClassifier(FEATURES, output_col="p_inspection", method=method, config=FAST)  # type: ignore[arg-type]
    return clf.fit(train, "is_inspected").calibrate(calib, "is_inspected")


@pytest.mark.parametrize("kind", ["point", "quantile", "isotonic", "platt"])
def test_save_load_gives_identical_predictions(
    small_shipments: pl.DataFrame, tmp_path: Path, kind: str
) -> None:
    model = _fit_kind(kind, small_shipments)
    expected = model.predict(small_shipments)
    path = model.save(tmp_path / "model")
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert_frame_equal(loaded.predict(small_shipments), expected, check_exact=True)
    assert_frame_equal(type(model).load(path).predict(small_shipments), expected, check_exact=True)
    files = sorted(p.name for p in path.iterdir())
    assert "metadata.json" in files and all(f.endswith((".txt", ".json")) for f in files)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["features"] == feature_set_to_dict(FEATURES)
    assert meta["encoder"]["mode"] == ["dedicated_line", "express", "postal"]
    assert {"lightgbm", "polars", "numpy"} <= set(meta["versions"])
    assert meta["training"]["fingerprint"].startswith("sha256:")
    assert meta["outputs"] == list(expected.columns)


def test_unknown_categories_give_a_prediction(small_shipments: pl.DataFrame, tmp_path: Path) -> None:
    model = _fit_kind("isotonic", small_shipments)
    rows = small_shipments.head(3).with_columns(
        mode=pl.Series(["rail", None, "express"]),
        carrier=pl.lit("brand_new_carrier"),
        destination_country=pl.lit("ZZ"),
    )
    p = model.predict(rows)["p_inspection"]
    assert p.null_count() == 0 and ((p > 0) & (p < 1)).all()
    with pytest.raises(ValueError, match="use load_model"):
        QuantileRegressor.load(model.save(tmp_path / "clf"))


# ---------------------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------------------
def test_trailing_quantiles_use_only_targets_observed_before_each_row() -> None:
    d = lambda day: dt.datetime(2025, 1, day, tzinfo=dt.UTC)  # noqa: E731
    frame = pl.DataFrame(
        {
            "lane": ["a", "a", "a", "b", "a", "a"],
            "created_at": [d(1), d(2), d(3), d(3), d(4), d(6)],
            "delivered_at": [d(5), d(3), d(4), d(9), None, d(7)],
            "y": [4.0, 1.0, 1.0, 6.0, None, 1.0],
            "contract": [9.0] * 6,
        }
    )
    cfg = TrailingConfig(
        "y", ("lane",), "created_at", observed_col="delivered_at", window=3, min_samples=1, quantiles=(0.5,)
    )
    out = predict_trailing_quantiles(frame, cfg)
    # row at Jan 4 sees only the target delivered Jan 3; row at Jan 6 sees Jan 3, 4 and 5 (1, 1, 4)
    assert out["eta_days_q50"].to_list() == [None, None, None, None, 1.0, 1.0]
    filled = predict_trailing_quantiles(frame, replace(cfg, fallback_col="contract"))
    assert filled["eta_days_q50"].to_list() == [9.0, 9.0, 9.0, 9.0, 1.0, 1.0]
    assert filled.columns[:5] == frame.columns[:5]


def test_prevalence_and_rule_baselines() -> None:
    train = pl.DataFrame({"dest": ["US", "US", "US", "BR"], "late": [True, False, False, True]})
    rows = pl.DataFrame({"dest": ["BR", "US", "FR"], "eta": [12.0, 5.0, None], "promised": [10.0, 7.0, 5.0]})
    out = predict_prevalence(rows, train, "late", output_col="p", group_cols=["dest"], prior_strength=2.0)
    assert out["p"].to_list() == pytest.approx([(1 + 1.0) / 3, (1 + 1.0) / 5, 0.5])
    assert predict_prevalence(rows, train, "late", output_col="p")["p"].to_list() == [0.5] * 3
    rule = predict_late_rule(rows, "eta", "promised", probabilities=(0.1, 0.9))
    assert rule["p_late"].to_list() == [0.9, 0.1, None]
    assert predict_from_column(rows, "promised", quantiles=(0.5, 0.95)).columns[-2:] == [
        "eta_days_q50",
        "eta_days_q95",
    ]
