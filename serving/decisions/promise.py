"""Stage: decisions. Promise dates: the delivery date to quote at checkout for a target on-time rate.

Pure: a frame with the ETA quantile columns (`eta_days_q50`, `eta_days_q80`, `eta_days_q95`, days from
`created_at` to delivery) in, the same frame with `promise_days` and `promise_date` out. Reads and writes
nothing.

The quantile for the target `p` is that of the ETA distribution of `serving.decisions.eta_distribution`
(non-crossing quantiles, piecewise linear between q50, q80 and q95, exponential tail past q95; routing
takes P(late) from the same distribution). Targets are supported in [0.5, 0.99]: below the median a
"promise" is more often broken than kept, and past 0.99 the extrapolation rests on too little. Anything else
is a clear `ValueError`.

The promise date is the calendar date (UTC) on which `created_at + promise_days` falls: delivery any time
on that date counts as on time, as in the contract's `promised_date`.
"""

from __future__ import annotations

import math
from typing import Final

import polars as pl

from serving.decisions.eta_distribution import QUANTILE_LEVELS, quantile_expr

__all__ = ["MAX_TARGET", "MIN_TARGET", "QUANTILE_LEVELS", "promise_dates", "promise_days_expr"]

MIN_TARGET: Final = 0.5
MAX_TARGET: Final = 0.99


def _check_target(target: float) -> None:
    if not isinstance(target, int | float) or math.isnan(float(target)):
        raise ValueError(f"promise target must be a number in [{MIN_TARGET}, {MAX_TARGET}], got {target!r}")
    if not MIN_TARGET <= float(target) <= MAX_TARGET:
        raise ValueError(
            f"promise target {target} is outside the supported range [{MIN_TARGET}, {MAX_TARGET}]: "
            "below the median a promise is broken more often than kept, and past 0.99 the ETA tail is "
            "extrapolated too far"
        )


def promise_days_expr(target: float, prefix: str = "eta_days") -> pl.Expr:
    """Expression for the transit-time quantile at `target` from the `<prefix>_q50/q80/q95` columns.

    Args:
        target: on-time rate to promise, in [0.5, 0.99].
        prefix: prefix of the quantile columns.

    Returns:
        A Float64 expression named `promise_days` (null where any quantile is null).

    Raises:
        ValueError: if the target is outside [0.5, 0.99].
    """
    _check_target(target)
    days = quantile_expr(float(target), prefix)
    any_null = pl.any_horizontal(pl.col(f"{prefix}_q{int(q * 100)}").is_null() for q in QUANTILE_LEVELS)
    return pl.when(any_null).then(None).otherwise(days).cast(pl.Float64).alias("promise_days")


def promise_dates(
    frame: pl.DataFrame,
    target: float = 0.9,
    created_col: str = "created_at",
    prefix: str = "eta_days",
) -> pl.DataFrame:
    """Add `promise_days` (Float64) and `promise_date` (Date) for a target on-time rate.

    Args:
        frame: rows with `created_col` (UTC Datetime or Date) and `<prefix>_q50`, `<prefix>_q80`,
            `<prefix>_q95` (transit days from `created_col` to delivery).
        target: the share of parcels that should arrive by the promise, in [0.5, 0.99].
        created_col: the booking moment the transit time is counted from.
        prefix: prefix of the ETA quantile columns.

    Returns:
        The input frame with `promise_days` and `promise_date` appended (replaced if present).

    Raises:
        ValueError: on a target outside [0.5, 0.99], a missing column, or a negative quantile (the row
            index and column are named).

    Example:
        >>> import datetime as dt
        >>> df = pl.DataFrame({"created_at": [dt.datetime(2025, 3, 1, 8)], "eta_days_q50": [6.0],
        ...                    "eta_days_q80": [8.0], "eta_days_q95": [12.0]})
        >>> promise_dates(df, target=0.9)["promise_days"].to_list()
        [10.666666666666666]
    """
    _check_target(target)
    needed = [created_col, *(f"{prefix}_q{int(q * 100)}" for q in QUANTILE_LEVELS)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"promise_dates needs columns {missing} (have {frame.columns})")
    for col in needed[1:]:
        bad = frame.with_row_index("_row").filter(pl.col(col) < 0)
        if bad.height:
            row = bad.row(0, named=True)
            raise ValueError(f"row {row['_row']}: {col} = {row[col]} is negative; transit days must be >= 0")
    created = pl.col(created_col)
    if frame.schema[created_col] == pl.Date:
        created = created.cast(pl.Datetime("us"))
    out = frame.drop("promise_days", "promise_date", strict=False).with_columns(
        promise_days_expr(target, prefix)
    )
    micros = (pl.col("promise_days") * 86_400_000_000).round(0).cast(pl.Int64)
    return out.with_columns((created + pl.duration(microseconds=micros)).dt.date().alias("promise_date"))
