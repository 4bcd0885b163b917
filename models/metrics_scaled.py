"""Stage: models (evaluation). Scaled demand metrics: MASE-style scale per series (MASE, scaled pinball,
RMSSE, WRMSSE), with the one metric signature of `models.metrics` .

Reads and writes nothing: a predictions frame (and the training history for the scale) in, a long metrics
frame out.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from models.metrics import (
    DEFAULT_QUANTILES,
    _aggregate,
    _check_columns,
    _finish,
    _keys,
    _target,
    pinball,
    quantile_col,
)

__all__ = ["mase", "rmsse", "scaled_pinball", "seasonal_naive_scale", "wrmsse"]


# ---------------------------------------------------------------------------------------------------------
# Scaled metrics (demand: MASE-style scale per series)
# ---------------------------------------------------------------------------------------------------------
def seasonal_naive_scale(
    train: pl.DataFrame,
    target_col: str,
    id_cols: Sequence[str],
    time_col: str,
    *,
    season_length: int = 1,
    scale_col: str = "scale",
    power: int = 1,
) -> pl.DataFrame:
    """In-sample mean absolute error of the seasonal naive forecast per series: the MASE denominator.

    Returns ``[*id_cols, scale_col]``; join it to the predictions frame on ``id_cols`` and pass the column to
    `mase` or `scaled_pinball`. A series with fewer than ``season_length + 1`` observations gets null.
    ``power=2`` gives the mean *squared* error instead, the RMSSE denominator (`rmsse`, `wrmsse`).
    """
    if power not in (1, 2):
        raise ValueError(f"power must be 1 or 2, got {power}")
    y = pl.col(target_col).cast(pl.Float64)
    diff = (y - y.shift(season_length)).abs()
    return (
        train.sort([*id_cols, time_col])
        .group_by(id_cols, maintain_order=True)
        .agg((diff if power == 1 else diff.pow(2)).mean().alias(scale_col))
    )


def mase(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    scale_col: str = "scale",
) -> pl.DataFrame:
    """Mean absolute error scaled row by row: ``mean(|y - M| / scale)``.

    With ``by`` set to the series id columns and ``scale`` from `seasonal_naive_scale`, this is MASE per
    series. Rows with a null or zero scale are excluded.
    """
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, [*models, scale_col])
    data = df.filter(pl.col(scale_col) > 0)
    y, scale = _target(target_col), pl.col(scale_col).cast(pl.Float64)
    return _aggregate(
        data, models, target_col, keys, lambda m: {"mase": ((y - pl.col(m)).abs() / scale).mean()}
    )


def scaled_pinball(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    scale_col: str = "scale",
) -> pl.DataFrame:
    """Pinball loss divided row by row by ``scale_col`` (``scaled_pinball`` and ``scaled_pinball_qNN``).

    Rows with a null or zero scale are excluded.
    """
    _check_columns(df, [scale_col])
    data = df.filter(pl.col(scale_col) > 0)
    scaled = data.with_columns(
        (_target(target_col) / pl.col(scale_col)).alias(target_col),
        *[
            (pl.col(quantile_col(m, q)) / pl.col(scale_col)).alias(quantile_col(m, q))
            for m in models
            for q in quantiles
        ],
    )
    out = pinball(scaled, models, target_col, cutoff_col, by, quantiles=quantiles)
    return out.with_columns(metric=pl.lit("scaled_") + pl.col("metric"))


def rmsse(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    scale_col: str = "scale_sq",
) -> pl.DataFrame:
    """Root mean squared error scaled row by row: ``sqrt(mean((y - M)^2 / scale_sq))``.

    ``scale_sq`` is the in-sample mean squared naive error (`seasonal_naive_scale` with ``power=2``). With
    ``by`` set to the series id columns this is the M5 RMSSE per series. Rows with a null or zero scale are
    excluded.
    """
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, [*models, scale_col])
    data = df.filter(pl.col(scale_col) > 0)
    y, scale = _target(target_col), pl.col(scale_col).cast(pl.Float64)
    return _aggregate(
        data, models, target_col, keys, lambda m: {"rmsse": ((y - pl.col(m)).pow(2) / scale).mean().sqrt()}
    )


def wrmsse(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    series_cols: Sequence[str] = ("warehouse_id", "sku_id"),
    scale_col: str = "scale_sq",
    weight_col: str = "weight",
) -> pl.DataFrame:
    """Weighted RMSSE, M5-style: the RMSSE of each series weighted by ``weight_col`` (e.g. its revenue over
    the weeks before the cutoff), summed over the series of each group and divided by their total weight.

    Series with a null or zero scale or weight are excluded.
    """
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, [*models, scale_col, weight_col, *series_cols])
    data = df.filter((pl.col(scale_col) > 0) & (pl.col(weight_col) > 0) & pl.col(target_col).is_not_null())
    y, scale = _target(target_col), pl.col(scale_col).cast(pl.Float64)
    per_series = data.group_by([*keys, *[c for c in series_cols if c not in keys]]).agg(
        pl.col(weight_col).first().cast(pl.Float64).alias("_w"),
        *[((y - pl.col(m)).pow(2) / scale).mean().sqrt().alias(m) for m in models],
    )
    w = pl.col("_w")
    aggs = []
    for m in models:
        total = w.filter(pl.col(m).is_not_null()).sum()
        aggs.append(pl.when(total > 0).then((pl.col(m) * w).sum() / total).otherwise(None).alias(m))
    wide = per_series.group_by(keys, maintain_order=True).agg(aggs) if keys else per_series.select(aggs)
    long = wide.unpivot(index=keys, on=list(models), variable_name="model", value_name="value")
    return _finish(long.with_columns(metric=pl.lit("wrmsse")), keys)
