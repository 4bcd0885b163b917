"""Stage: models (demand distribution). Joint sample paths across horizons and lead-time demand.

Reads and writes nothing: a forecast frame (the weekly-forecast contract, see docs/demand-forecast.md) in,
sample paths / lead-time demand frames out. Used by the `weekly-forecast` flow (``paths.parquet``) and by the
restock decisions, which need the distribution of demand summed over a random lead time.

Method (documented in docs/demand-forecast.md):

* **Marginals.** For one series and horizon, the predictive quantile function is the piecewise-linear curve
  through the knots ``(0, L), (0.5, q50), (0.8, q80), (0.9, q90), (0.95, q95)`` plus an exponential upper tail
  ``q95 + s * ln(0.05 / (1 - u))`` with ``s = (q95 - q90) / ln 2`` (the tail continues the 0.90-0.95 spacing).
  ``L`` in ``[0, q50]`` is chosen so that the mean of that distribution equals ``demand_mean`` where
  possible. So a path's marginal at each horizon reproduces the forecast quantiles exactly (``P(X <= q_k)
  = k``) and, when feasible, its mean.
* **Dependence.** A Gaussian copula with AR(1) correlation across horizons: the latent normal of horizon
  ``h`` is ``z_h = rho z_{h-1} + sqrt(1 - rho^2) e_h`` so ``corr(z_i, z_j) = rho^|i-j|``. ``rho`` is estimated
  by the demand model from backtest residuals (`models.demand.DemandModel.path_rho`); `DEFAULT_RHO` is used
  when none is given.

Example:
    >>> paths = sample_paths(forecast, n_paths=200, seed=0, rho=0.4)  # doctest: +SKIP
    >>> cover = pl.DataFrame({"warehouse_id": ["WH-US-LAX"], "sku_id": ["SKU0007"], "cover_weeks": [5.5]})
    >>> lead_time_demand(paths, cover)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.special import ndtr

__all__ = [
    "DEFAULT_RHO",
    "PATH_QUANTILES",
    "lead_time_demand",
    "quantile_function",
    "sample_paths",
]

DEFAULT_RHO = 0.5
PATH_QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
_SERIES = ["warehouse_id", "sku_id"]
_Q_COLS = ["demand_q50", "demand_q80", "demand_q90", "demand_q95"]
_FORECAST_COLS = [*_SERIES, "horizon", "demand_mean", *_Q_COLS]


def _check_columns(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; expected at least {columns}")


def _lower_knot(mean: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Value of the quantile function at u=0 so the distribution's mean matches `mean`, within [0, q50]."""
    q50, q80, q90, q95 = q.T
    tail = (q95 - q90) / math.log(2.0)
    rest = (
        0.25 * q50
        + 0.3 * (q50 + q80) / 2
        + 0.1 * (q80 + q90) / 2
        + 0.05 * (q90 + q95) / 2
        + 0.05 * (q95 + tail)
    )
    return np.clip((mean - rest) / 0.25, 0.0, q50)


def quantile_function(u: np.ndarray, mean: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Evaluate the documented predictive quantile function.

    Args:
        u: probabilities in (0, 1), shape ``(n, ...)``.
        mean: forecast mean per row, shape ``(n,)``.
        q: forecast quantiles P50/P80/P90/P95 per row, shape ``(n, 4)``, non-decreasing along axis 1.

    Returns:
        Values of the quantile function, same shape as `u`, >= 0.
    """
    lower = _lower_knot(mean, q)
    extra = (1,) * (u.ndim - 1)
    knots_u = np.array([0.0, 0.5, 0.8, 0.9, 0.95])
    knots_v = np.column_stack([lower, q]).reshape(q.shape[0], 5, *extra)
    out = np.zeros_like(u, dtype=np.float64)
    for k in range(4):
        lo_u, hi_u = knots_u[k], knots_u[k + 1]
        w = (u - lo_u) / (hi_u - lo_u)
        seg = knots_v[:, k] + w * (knots_v[:, k + 1] - knots_v[:, k])
        out = np.where((u >= lo_u) & (u < hi_u), seg, out)
    scale = ((q[:, 3] - q[:, 2]) / math.log(2.0)).reshape(q.shape[0], *extra)
    tail = q[:, 3].reshape(q.shape[0], *extra) + scale * np.log(0.05 / np.clip(1.0 - u, 1e-12, None))
    out = np.where(u >= 0.95, tail, out)
    return np.maximum(out, 0.0)


def sample_paths(
    forecast: pl.DataFrame, n_paths: int = 200, seed: int = 0, rho: float | None = None
) -> pl.DataFrame:
    """Joint demand sample paths across horizons for every series of a forecast.

    Args:
        forecast: the forecast contract frame; reads ``warehouse_id``, ``sku_id``, ``horizon``,
            ``demand_mean`` and ``demand_q50/q80/q90/q95``. Every series must have the same horizons
            1..H with no gaps or duplicates.
        n_paths: number of paths per series (>= 1).
        seed: random seed; the same forecast, seed and rho give identical paths.
        rho: lag-1 correlation of the latent Gaussian across consecutive weeks, in [0, 1); None uses
            `DEFAULT_RHO`. 0 gives independent weeks.

    Returns:
        ``warehouse_id``, ``sku_id`` (String), ``path_id`` (Int32, 0..n_paths-1), ``horizon`` (Int32),
        ``units`` (Float64, >= 0), sorted by series, path and horizon.

    Raises:
        ValueError: missing columns, bad ``n_paths``/``rho``, crossing quantiles or a ragged horizon grid
            (the message names the first offending series).
    """
    _check_columns(forecast, _FORECAST_COLS, "forecast")
    if n_paths < 1:
        raise ValueError(f"n_paths must be >= 1, got {n_paths}")
    rho = DEFAULT_RHO if rho is None else float(rho)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho}")
    out_schema = {
        "warehouse_id": pl.String,
        "sku_id": pl.String,
        "path_id": pl.Int32,
        "horizon": pl.Int32,
        "units": pl.Float64,
    }
    if forecast.height == 0:
        return pl.DataFrame(schema=out_schema)
    frame = forecast.select(_FORECAST_COLS).sort([*_SERIES, "horizon"])
    crossing = frame.filter(
        pl.any_horizontal(pl.col(a) > pl.col(b) for a, b in zip(_Q_COLS, _Q_COLS[1:], strict=False))
        | pl.any_horizontal(pl.col(c).is_null() | (pl.col(c) < 0) for c in ["demand_mean", *_Q_COLS])
    )
    if crossing.height:
        row = crossing.row(0, named=True)
        raise ValueError(
            f"forecast quantiles must be non-negative and non-decreasing (q50<=q80<=q90<=q95); "
            f"violated for {row['warehouse_id']}/{row['sku_id']} horizon {row['horizon']}"
        )
    horizons = np.sort(frame.get_column("horizon").unique().to_numpy())
    n_h = len(horizons)
    counts = frame.group_by(_SERIES).agg(pl.len().alias("n"), pl.col("horizon").n_unique().alias("u"))
    bad = counts.filter((pl.col("n") != n_h) | (pl.col("u") != n_h))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"every series needs the same {n_h} horizons once each; {row['warehouse_id']}/{row['sku_id']} "
            f"has {row['n']} rows over {row['u']} horizons"
        )
    n_series = frame.height // n_h
    mean = frame.get_column("demand_mean").to_numpy().reshape(n_series, n_h)
    q = frame.select(_Q_COLS).to_numpy().reshape(n_series, n_h, 4)

    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_series, n_paths, n_h))
    z = np.empty_like(eps)
    z[:, :, 0] = eps[:, :, 0]
    innov = math.sqrt(1.0 - rho * rho)
    for h in range(1, n_h):
        z[:, :, h] = rho * z[:, :, h - 1] + innov * eps[:, :, h]
    u = np.clip(ndtr(z), 1e-9, 1 - 1e-9)  # (series, path, horizon)
    # Evaluate per horizon: rows = series, columns = paths.
    units = np.empty_like(u)
    for h in range(n_h):
        units[:, :, h] = quantile_function(u[:, :, h], mean[:, h], q[:, h, :])

    keys = frame.filter(pl.col("horizon") == horizons[0]).select(_SERIES)
    return pl.DataFrame(
        {
            "warehouse_id": np.repeat(keys.get_column("warehouse_id").to_numpy(), n_paths * n_h),
            "sku_id": np.repeat(keys.get_column("sku_id").to_numpy(), n_paths * n_h),
            "path_id": np.tile(np.repeat(np.arange(n_paths, dtype=np.int32), n_h), n_series),
            "horizon": np.tile(horizons.astype(np.int32), n_series * n_paths),
            "units": units.reshape(-1),
        },
        schema=out_schema,
    )


def lead_time_demand(paths: pl.DataFrame, cover_weeks: pl.DataFrame) -> pl.DataFrame:
    """Demand summed over a (possibly fractional, per-path random) number of weeks, per series and path.

    Week ``h`` (horizon ``h``, the ``h``-th week from the cutoff) counts with weight
    ``clip(cover_weeks - (h - 1), 0, 1)``: ``cover_weeks = 2.5`` sums weeks 1 and 2 and half of week 3.

    Args:
        paths: output of `sample_paths`: ``warehouse_id``, ``sku_id``, ``path_id``, ``horizon``, ``units``.
        cover_weeks: ``warehouse_id``, ``sku_id``, ``cover_weeks`` (Float64 >= 0, at most the largest
            horizon in `paths`) and optionally ``path_id``: with it, one (random) cover per path, e.g. a
            sampled lead time plus review period in weeks; without it, the same cover for every path of the
            series. Series absent from `cover_weeks` are dropped.

    Returns:
        ``warehouse_id``, ``sku_id``, ``path_id`` (Int32), ``cover_weeks`` (Float64), ``lead_time_demand``
        (Float64), sorted by series and path.

    Raises:
        ValueError: missing columns, a null/negative cover, or a cover longer than the paths (the message
            names the first offending series).
    """
    _check_columns(paths, [*_SERIES, "path_id", "horizon", "units"], "paths")
    _check_columns(cover_weeks, [*_SERIES, "cover_weeks"], "cover_weeks")
    keys = [*_SERIES, "path_id"] if "path_id" in cover_weeks.columns else list(_SERIES)
    cover = cover_weeks.select(*keys, pl.col("cover_weeks").cast(pl.Float64))
    dup = cover.filter(pl.len().over(keys) > 1)
    if dup.height:
        raise ValueError(f"cover_weeks has more than one row for {dup.row(0, named=True)}")
    max_h = int(paths.get_column("horizon").cast(pl.Int64).max() or 0)  # type: ignore[arg-type]
    bad = cover.filter(
        pl.col("cover_weeks").is_null() | (pl.col("cover_weeks") < 0) | (pl.col("cover_weeks") > max_h)
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"cover_weeks must be in [0, {max_h}] (the longest horizon in the paths); got "
            f"{row['cover_weeks']} for {row['warehouse_id']}/{row['sku_id']}"
        )
    weight = (pl.col("cover_weeks") - (pl.col("horizon") - 1)).clip(0.0, 1.0)
    return (
        paths.join(cover, on=keys, how="inner")
        .group_by([*_SERIES, "path_id"])
        .agg(
            pl.col("cover_weeks").first(),
            (pl.col("units") * weight).sum().cast(pl.Float64).alias("lead_time_demand"),
        )
        .with_columns(pl.col("path_id").cast(pl.Int32))
        .sort([*_SERIES, "path_id"])
    )
