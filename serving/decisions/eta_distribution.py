"""Stage: decisions. The transit-time distribution behind an ETA: quantile and CDF of one distribution.

Pure: Polars expressions over the `<prefix>_q50`, `<prefix>_q80`, `<prefix>_q95` columns (transit days from
booking to delivery). Reads and writes nothing. `serving.decisions.promise` takes quantiles of it (the
promise for a target on-time rate), `serving.decisions.routing` takes its CDF (P(late) of an option); both
read the one distribution written here, and `quantile_expr` and `cdf_expr` are inverses of each other
(pinned by a property test).

The distribution, from the three known quantiles:

* The quantiles are first made non-crossing (a running maximum over q50 <= q80 <= q95), so everything is
  monotone whatever the model produced.
* Piecewise linear through (q50, 0.5), (q80, 0.8), (q95, 0.95); below q50 it continues with the q50 -> q80
  slope down to probability 0.
* Past q95 (the tail rule) the survival function is exponential with the decay of the q80 -> q95 step:
  S(x) = 0.05 * exp(-ln(4) * (x - q95) / (q95 - q80)), so `q(p) = q95 + (q95 - q80) * ln(0.05 / (1 - p)) /
  ln(4)`; for example q99 = q95 + 1.16 * (q95 - q80). Transit times are right-skewed with a roughly
  exponential tail (customs holds, failed attempts), and an exponential tail is heavier than a normal one,
  so a quote errs on the late side.

Ties (q50 == q80 or q80 == q95) put a point mass on the tied value: the CDF jumps there and the quantile is
flat; the inverse property holds wherever the quantiles differ.
"""

from __future__ import annotations

import math
from typing import Final

import polars as pl

__all__ = ["QUANTILE_LEVELS", "cdf_expr", "days_to_end_of_date_expr", "p_late_expr", "quantile_expr"]

QUANTILE_LEVELS: Final[tuple[float, ...]] = (0.5, 0.8, 0.95)
_LN4: Final = math.log(4.0)
_EPS: Final = 1e-9
_DAY_US: Final = 86_400e6


def _knots(prefix: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """q50, q80, q95 made non-crossing (running maximum), as Float64 expressions."""
    q50 = pl.col(f"{prefix}_q50").cast(pl.Float64)
    q80 = pl.max_horizontal(q50, pl.col(f"{prefix}_q80").cast(pl.Float64))
    q95 = pl.max_horizontal(q80, pl.col(f"{prefix}_q95").cast(pl.Float64))
    return q50, q80, q95


def quantile_expr(p: float | pl.Expr, prefix: str = "eta_days") -> pl.Expr:
    """Transit days by which a share `p` of parcels is delivered (the inverse of `cdf_expr`).

    Args:
        p: probability in (0, 1): a number, or an expression (one probability per row).
        prefix: prefix of the quantile columns.

    Returns:
        A Float64 expression (null where a quantile is null). Below 0.5 the value may be negative: the
        linear continuation of the body, used only to invert the CDF.
    """
    q50, q80, q95 = _knots(prefix)
    prob = p.cast(pl.Float64) if isinstance(p, pl.Expr) else pl.lit(float(p), pl.Float64)
    body = q50 + ((prob - 0.5) / 0.3) * (q80 - q50)
    upper = q80 + ((prob - 0.8) / 0.15) * (q95 - q80)
    tail = q95 + (q95 - q80) * ((0.05 / (1.0 - prob)).log() / _LN4)
    return pl.when(prob <= 0.8).then(body).when(prob <= 0.95).then(upper).otherwise(tail)


def cdf_expr(days: pl.Expr, prefix: str = "eta_days") -> pl.Expr:
    """P(transit time <= `days`) (the inverse of `quantile_expr`).

    Args:
        days: transit days from booking, one value per row.
        prefix: prefix of the quantile columns.

    Returns:
        A Float64 expression in [0, 1].
    """
    q50, q80, q95 = _knots(prefix)
    below = 0.5 + 0.3 * (days - q50) / pl.max_horizontal(q80 - q50, pl.lit(_EPS))
    upper = 0.8 + 0.15 * (days - q80) / pl.max_horizontal(q95 - q80, pl.lit(_EPS))
    tail_s = 0.05 * (-_LN4 * (days - q95) / pl.max_horizontal(q95 - q80, pl.lit(_EPS))).exp()
    return (
        pl.when(days <= q50)
        .then(below.clip(0.0, 0.5))
        .when(days <= q80)
        .then(below)
        .when(days <= q95)
        .then(upper)
        .otherwise(1.0 - tail_s)
    )


def p_late_expr(days: pl.Expr, prefix: str = "eta_days") -> pl.Expr:
    """P(transit time > `days`) = 1 - `cdf_expr`, clipped to [0, 1]."""
    return (1.0 - cdf_expr(days, prefix)).clip(0.0, 1.0)


def days_to_end_of_date_expr(date_col: str, created_col: str = "created_at") -> pl.Expr:
    """Days from `created_col` (UTC Datetime) to the end of the calendar day `date_col` (UTC).

    Delivery any time on a promised date counts as on time, so this is the transit time a promise allows.
    """
    end_of_day = pl.col(date_col).cast(pl.Datetime("us", "UTC")) + pl.duration(days=1)
    return (end_of_day - pl.col(created_col)).dt.total_microseconds() / _DAY_US
