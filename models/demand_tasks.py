"""Stage: models (demand). Training recipe, baselines and the rolling-origin backtest of the demand model.

Reads validated tables (``warehouse_sales``, ``skus``, ``warehouses``) and, on simulated data, the oracle
weekly demand (``oracle/demand_weekly.parquet``); writes nothing. Wiring (MLflow, Prefect, files) lives in
`pipelines.flows.demand`.

Recipe for one cutoff (the first forecast week, a Monday): calibration origins are the `calib_origins`
weeks ending ``horizons`` weeks before the cutoff, so their targets are all observed before it; the Tweedie
booster is fitted on origins every `origin_step` weeks (at most `train_weeks` back) whose target weeks lie
before the first calibration origin; the distribution is calibrated on the calibration origins; then the
booster is refitted with the same number of rounds on every target week before the cutoff (`refit`).
Censored target weeks are never training, calibration or evaluation targets.

Baselines (same quantile columns): ``seasonal_naive`` (the week 52 weeks before the target plus the
empirical quantiles of its year-over-year errors over the 26 weeks before the origin; falls back to
``moving_average`` without a year of history), ``moving_average`` (13-week mean and empirical quantiles of
the last 13 weekly values), and on simulated data ``oracle`` (the true demand quantiles).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.demand_features import DemandFeatureConfig, build_demand_features
from features.demand_panel import SERIES, build_weekly_panel
from models.demand import DEMAND_QUANTILES, DemandModel, new_demand_model
from models.lgbm import LGBMConfig
from models.metrics import (
    coverage,
    evaluate,
    pinball,
)
from models.metrics_scaled import mase, rmsse, scaled_pinball, seasonal_naive_scale, wrmsse

__all__ = [
    "DemandTaskConfig",
    "backtest_cutoffs",
    "baseline_predictions",
    "demand_backtest",
    "demand_metrics",
    "model_columns",
    "needed_origins",
    "fit_demand_model",
    "prepare_demand",
    "series_scales",
]

logger = logging.getLogger(__name__)

_Q_SUFFIX = [f"q{int(round(q * 100))}" for q in DEMAND_QUANTILES]
MODEL_NAME = "lgbm"


class DemandTaskConfig(BaseModel):
    """Settings of the demand training recipe and backtest.

    Attributes:
        features: feature builder settings (horizons, lags, windows).
        lgbm: LightGBM settings of the Tweedie booster.
        n_cutoffs: backtest cutoffs (>= 6 for a report).
        step_weeks: weeks between consecutive backtest cutoffs.
        origin_step: training origins every this many weeks.
        train_weeks: training origins at most this many weeks before the calibration window.
        calib_origins: consecutive weekly origins in the calibration window.
        refit: refit the booster on every target before the cutoff after calibration (measured on the
            demo world: no accuracy gain for twice the fit time, so off by default).
        max_feature_rows: budget of training and calibration feature rows; above it, a seeded hash sample
            of series x origin pairs is kept (test cutoffs are always complete).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: DemandFeatureConfig = DemandFeatureConfig()
    lgbm: LGBMConfig = LGBMConfig(
        num_boost_round=300, early_stopping_rounds=30, params={"learning_rate": 0.08, "num_leaves": 63}
    )
    n_cutoffs: int = Field(default=6, ge=1)
    step_weeks: int = Field(default=4, ge=1)
    origin_step: int = Field(default=4, ge=1)
    train_weeks: int = Field(default=104, ge=8)
    calib_origins: int = Field(default=8, ge=1)
    refit: bool = False
    max_feature_rows: int = Field(default=2_000_000, ge=10_000)


def prepare_demand(
    tables: Mapping[str, pl.DataFrame], config: DemandTaskConfig | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The weekly panel and the feature rows of the origins the backtest folds and the final fit read
    (features are point in time, so one build serves every fold).

    Returns:
        ``(panel, features)``.
    """
    cfg = config or DemandTaskConfig()
    if "warehouse_sales" not in tables:
        raise ValueError("tables must include 'warehouse_sales'")
    panel = build_weekly_panel(tables["warehouse_sales"], tables.get("skus"))
    last = panel.get_column("week_start").max()
    assert isinstance(last, dt.date)
    cutoffs = backtest_cutoffs(panel, cfg.n_cutoffs, cfg.step_weeks, cfg.features.horizons)
    origins = sorted({o for c in [*cutoffs, last + dt.timedelta(weeks=1)] for o in needed_origins(c, cfg)})
    n_series = panel.select(SERIES).n_unique()
    n_fit = max(len(set(origins) - set(cutoffs)), 1)
    share = min(1.0, cfg.max_feature_rows / (n_series * n_fit * cfg.features.horizons))
    keep = None
    if share < 1.0:
        logger.info("demand features: sampling %.1f%% of series x origin pairs for fitting", 100 * share)
        sampled = pl.struct(*SERIES, "origin_week").hash(seed=cfg.lgbm.seed) % 10_000 < int(share * 10_000)
        keep = pl.col("origin_week").is_in(cutoffs) | sampled
    feats = build_demand_features(
        panel, tables.get("warehouses"), origins=origins, config=cfg.features, keep=keep
    )
    return panel, feats


def needed_origins(cutoff: dt.date, config: DemandTaskConfig) -> list[dt.date]:
    """The origin weeks `fit_demand_model` reads for `cutoff` (training grid and calibration window) and
    the cutoff itself, so that features are built only where they are used."""
    train_first, calib_first, calib_last = _windows(cutoff, config)
    step = dt.timedelta(weeks=config.origin_step)
    n_train = (calib_first - train_first).days // (7 * config.origin_step)
    train = [calib_first - step * (k + 1) for k in range(n_train)]
    calib = [calib_first + dt.timedelta(weeks=k) for k in range(config.calib_origins)]
    assert calib[-1] == calib_last
    return [*train, *calib, cutoff]


def backtest_cutoffs(panel: pl.DataFrame, n_cutoffs: int, step_weeks: int, horizons: int) -> list[dt.date]:
    """Rolling cutoffs (Mondays), oldest first; the last one leaves `horizons` observed weeks after it."""
    last = panel.get_column("week_start").max()
    assert isinstance(last, dt.date)
    final = last - dt.timedelta(weeks=horizons - 1)
    return [final - dt.timedelta(weeks=step_weeks * k) for k in range(n_cutoffs)][::-1]


def _windows(cutoff: dt.date, cfg: DemandTaskConfig) -> tuple[dt.date, dt.date, dt.date]:
    h = cfg.features.horizons
    calib_last = cutoff - dt.timedelta(weeks=h)
    calib_first = calib_last - dt.timedelta(weeks=cfg.calib_origins - 1)
    train_first = calib_first - dt.timedelta(weeks=cfg.train_weeks)
    return train_first, calib_first, calib_last


def _train_rows(
    feats: pl.DataFrame, first: dt.date, before: dt.date, step: int, anchor: dt.date | None = None
) -> pl.DataFrame:
    # Origins every `step` weeks counted from `anchor` (default `before`), on the grid the features were
    # built on (`needed_origins`).
    weeks = (pl.col("origin_week") - pl.lit(anchor or before)).dt.total_days() // 7
    return feats.filter(
        (pl.col("origin_week") >= first)
        & (pl.col("week_start") < before)
        & (weeks % step == 0)
        & pl.col("y").is_not_null()
    )


def fit_demand_model(
    feats: pl.DataFrame, cutoff: dt.date, config: DemandTaskConfig | None = None
) -> DemandModel:
    """Fit, calibrate and (optionally) refit the demand model with everything observed before `cutoff`.

    Args:
        feats: feature rows from `prepare_demand` (may include later origins; they are filtered out).
        cutoff: the first forecast week (Monday); no target on or after it is used.
        config: recipe settings.

    Returns:
        A fitted, calibrated `DemandModel`.
    """
    cfg = config or DemandTaskConfig()
    train_first, calib_first, calib_last = _windows(cutoff, cfg)
    train = _train_rows(feats, train_first, calib_first, cfg.origin_step)
    calib = feats.filter(
        pl.col("origin_week").is_between(calib_first, calib_last)
        & (pl.col("week_start") < cutoff)
        & pl.col("y").is_not_null()
    )
    expected = set(needed_origins(cutoff, cfg)) - {cutoff}
    present = set(feats.get_column("origin_week").unique().to_list())
    if len(expected & present) < len(expected) / 2:
        logger.warning(
            "features hold %d of the %d origins the fit for cutoff %s reads: build them with "
            "prepare_demand for this cutoff (the last panel week + 1) or pass features of every origin",
            len(expected & present), len(expected), cutoff,
        )  # fmt: skip
    if train.height == 0 or calib.height == 0:
        raise ValueError(
            f"not enough history before cutoff {cutoff}: {train.height} training and {calib.height} "
            f"calibration rows (needs about {cfg.features.horizons + cfg.calib_origins + 8} weeks)"
        )
    model = new_demand_model(cfg.lgbm, cfg.features)
    valid = calib.filter(pl.col("origin_week") == calib_last)
    model.fit(train, "y", valid=valid)
    model.calibrate(calib, "y", seed=cfg.lgbm.seed)
    if cfg.refit:
        rounds = max(int(model.training_["best_iteration"]["mean"]), 1)
        first = train_first + dt.timedelta(weeks=cfg.features.horizons)
        full = _train_rows(feats, first, cutoff, cfg.origin_step, anchor=calib_first)
        state = model._state()  # the calibrated distribution carries over to the refitted mean
        model = new_demand_model(cfg.lgbm, cfg.features).fit(full, "y", params={"num_boost_round": rounds})
        model._set_state(state)
    return model


def baseline_predictions(panel: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Seasonal-naive and moving-average mean and quantile columns for feature rows.

    Args:
        panel: the weekly panel.
        rows: feature rows (``warehouse_id``, ``sku_id``, ``origin_week``, ``week_start``).

    Returns:
        `rows` with ``moving_average``, ``moving_average_qNN``, ``seasonal_naive``, ``seasonal_naive_qNN``.
    """
    est = pl.col("demand_est")
    past = est.shift(1)
    yoy = est - est.shift(52)
    origin = (
        panel.sort([*SERIES, "week_start"])
        .with_columns(
            [past.rolling_mean(13, min_samples=1).over(SERIES).alias("moving_average")]
            + [
                past.rolling_quantile(q, window_size=13, min_samples=1, interpolation="nearest")
                .over(SERIES)
                .alias(f"moving_average_{s}")
                for q, s in zip(DEMAND_QUANTILES, _Q_SUFFIX, strict=True)
            ]
            + [
                yoy.shift(1)
                .rolling_quantile(q, window_size=26, min_samples=4, interpolation="nearest")
                .over(SERIES)
                .alias(f"_yoy_{s}")
                for q, s in zip(DEMAND_QUANTILES, _Q_SUFFIX, strict=True)
            ]
        )
        .select(
            SERIES
            + [pl.col("week_start").alias("origin_week"), "moving_average"]
            + [f"moving_average_{s}" for s in _Q_SUFFIX]
            + [f"_yoy_{s}" for s in _Q_SUFFIX]
        )
    )
    lag52 = panel.select(
        *SERIES, (pl.col("week_start") + pl.duration(weeks=52)).alias("week_start"), est.alias("_ly")
    )
    out = rows.join(origin, on=[*SERIES, "origin_week"], how="left").join(
        lag52, on=[*SERIES, "week_start"], how="left"
    )
    has_ly = pl.col("_ly").is_not_null() & pl.col("_yoy_q50").is_not_null()
    return out.with_columns(
        seasonal_naive=pl.when(has_ly).then(pl.col("_ly")).otherwise(pl.col("moving_average")),
        **{
            f"seasonal_naive_{s}": pl.when(has_ly)
            .then((pl.col("_ly") + pl.col(f"_yoy_{s}")).clip(0.0))
            .otherwise(pl.col(f"moving_average_{s}"))
            for s in _Q_SUFFIX
        },
    ).drop("_ly", *[f"_yoy_{s}" for s in _Q_SUFFIX])


def series_scales(panel: pl.DataFrame, cutoff: dt.date, skus: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per series, from the weeks before `cutoff`: ``scale`` (mean absolute one-week change, the MASE and
    scaled-pinball denominator), ``scale_sq`` (mean squared change, RMSSE) and ``weight`` (revenue over the
    last 52 weeks: units x weekly price, the SKU list price where no price was recorded; WRMSSE)."""
    past = panel.filter(pl.col("week_start") < cutoff)
    est = past.drop_nulls("demand_est")
    scale = seasonal_naive_scale(est, "demand_est", SERIES, "week_start", season_length=1)
    scale_sq = seasonal_naive_scale(est, "demand_est", SERIES, "week_start", power=2, scale_col="scale_sq")
    price = pl.col("price_usd") if "price_usd" in past.columns else pl.lit(None, pl.Float64)
    if skus is not None and "price_usd" in skus.columns:
        past = past.join(skus.select("sku_id", pl.col("price_usd").alias("_list")), on="sku_id", how="left")
        price = price.fill_null(pl.col("_list"))
    revenue = (
        past.filter(pl.col("week_start") >= cutoff - dt.timedelta(weeks=52))
        .group_by(SERIES)
        .agg((pl.col("units") * price.fill_null(1.0)).sum().alias("weight"))
    )
    return scale.join(scale_sq, on=SERIES, how="full", coalesce=True).join(
        revenue, on=SERIES, how="full", coalesce=True
    )


def demand_metrics(frame: pl.DataFrame, models: Sequence[str], by: Sequence[str] = ()) -> pl.DataFrame:
    """Scaled pinball, pinball, coverage, MASE, and when the columns are there RMSSE (``scale_sq``) and
    revenue-weighted WRMSSE (``weight``), of `models` on an evaluation frame (cutoff column ``cutoff``,
    target ``y``, scale column ``scale``)."""
    metrics: list[Callable[..., pl.DataFrame]] = [
        partial(scaled_pinball, quantiles=DEMAND_QUANTILES),
        partial(pinball, quantiles=DEMAND_QUANTILES),
        partial(coverage, quantiles=DEMAND_QUANTILES),
        mase,
    ]
    if "scale_sq" in frame.columns:
        metrics.append(rmsse)
    if {"scale_sq", "weight", *SERIES} <= set(frame.columns):
        metrics.append(wrmsse)
    return evaluate(frame, metrics, list(models), "y", "cutoff", by)


def demand_backtest(
    tables: Mapping[str, pl.DataFrame],
    config: DemandTaskConfig | None = None,
    *,
    oracle: pl.DataFrame | None = None,
    prepared: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Rolling-origin backtest of the demand model next to its baselines (and the oracle when given).

    Args:
        tables: validated tables.
        config: recipe and backtest settings.
        oracle: the simulator's weekly truth (``week_start``, ``warehouse_id``, ``sku_id``,
            ``demand_mean``, ``demand_q50..q95``); adds the ``oracle`` model.
        prepared: ``(panel, features)`` from `prepare_demand`, to avoid rebuilding them.

    Returns:
        The evaluation frame: one row per cutoff x series x horizon with an uncensored target: ``cutoff``,
        ``warehouse_id``, ``sku_id``, ``horizon``, ``week_start``, ``volume_class``, ``y``, ``scale``, and per
        model ``M`` (mean) and ``M_qNN``. Score it with `demand_metrics`.
    """
    cfg = config or DemandTaskConfig()
    panel, feats = prepared or prepare_demand(tables, cfg)
    parts = []
    for cutoff in backtest_cutoffs(panel, cfg.n_cutoffs, cfg.step_weeks, cfg.features.horizons):
        model = fit_demand_model(feats, cutoff, cfg)
        test = feats.filter((pl.col("origin_week") == cutoff) & pl.col("y").is_not_null())
        preds = model.predict(test).rename(
            {"demand_mean": MODEL_NAME, **{f"demand_{s}": f"{MODEL_NAME}_{s}" for s in _Q_SUFFIX}}
        )
        fold = (
            baseline_predictions(panel, test.hstack(preds))
            .join(series_scales(panel, cutoff, tables.get("skus")), on=SERIES, how="left")
            .with_columns(cutoff=pl.lit(cutoff))
        )
        parts.append(fold)
        logger.info("demand backtest cutoff %s: %d test rows", cutoff, test.height)
    out = pl.concat(parts, how="vertical_relaxed")
    if oracle is not None:
        orc = oracle.select(
            "week_start",
            *SERIES,
            pl.col("demand_mean").alias("oracle"),
            *[pl.col(f"demand_{s}").alias(f"oracle_{s}") for s in _Q_SUFFIX],
        )
        out = out.join(orc, on=["week_start", *SERIES], how="left")
    models = model_columns(out)
    keep = ["cutoff", *SERIES, "horizon", "week_start", "volume_class", "y", "scale", "scale_sq", "weight"]
    return out.select(keep + [c for m in models for c in (m, *[f"{m}_{s}" for s in _Q_SUFFIX])])


def model_columns(frame: pl.DataFrame) -> list[str]:
    """The model names present in an evaluation frame."""
    return [m for m in (MODEL_NAME, "seasonal_naive", "moving_average", "oracle") if m in frame.columns]
