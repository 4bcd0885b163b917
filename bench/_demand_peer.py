"""Benchmark helper (demand): the mlforecast peer and the shared accuracy run of the demand benchmarks.

Reads validated demand tables (and the simulator's oracle when given); writes nothing itself: the calling
benchmark records the figures through `bench._results.record`.

The peer is Nixtla's mlforecast with LightGBM (Tweedie objective) on the same weekly panel, the same lags
(1-4) and the same rolling means (4, 8, 13, 26, 52 weeks, plus a 13-week std), week-of-year date features,
recursive by default; its quantiles come from mlforecast's own conformal prediction intervals (2 windows of
the full horizon): P50 = the point forecast, P80/P90/P95 = the upper ends of the 60/80/90 % intervals.
mlforecast cannot use censoring flags, so it gets the same censoring-aware weekly series our lag features
read (``demand_est``, observed units where no estimate exists). Its conformal intervals need more than
2 x 16 weeks of history, so younger series are scored on the rows every system predicts (reported).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from features.demand_panel import SERIES
from models.demand import DEMAND_QUANTILES
from models.demand_tasks import (
    DemandTaskConfig,
    backtest_cutoffs,
    demand_backtest,
    demand_metrics,
    model_columns,
    prepare_demand,
)

__all__ = ["HEADLINE", "accuracy_run", "mlforecast_backtest", "mlforecast_model", "record_accuracy"]

# Metrics every demand accuracy benchmark records, overall and per volume class.
HEADLINE = (
    "scaled_pinball",
    "pinball",
    "mase",
    "coverage_q50",
    "coverage_q80",
    "coverage_q90",
    "coverage_q95",
)
CLASS_METRICS = ("scaled_pinball", "coverage_q50", "coverage_q80", "coverage_q90", "coverage_q95")

_Q = [f"q{int(round(q * 100))}" for q in DEMAND_QUANTILES]
_LEVELS = {"q80": 60, "q90": 80, "q95": 90}


def mlforecast_model(lgbm_params: Mapping[str, Any] | None = None, num_threads: int = 2) -> Any:
    """The mlforecast peer: LightGBM Tweedie with the same lags and rolling windows as transitcast."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd

    params = {
        "objective": "tweedie",
        "tweedie_variance_power": 1.2,
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 63,
        "min_child_samples": 20,
        "subsample": 0.9,
        "subsample_freq": 1,
        "colsample_bytree": 0.9,
        "verbosity": -1,
        "n_jobs": num_threads,
        "random_state": 0,
        **(lgbm_params or {}),
    }

    def week_of_year(dates: Any) -> Any:
        return dates.isocalendar().week.astype("int32").to_numpy()

    return MLForecast(
        models={"mlforecast": lgb.LGBMRegressor(**params)},
        freq="W-MON",
        lags=[1, 2, 3, 4],
        lag_transforms={
            1: [
                *[RollingMean(w, min_samples=1) for w in (4, 8, 13, 26, 52)],
                RollingStd(13, min_samples=2),
            ]
        },
        date_features=[week_of_year],
        num_threads=num_threads,
    )


def _series_frame(panel: pl.DataFrame) -> Any:
    frame = panel.select(
        pl.concat_str(SERIES, separator="|").alias("unique_id"),
        pl.col("week_start").cast(pl.Datetime("ns")).alias("ds"),
        pl.coalesce("demand_est", "units").cast(pl.Float64).alias("y"),
    )
    return frame.to_pandas()


def mlforecast_backtest(
    panel: pl.DataFrame,
    cutoffs: Sequence[dt.date],
    horizons: int,
    *,
    direct: bool = False,
    intervals: bool = True,
) -> tuple[pl.DataFrame, float]:
    """Fit mlforecast on the weeks before each cutoff and forecast `horizons` weeks.

    Args:
        panel: the weekly demand panel.
        cutoffs: forecast origins (Mondays).
        horizons: weeks ahead.
        direct: one model per horizon (``max_horizon``) instead of recursive forecasting.
        intervals: conformal quantiles (needs two extra fits per cutoff).

    Returns:
        ``(predictions, fit_seconds)``: ``cutoff``, ``warehouse_id``, ``sku_id``, ``week_start``,
        ``mlforecast`` and, with intervals, ``mlforecast_q50..q95``; total fit time in seconds.
    """
    from mlforecast.utils import PredictionIntervals

    parts, seconds = [], 0.0
    for cutoff in cutoffs:
        past = panel.filter(pl.col("week_start") < cutoff)
        if intervals:  # conformal windows need 2 * horizons + 1 weeks per series; shorter ones are left out
            past = past.filter(pl.len().over(SERIES) > 2 * horizons)
        train = _series_frame(past)
        fcst = mlforecast_model()
        kwargs: dict[str, Any] = {"max_horizon": horizons} if direct else {}
        if intervals:
            kwargs["prediction_intervals"] = PredictionIntervals(n_windows=2, h=horizons)
        t0 = time.perf_counter()
        fcst.fit(train, **kwargs)
        seconds += time.perf_counter() - t0
        pred = pl.from_pandas(fcst.predict(horizons, level=list(_LEVELS.values()) if intervals else None))
        ids = pred.get_column("unique_id").str.split_exact("|", 1)
        out = pred.with_columns(
            warehouse_id=ids.struct.field("field_0"),
            sku_id=ids.struct.field("field_1"),
            week_start=pl.col("ds").cast(pl.Date),
            cutoff=pl.lit(cutoff),
            mlforecast=pl.col("mlforecast").clip(0.0),
        )
        cols = ["cutoff", *SERIES, "week_start", "mlforecast"]
        if intervals:
            out = out.with_columns(
                mlforecast_q50=pl.col("mlforecast").round(0),
                **{
                    f"mlforecast_{q}": pl.col(f"mlforecast-hi-{lvl}").clip(0.0).round(0)
                    for q, lvl in _LEVELS.items()
                },
            )
            qs = [f"mlforecast_{q}" for q in _Q]
            # Conformal upper ends are monotone in the level; the point forecast may exceed a narrow one.
            out = out.with_columns(*[pl.max_horizontal(qs[: i + 1]).alias(c) for i, c in enumerate(qs)])
            cols += qs
        parts.append(out.select(cols))
    return pl.concat(parts), seconds


def accuracy_run(
    tables: Mapping[str, pl.DataFrame],
    config: DemandTaskConfig,
    oracle: pl.DataFrame | None = None,
    *,
    recursive_vs_direct: bool = True,
) -> dict[str, Any]:
    """Backtest transitcast, its baselines, mlforecast (and the oracle) on the same rows, in one run.

    Returns:
        ``summary`` (model, metric, value over the rows every model predicts), ``by_class`` (lgbm coverage
        and scaled pinball per volume class), ``direct_vs_recursive`` (mlforecast MASE of the mean per
        strategy, when asked), ``seconds`` (transitcast backtest and mlforecast fit time), ``rows``.
    """
    t0 = time.perf_counter()
    prepared = prepare_demand(tables, config)
    preds = demand_backtest(tables, config, oracle=oracle, prepared=prepared)
    ours = time.perf_counter() - t0
    panel = prepared[0]
    cutoffs = backtest_cutoffs(panel, config.n_cutoffs, config.step_weeks, config.features.horizons)
    peer, peer_seconds = mlforecast_backtest(panel, cutoffs, config.features.horizons)
    joined = preds.join(peer, on=["cutoff", *SERIES, "week_start"], how="inner")
    common = joined.drop_nulls([c for c in joined.columns if c.startswith(("mlforecast", "lgbm"))])
    models = [*model_columns(common), "mlforecast"]
    metrics = demand_metrics(common, models)
    summary = metrics.group_by("model", "metric").agg(pl.col("value").mean()).sort("metric", "model")
    by_class = (
        demand_metrics(common, ["lgbm"], by=["volume_class"])
        .group_by("volume_class", "metric")
        .agg(pl.col("value").mean())
        .sort("volume_class", "metric")
    )
    result: dict[str, Any] = {
        "summary": summary,
        "by_class": by_class,
        "seconds": {"transitcast_backtest": ours, "mlforecast_fit": peer_seconds},
        "rows": common.height,
        "cutoffs": [c.isoformat() for c in cutoffs],
    }
    if recursive_vs_direct:
        direct, _ = mlforecast_backtest(
            panel, cutoffs, config.features.horizons, direct=True, intervals=False
        )
        both = common.join(
            direct.rename({"mlforecast": "mlforecast_direct"}),
            on=["cutoff", *SERIES, "week_start"],
            how="inner",
        ).rename({"mlforecast": "mlforecast_recursive"})
        from models.metrics_scaled import mase

        mm = mase(both, ["mlforecast_recursive", "mlforecast_direct", "lgbm"], "y", "cutoff")
        result["direct_vs_recursive"] = mm.group_by("model").agg(pl.col("value").mean()).sort("model")
    return result


def record_accuracy(
    benchmark: str, dataset: str, result: Mapping[str, Any], command: str
) -> dict[str, float]:
    """Record the headline metrics of every system, transitcast's gain over each peer, and the per-class
    figures of an `accuracy_run`; return the scaled pinball loss per system."""
    from _results import record

    values = {(r["model"], r["metric"]): r["value"] for r in result["summary"].iter_rows(named=True)}
    for (model, metric), value in values.items():
        if metric in HEADLINE:
            record(benchmark, dataset, model, metric, value, "", command)
    sp = {m: v for (m, k), v in values.items() if k == "scaled_pinball"}
    for peer in ("seasonal_naive", "moving_average", "mlforecast"):
        gain = 100.0 * (1.0 - sp["lgbm"] / sp[peer])
        record(benchmark, dataset, f"transitcast vs {peer}", "scaled_pinball_gain", gain, "%", command)
    for r in result["by_class"].iter_rows(named=True):
        if r["metric"] in CLASS_METRICS:
            record(benchmark, f"{dataset}: {r['volume_class']}", "lgbm", r["metric"], r["value"], "", command)
    return sp
