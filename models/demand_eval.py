"""Stage: models (demand evaluation). Slice metrics of a demand backtest and the tuning folds' arithmetic.

Reads and writes nothing: the stacked backtest predictions of `models.demand_tasks.demand_backtest` in,
metric frames and cutoff dates out. The `train-demand` flow reports `slice_metrics`; the demand Optuna study
scores `tuning_cutoffs` on the panel cut by `truncate_to_cutoff`, so the weeks that choose the parameters
never overlap the weeks that decide promotion.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from models.demand_tasks import DemandTaskConfig, backtest_cutoffs, demand_metrics, model_columns

__all__ = ["SLICES", "slice_metrics", "truncate_to_cutoff", "tuning_cutoffs"]

SLICES = ("warehouse_id", "volume_class")
"""Columns the demand metrics are also reported by (besides `overall`)."""


def slice_metrics(preds: pl.DataFrame) -> pl.DataFrame:
    """Demand metrics per cutoff: overall and per `SLICES` column (`slice`, `slice_value`).

    Returns:
        ``cutoff, slice, slice_value, model, metric, value`` (``slice_value`` is "" for ``overall``).
    """
    models = model_columns(preds)
    parts = [demand_metrics(preds, models).with_columns(slice=pl.lit("overall"), slice_value=pl.lit(""))]
    for col in SLICES:
        part = demand_metrics(preds, models, by=[col])
        parts.append(part.rename({col: "slice_value"}).with_columns(slice=pl.lit(col)))
    cols = ["cutoff", "slice", "slice_value", "model", "metric", "value"]
    return pl.concat([p.select(cols) for p in parts], how="vertical_relaxed")


def tuning_cutoffs(panel: pl.DataFrame, config: DemandTaskConfig, n_cutoffs: int) -> list[dt.date]:
    """Cutoffs of the tuning folds: their target weeks all end before the first cutoff `train-demand`
    reports, so the backtest that decides promotion never scores weeks that chose the parameters."""
    h = config.features.horizons
    reported = backtest_cutoffs(panel, config.n_cutoffs, config.step_weeks, h)
    earlier = panel.filter(pl.col("week_start") < reported[0])
    return backtest_cutoffs(earlier, n_cutoffs, config.step_weeks, h)


def truncate_to_cutoff(
    prepared: tuple[pl.DataFrame, pl.DataFrame], cutoff: dt.date, horizons: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Panel and features cut so that the last backtest cutoff is `cutoff` (targets until its horizon)."""
    panel, feats = prepared
    end = cutoff + dt.timedelta(weeks=horizons)
    return panel.filter(pl.col("week_start") < end), feats.filter(pl.col("origin_week") <= cutoff)
