"""Stage: models (evaluation). Rolling-origin, time-ordered folds and a runner that stacks predictions.

Reads and writes nothing: frames in, fold definitions and a stacked predictions frame out. Folds are never
random: each fold trains on rows strictly before its training end and tests on the window after its
cutoff, so a backtest is a set of `Fold`s and the stacked predictions carry a ``cutoff`` column that the
metrics in `models.metrics` group by.

Timeline of one fold::

    ... train rows: time < train_end ... | gap | test rows: cutoff <= time < test_end
                                     train_end = cutoff - gap          test_end = cutoff + horizon

Right-censoring: a shipment's target (transit days, lateness) is only known once it is delivered. Pass
``observed_col`` (e.g. ``delivered_at``) and a training row is kept only if its target was observed
strictly before ``train_end``; open shipments (null) are dropped. Rows created just before ``train_end``
then survive only when they were fast, which biases targets down; ``maturity`` (e.g. the P99 transit time)
additionally drops training rows created within that span of ``train_end``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

__all__ = [
    "FitPredict",
    "Fold",
    "TimePoint",
    "backtest",
    "backtest_summary",
    "rolling_origin_folds",
    "split_by_time",
]

logger = logging.getLogger(__name__)

TimePoint = dt.datetime | dt.date
FitPredict = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]
"""``(train, test) -> test rows with prediction columns added`` (keys and target kept for scoring)."""


@dataclass(frozen=True)
class Fold:
    """One rolling-origin fold.

    Attributes:
        index: 0 for the earliest fold.
        cutoff: start of the test window (the moment predictions are made).
        train_end: exclusive end of training data, ``cutoff - gap``.
        test_end: exclusive end of the test window, ``cutoff + horizon``.
    """

    index: int
    cutoff: TimePoint
    train_end: TimePoint
    test_end: TimePoint

    def train_filter(
        self, time_col: str, observed_col: str | None = None, maturity: dt.timedelta | None = None
    ) -> pl.Expr:
        """Boolean expression selecting this fold's training rows.

        Args:
            time_col: the row's prediction time (e.g. ``created_at``).
            observed_col: when the target became known (e.g. ``delivered_at``); rows with a null or a value
                at or after ``train_end`` are excluded (right-censoring).
            maturity: also exclude rows with ``time >= train_end - maturity``.
        """
        expr = pl.col(time_col) < pl.lit(self.train_end)
        if maturity is not None:
            expr = expr & (pl.col(time_col) < pl.lit(self.train_end - maturity))
        if observed_col is not None:
            expr = expr & pl.col(observed_col).is_not_null() & (pl.col(observed_col) < pl.lit(self.train_end))
        return expr

    def test_filter(self, time_col: str) -> pl.Expr:
        """Boolean expression selecting this fold's test rows: ``cutoff <= time < test_end``."""
        return (pl.col(time_col) >= pl.lit(self.cutoff)) & (pl.col(time_col) < pl.lit(self.test_end))

    def split(
        self,
        frame: pl.DataFrame,
        time_col: str,
        observed_col: str | None = None,
        maturity: dt.timedelta | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``(train, test)`` rows of `frame` for this fold (see `train_filter`, `test_filter`)."""
        train = frame.filter(self.train_filter(time_col, observed_col, maturity))
        return train, frame.filter(self.test_filter(time_col))


def _as_series(times: pl.Series | pl.DataFrame) -> pl.Series:
    if isinstance(times, pl.DataFrame):
        if times.width != 1:
            raise ValueError("pass a Series or a one-column frame of times")
        times = times.to_series()
    if not isinstance(times.dtype, pl.Datetime | pl.Date):
        raise TypeError(f"times must be Datetime or Date, got {times.dtype}")
    return times.drop_nulls()


def _default_end(last: TimePoint) -> TimePoint:
    """Midnight after the last time, so that the last window includes it and cutoffs are day-aligned."""
    if isinstance(last, dt.datetime):
        return dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(), tzinfo=last.tzinfo)
    return last + dt.timedelta(days=1)


def rolling_origin_folds(
    times: pl.Series | pl.DataFrame,
    n_folds: int,
    horizon: dt.timedelta,
    step: dt.timedelta | None = None,
    min_train: dt.timedelta | None = None,
    gap: dt.timedelta = dt.timedelta(0),
    *,
    end: TimePoint | None = None,
) -> list[Fold]:
    """Time-ordered rolling-origin folds whose last test window ends at `end`.

    Fold ``i`` (0 = earliest) has ``cutoff = end - horizon - (n_folds - 1 - i) * step``. With
    ``step < horizon`` test windows of consecutive folds overlap; train and test of one fold never do.

    Args:
        times: the rows' prediction times (Datetime or Date), as a Series or a one-column frame.
        n_folds: number of folds.
        horizon: length of each test window.
        step: distance between consecutive cutoffs (default: `horizon`, adjacent windows).
        min_train: minimum span from the first time to the earliest fold's ``train_end``.
        gap: embargo between training end and test start (deployment latency).
        end: exclusive end of the last test window (default: midnight after the last time).

    Returns:
        Folds in increasing cutoff order.

    Raises:
        ValueError: on non-positive sizes or when the earliest fold has too little history.
    """
    if n_folds < 1:
        raise ValueError("n_folds must be >= 1")
    step = horizon if step is None else step
    if horizon <= dt.timedelta(0) or step <= dt.timedelta(0) or gap < dt.timedelta(0):
        raise ValueError("horizon and step must be positive and gap non-negative")
    series = _as_series(times)
    if series.is_empty():
        raise ValueError("no times")
    first, last = series.min(), series.max()
    if not (isinstance(first, dt.date) and isinstance(last, dt.date)):
        raise TypeError("times must be Datetime or Date")
    end = _default_end(last) if end is None else end
    folds = []
    for i in range(n_folds):
        cutoff = end - horizon - (n_folds - 1 - i) * step
        folds.append(Fold(index=i, cutoff=cutoff, train_end=cutoff - gap, test_end=cutoff + horizon))
    history = folds[0].train_end - first  # type: ignore[operator]
    if history <= dt.timedelta(0) or (min_train is not None and history < min_train):
        raise ValueError(
            f"earliest fold has {history} of training history (min_train={min_train}); "
            "use fewer folds, a smaller step or horizon"
        )
    return folds


def backtest(
    frame: pl.DataFrame,
    fit_predict: FitPredict,
    folds: Sequence[Fold],
    time_col: str,
    *,
    observed_col: str | None = None,
    maturity: dt.timedelta | None = None,
    cutoff_col: str = "cutoff",
) -> pl.DataFrame:
    """Run ``fit_predict(train, test)`` on every fold and stack the results with a `cutoff_col` first.

    Args:
        frame: all rows (features, target, time and observation columns).
        fit_predict: trains on ``train`` and returns ``test`` with prediction columns added.
        folds: from `rolling_origin_folds`.
        time_col: prediction-time column.
        observed_col: right-censoring column (see `Fold.train_filter`).
        maturity: see `Fold.train_filter`.
        cutoff_col: name of the fold column in the output.

    Returns:
        The stacked predictions; folds with no training or no test rows are skipped (logged).
    """
    parts = []
    for fold in folds:
        train, test = fold.split(frame, time_col, observed_col, maturity)
        if train.height == 0 or test.height == 0:
            logger.warning(
                "fold %d (cutoff %s) skipped: %d train / %d test rows",
                fold.index,
                fold.cutoff,
                train.height,
                test.height,
            )
            continue
        predictions = fit_predict(train, test)
        if cutoff_col in predictions.columns:
            raise ValueError(f"fit_predict output already has a {cutoff_col!r} column")
        parts.append(predictions.select(pl.lit(fold.cutoff).alias(cutoff_col), pl.all()))
        logger.info(
            "fold %d (cutoff %s): %d train, %d test rows", fold.index, fold.cutoff, train.height, test.height
        )
    if not parts:
        raise ValueError("no fold had both training and test rows")
    return pl.concat(parts, how="vertical_relaxed")


def split_by_time(
    frame: pl.DataFrame, time_col: str, fraction: float = 0.2
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into an earlier part and a later part holding about `fraction` of the rows.

    The later part (calibration or early-stopping fold) starts at a time threshold, so no timestamp is in
    both parts. Use it inside a fold's training rows: fit on the earlier part, calibrate on the later.

    Args:
        frame: rows to split.
        time_col: time column.
        fraction: share of rows in the later part, in (0, 1).

    Returns:
        ``(earlier, later)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    times = frame.get_column(time_col).drop_nulls().sort()
    if times.is_empty():
        raise ValueError("no times to split on")
    threshold = times[min(int(times.len() * (1.0 - fraction)), times.len() - 1)]
    later = pl.col(time_col) >= pl.lit(threshold)
    return frame.filter(~later), frame.filter(later)


def backtest_summary(metrics: pl.DataFrame) -> pl.DataFrame:
    """Overall metrics averaged over folds: one row per (model, metric), from a per-fold, per-slice frame
    (`slice == "overall"` rows; columns `model`, `metric`, `value`)."""
    return (
        metrics.filter(pl.col("slice") == "overall")
        .group_by("model", "metric")
        .agg(pl.col("value").mean())
        .sort("metric", "model")
    )
