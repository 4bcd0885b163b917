"""Benchmark: SCMS order-to-delivery ETA and delay with features known at PO time (real data).

Data: `shared/data/scms_shipment_pricing` through `features.sources.adapt_scms` and the `shipments`
validator (10 shipments delivered before their order date are quarantined), joined with the order attributes
the contract drops (`features.scms_features.scms_order_attributes`). Two datasets, same protocol:
"SCMS Direct Drop" (`warehouse_id` null; `created_at` = PO date) and "SCMS From RDC" (`warehouse_id ==
"RDC"`; `created_at` = PQ date, the PO column is empty for them).

Protocol: target `transit_days = delivered_at - created_at`; test = the last 25% of rows by `created_at`,
train = the rest (time split, no shuffling). As-of features of every row, train or test, use only
deliveries observed strictly before its `created_at`; the models are trained once on the train rows.
Systems side by side:

- `transitcast`: `features.scms_features` (as-of lane/vendor/... transit quantiles, recent means and
  open-order state, order attributes) -> `QuantileRegressor` (log1p target, P50/P80/P95), each quantile
  blended in log space with the trailing last-50 lane quantile; the blend weight is chosen on an inner
  time split of the train rows (last 20%), never on the test rows.
- `lightgbm-plain`: LightGBM on the raw ex-ante contract columns (ids as categories, weight, value, packs,
  order date as a number); L2 for the point, quantile objective for P80/P95, raw target.
- `lane-median (as-of)`: trailing destination x mode quantiles of all deliveries observed before the order.
- `lane-median last-50 (as-of)`: the same over the lane's last 50 deliveries (the blend partner above).
- `scheduled-date (not ex-ante)`: `promised_date - created_at`. SCMS re-baselines the scheduled date close
  to the delivery, so this is reported to show the leak, never used as a feature.

Delay: the scheduled date being revised, "late against the original plan" is not observable. The promise is
therefore the trailing lane P80 at order time (`features.scms_features.add_promise`) and `is_late` means
delivered after it. `transitcast` reads P(transit > promise) off its own P50/P80/P95 (`p_exceed`), so ETA
and delay come from one predictive distribution (a direct LightGBM classifier on the same features plus
the promise and the as-of late rates scored worse when this was written: Brier 0.183 / 0.219, AUC 0.61 /
0.65 on Direct Drop / From RDC). Baselines: the as-of lane late rate (observed at delivery, or at the
promise expiry for late orders), a plain LightGBM classifier on the raw columns plus the promise, and the
scheduled date (not ex ante).

Run alone: `.venv/bin/python bench/shipments_scms.py` (deterministic, one thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from _results import ROOT, record, write_table

from features.feature_set import FeatureSet
from features.history import AsOfStats, LastN, add_trailing_stats, days_between
from features.ingest import validate_tables
from features.scms_features import (
    TARGET,
    PromiseConfig,
    ScmsFeatureConfig,
    add_late_history,
    add_promise,
    build_scms_features,
    scms_feature_set,
    scms_order_attributes,
)
from features.sources import adapt_scms, read_source
from models.classifier import CalibratedClassifier
from models.lgbm import LGBMConfig, LGBMModel
from models.metrics import auc, brier, coverage, ece, mae, pinball, quantile_col
from models.quantile import QuantileRegressor, enforce_monotone

BENCHMARK = "shipments_scms"
COMMAND = ".venv/bin/python bench/shipments_scms.py"
DATA = ROOT.parent / "shared" / "data" / "scms_shipment_pricing"
QUANTILES = (0.5, 0.8, 0.95)
TEST_SHARE = 0.25
INNER_SHARE = 0.2
LABEL_HORIZON_DAYS = 270  # >= 99.9% of the orders this old at the cutoff were delivered by then (both sets)
BLEND_GRID = tuple(round(w, 1) for w in np.arange(0.0, 1.01, 0.1))
SYSTEMS = {
    "tc": "transitcast",
    "plain": "lightgbm-plain",
    "lane": "lane-median (as-of)",
    "lane50": "lane-median last-50 (as-of)",
    "sched": "scheduled-date (not ex-ante)",
    "tc_k": "transitcast [labels known at cutoff]",
    "plain_k": "lightgbm-plain [labels known at cutoff]",
}
DATASETS = {
    "SCMS Direct Drop": pl.col("warehouse_id").is_null(),
    "SCMS From RDC": pl.col("warehouse_id") == "RDC",
}
FEATURES = ScmsFeatureConfig()
PROMISE = PromiseConfig()
# Small trees, large leaves: ~2,500 very noisy training rows. Picked among a handful of settings; an Optuna
# search on the inner time split chose similar trees (4-13 leaves, 70-120 rows per leaf) and scored within
# +-1.5 days MAE of this one on test.
TC_CONFIG = LGBMConfig(
    params={"learning_rate": 0.03, "num_leaves": 7, "min_data_in_leaf": 60, "feature_fraction": 0.6},
    num_boost_round=200,
    early_stopping_rounds=None,
    num_threads=1,
    seed=0,
)
PLAIN_CONFIG = LGBMConfig(num_boost_round=300, early_stopping_rounds=None, num_threads=1, seed=0)
PLAIN_FEATURES = FeatureSet(
    numeric=("weight_kg", "declared_value_usd", "item_count", "created_days"),
    categorical=(
        "destination_country",
        "mode",
        "origin_country",
        "seller_id",
        "incoterm",
        "carrier",
        "hs_code",
    ),
)
LATE = "is_late_int"


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
def load_shipments(data_dir: Path = DATA) -> pl.DataFrame:
    """Validated SCMS `shipments` joined with the PO-time order attributes the contract drops."""
    raw = read_source("scms", data_dir)
    shipments = validate_tables({"shipments": adapt_scms(raw).tables["shipments"]}).valid["shipments"]
    return shipments.join(scms_order_attributes(raw), on="shipment_id", how="left").sort(
        "created_at", "shipment_id"
    )


def _lane_all_history(df: pl.DataFrame) -> pl.DataFrame:
    """`lane-median (as-of)`: quantiles over every earlier delivery of the lane (else of all lanes)."""
    window = LastN(value=TARGET, n=100_000, quantiles=QUANTILES)
    out = df
    for prefix, by in (("base_lane", ("destination_country", "mode")), ("base_all", ())):
        spec = AsOfStats(prefix=prefix, by=by, observed_at="delivered_at", last_n=(window,))
        out = add_trailing_stats(out, df, spec, at="created_at")
    lane, fallback = window.names("base_lane"), window.names("base_all")
    return out.with_columns(
        pl.coalesce(a, b).alias(quantile_col("lane", q))
        for a, b, q in zip(lane, fallback, QUANTILES, strict=True)
    ).drop(*lane, *fallback)


def build_frame(shipments: pl.DataFrame) -> pl.DataFrame:
    """Features, promise, late history and every baseline column of one dataset (its own history only)."""
    feats = add_promise(build_scms_features(shipments, config=FEATURES), FEATURES, PROMISE)
    feats = add_late_history(feats, promise=PROMISE)
    chain = PROMISE.fallback
    lane50 = [
        pl.coalesce([FEATURES.transit_quantile_col(p, q) for p in chain]).alias(quantile_col("lane50", q))
        for q in QUANTILES
    ]
    scheduled = days_between("created_at", pl.col("promised_date").cast(feats.schema["created_at"]))
    late_rate = pl.coalesce([name for name in PROMISE.late_names if not name.startswith("vendor_")])
    return _lane_all_history(feats).with_columns(
        *lane50,
        *[scheduled.alias(quantile_col("sched", q)) for q in QUANTILES],
        (pl.col("created_at").dt.epoch("us").cast(pl.Float64) / 86_400_000_000).alias("created_days"),
        pl.col("is_late").cast(pl.Int8).alias(LATE),
        late_rate.alias("p_late_lane"),
        (scheduled > pl.col("promise_days")).cast(pl.Float64).alias("p_late_sched"),
    )


def split_by_share(df: pl.DataFrame, share: float) -> tuple[pl.DataFrame, pl.DataFrame, object]:
    """(earlier rows, last `share` of rows by `created_at`, cutoff): rows at or after the cutoff are later."""
    times = df.get_column("created_at").sort()
    cutoff = times[int((1.0 - share) * len(times))]
    return df.filter(pl.col("created_at") < cutoff), df.filter(pl.col("created_at") >= cutoff), cutoff


# ---------------------------------------------------------------------------------------------------------
# Systems
# ---------------------------------------------------------------------------------------------------------
def _pinball(y: np.ndarray, pred: np.ndarray, q: float) -> float:
    diff = y - pred
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def _blend(model: np.ndarray, base: np.ndarray, w: float) -> np.ndarray:
    """Geometric blend on the log1p scale; rows without a base keep the model."""
    mixed = np.expm1(w * np.log1p(np.clip(model, 0.0, None)) + (1.0 - w) * np.log1p(np.clip(base, 0.0, None)))
    return np.where(np.isnan(base), model, mixed)


def _quantile_matrix(frame: pl.DataFrame, key: str) -> np.ndarray:
    return frame.select(quantile_col(key, q) for q in QUANTILES).to_numpy().astype(np.float64)


def fit_transitcast_eta(
    train: pl.DataFrame, test: pl.DataFrame, features: FeatureSet, prefix: str = "tc"
) -> tuple[pl.DataFrame, dict[float, float], QuantileRegressor]:
    """Quantile model on the as-of features, each quantile blended with the trailing last-50 lane quantile.

    Returns:
        (test predictions `{prefix}` (the P50) and `{prefix}_q50`, `_q80`, `_q95`; blend weight of the model
        per quantile; the model fitted on all train rows).
    """
    inner_train, inner_valid, _ = split_by_share(train, INNER_SHARE)
    inner = QuantileRegressor(features, QUANTILES, prefix=prefix, log_target=True, config=TC_CONFIG)
    valid_model = _quantile_matrix(inner.fit(inner_train, TARGET).predict(inner_valid), prefix)
    valid_base, y_valid = _quantile_matrix(inner_valid, "lane50"), inner_valid.get_column(TARGET).to_numpy()

    def valid_loss(j: int, q: float) -> Callable[[float], float]:
        return lambda w: _pinball(y_valid, _blend(valid_model[:, j], valid_base[:, j], w), q)

    weights = {q: float(min(BLEND_GRID, key=valid_loss(j, q))) for j, q in enumerate(QUANTILES)}
    model = QuantileRegressor(features, QUANTILES, prefix=prefix, log_target=True, config=TC_CONFIG)
    raw = _quantile_matrix(model.fit(train, TARGET).predict(test), prefix)
    base = _quantile_matrix(test, "lane50")
    pred = enforce_monotone(
        np.column_stack([_blend(raw[:, j], base[:, j], weights[q]) for j, q in enumerate(QUANTILES)])
    )
    cols = {quantile_col(prefix, q): pred[:, j] for j, q in enumerate(QUANTILES)}
    return pl.DataFrame({prefix: pred[:, 0], **cols}), weights, model


def fit_plain_eta(train: pl.DataFrame, test: pl.DataFrame, prefix: str = "plain") -> pl.DataFrame:
    """LightGBM on the raw columns: L2 point model and quantile models, raw target, default parameters."""
    point = LGBMModel(PLAIN_FEATURES, config=PLAIN_CONFIG, output_col=prefix).fit(train, TARGET)
    quant = QuantileRegressor(PLAIN_FEATURES, QUANTILES, prefix=prefix, config=PLAIN_CONFIG)
    return pl.concat([point.predict(test), quant.fit(train, TARGET).predict(test)], how="horizontal")


def p_exceed(quantiles: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """P(target > threshold) from predicted P50/P80/P95: a piecewise-linear CDF on the log1p scale.

    Between the quantiles the CDF is interpolated linearly; below P50 the P50-P80 slope is continued (floor
    0.01); above P95 it approaches 1 exponentially with the P80-P95 spread as scale.
    """
    lq = np.log1p(np.clip(quantiles, 0.0, None))
    x = np.log1p(np.clip(threshold, 0.0, None))
    q50, q80, q95 = lq[:, 0], lq[:, 1], lq[:, 2]
    w1, w2 = np.maximum(q80 - q50, 1e-6), np.maximum(q95 - q80, 1e-6)
    cdf = np.select(
        [x < q50, x <= q80, x <= q95],
        [
            np.maximum(0.5 - 0.3 * (q50 - x) / w1, 0.01),
            0.5 + 0.3 * (x - q50) / w1,
            0.8 + 0.15 * (x - q80) / w2,
        ],
        default=0.95 + 0.05 * (1.0 - np.exp(-(x - q95) / w2)),
    )
    return 1.0 - np.clip(cdf, 0.0, 0.995)


def fit_plain_delay(train: pl.DataFrame, test: pl.DataFrame, output_col: str) -> pl.DataFrame:
    """Plain classifier: raw columns plus the promise (the label is defined by it), no calibration."""
    features = FeatureSet(
        numeric=(*PLAIN_FEATURES.numeric, "promise_days"), categorical=PLAIN_FEATURES.categorical
    )
    clf = CalibratedClassifier(features, output_col=output_col, config=PLAIN_CONFIG)
    return clf.fit(train.filter(pl.col(LATE).is_not_null()), LATE).predict(test)


def labels_known_at(train: pl.DataFrame, cutoff: object) -> pl.DataFrame:
    """Train rows a deployment at `cutoff` could learn from without censoring bias.

    Orders created at least `LABEL_HORIZON_DAYS` before the cutoff and delivered before it. Keeping every
    order delivered before the cutoff instead would keep the fast recent ones and drop the slow ones.
    """
    old_enough = pl.col("created_at") < pl.lit(cutoff) - pl.duration(days=LABEL_HORIZON_DAYS)
    return train.filter(old_enough & (pl.col("delivered_at") < pl.lit(cutoff)))


# ---------------------------------------------------------------------------------------------------------
# Scoring and recording
# ---------------------------------------------------------------------------------------------------------
def _value(frame: pl.DataFrame, model: str, metric: str) -> float:
    row = frame.filter((pl.col("model") == model) & (pl.col("metric") == metric))
    return float(row.get_column("value")[0]) if row.height else float("nan")


def _record_all(
    dataset: str, scores: pl.DataFrame, names: dict[str, str], metrics: Sequence[tuple[str, str, str]]
) -> None:
    for key, system in names.items():
        for metric, label, unit in metrics:
            value = _value(scores, key, metric)
            if not np.isnan(value):
                record(BENCHMARK, dataset, system, label, value, unit, COMMAND)


def _score(
    df: pl.DataFrame, models: Sequence[str], target: str, fns: Sequence[Callable[..., pl.DataFrame]]
) -> pl.DataFrame:
    return pl.concat([fn(df, list(models), target, cutoff_col=None) for fn in fns], how="vertical_relaxed")


def _importance(model: QuantileRegressor, booster: str = "q50", top: int = 15) -> list[tuple[str, float]]:
    b = model.boosters[booster]
    gain = b.feature_importance(importance_type="gain")
    total = float(gain.sum()) or 1.0
    pairs = sorted(zip(b.feature_name(), gain / total, strict=True), key=lambda p: -p[1])
    return [(name, float(share)) for name, share in pairs[:top]]


def run_dataset(dataset: str, shipments: pl.DataFrame) -> None:
    """Build, fit, score and record one dataset."""
    t0 = time.perf_counter()
    frame = build_frame(shipments)
    train, test, cutoff = split_by_share(frame, TEST_SHARE)
    known = labels_known_at(train, cutoff)
    features = scms_feature_set(FEATURES)
    tc, weights, model = fit_transitcast_eta(train, test, features)
    tc_k, weights_k, _ = fit_transitcast_eta(known, test, features, prefix="tc_k")
    preds = pl.concat(
        [test, tc, tc_k, fit_plain_eta(train, test), fit_plain_eta(known, test, prefix="plain_k")],
        how="horizontal",
    ).with_columns(pl.col(quantile_col(k, 0.5)).alias(k) for k in ("lane", "lane50", "sched"))
    eta_scores = _score(preds, list(SYSTEMS), TARGET, [mae, pinball, coverage])
    eta_metrics = [
        ("mae", "MAE", "days"),
        ("pinball", "pinball (mean q50/q80/q95)", "days"),
        ("coverage_q80", "coverage P80", "share"),
        ("coverage_q95", "coverage P95", "share"),
    ]
    _record_all(dataset, eta_scores, SYSTEMS, eta_metrics)

    labelled = preds.filter(pl.col(LATE).is_not_null())
    promise = labelled.get_column("promise_days").to_numpy()
    labelled = pl.concat(
        [
            labelled,
            fit_plain_delay(train, labelled, "p_late_plain"),
            fit_plain_delay(known, labelled, "p_late_plain_k"),
        ],
        how="horizontal",
    ).with_columns(
        *[
            pl.Series(f"p_late_{key}", p_exceed(_quantile_matrix(labelled, key), promise), dtype=pl.Float64)
            for key in ("tc", "tc_k")
        ],
        pl.col("p_late_lane").fill_null(1.0 - PROMISE.quantile),
    )
    delay_names = {
        **{f"p_late_{key}": SYSTEMS[key] for key in ("tc", "plain", "sched", "tc_k", "plain_k")},
        "p_late_lane": "lane late-rate (as-of)",
    }
    delay_scores = _score(labelled, list(delay_names), LATE, [brier, auc, ece])
    delay_metrics = [
        ("brier", "delay Brier (late > lane P80 promise)", "score"),
        ("auc", "delay AUC (late > lane P80 promise)", "score"),
        ("ece", "delay ECE (late > lane P80 promise)", "score"),
    ]
    _record_all(dataset, delay_scores, delay_names, delay_metrics)
    base_rate = float(labelled.get_column(LATE).mean())
    record(BENCHMARK, dataset, "data", "late share on test (vs 0.20 nominal)", base_rate, "share", COMMAND)
    record(BENCHMARK, dataset, "data", "train rows", train.height, "rows", COMMAND)
    record(BENCHMARK, dataset, "data", "train rows [labels known at cutoff]", known.height, "rows", COMMAND)
    record(BENCHMARK, dataset, "data", "test rows", test.height, "rows", COMMAND)
    print(f"{dataset}: cutoff {cutoff:%Y-%m-%d}, {time.perf_counter() - t0:.1f} s")
    print(
        f"    blend weight of the model vs the last-50 lane quantile: {weights} (labels known: {weights_k})"
    )
    print(f"{dataset}: transitcast P50 booster, share of split gain, top 15:")
    for name, share in _importance(model):
        print(f"    {share:6.1%}  {name}")


def main() -> None:
    """Run both datasets and rebuild docs/benchmarks.md."""
    logging.basicConfig(level=logging.WARNING)
    shipments = load_shipments()
    for dataset, condition in DATASETS.items():
        run_dataset(dataset, shipments.filter(condition))
    write_table()


if __name__ == "__main__":
    main()
