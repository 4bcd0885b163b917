"""Rolling-origin folds: time-ordered, no train/test overlap, right-censoring, stacked predictions."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.backtest import Fold, backtest, rolling_origin_folds, split_by_time

UTC = dt.UTC
DAY = dt.timedelta(days=1)


def _times(n_days: int, per_day: int = 4) -> pl.Series:
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    values = [start + dt.timedelta(hours=24 / per_day * i) for i in range(n_days * per_day)]
    return pl.Series("created_at", values, dtype=pl.Datetime("us", "UTC"))


def test_folds_are_time_ordered_and_cover_the_last_row() -> None:
    times = _times(100)
    folds = rolling_origin_folds(times, n_folds=3, horizon=7 * DAY)
    assert [f.index for f in folds] == [0, 1, 2]
    assert [f.cutoff for f in folds] == sorted(f.cutoff for f in folds)
    # default end: midnight after the last time, so cutoffs are day-aligned
    assert folds[-1].test_end == dt.datetime(2025, 4, 11, tzinfo=UTC)
    assert all(f.cutoff.hour == 0 and f.cutoff.minute == 0 for f in folds)  # type: ignore[union-attr]
    assert folds[1].cutoff - folds[0].cutoff == 7 * DAY
    frame = times.to_frame()
    last_test = frame.filter(folds[-1].test_filter("created_at"))
    assert last_test["created_at"].max() == times.max()


def test_fold_split_never_overlaps_and_respects_gap() -> None:
    frame = _times(60).to_frame().with_row_index("id")
    folds = rolling_origin_folds(frame["created_at"], n_folds=4, horizon=5 * DAY, step=3 * DAY, gap=2 * DAY)
    for fold in folds:
        train, test = fold.split(frame, "created_at")
        assert train.height and test.height
        assert set(train["id"]).isdisjoint(set(test["id"]))
        assert train["created_at"].max() < fold.train_end == fold.cutoff - 2 * DAY
        assert test["created_at"].min() >= fold.cutoff
        assert test["created_at"].max() < fold.cutoff + 5 * DAY


def test_min_train_and_invalid_sizes_raise() -> None:
    times = _times(30)
    with pytest.raises(ValueError, match="training history"):
        rolling_origin_folds(times, n_folds=3, horizon=7 * DAY, min_train=20 * DAY)
    with pytest.raises(ValueError, match="training history"):
        rolling_origin_folds(times, n_folds=10, horizon=7 * DAY)
    with pytest.raises(ValueError):
        rolling_origin_folds(times, n_folds=0, horizon=7 * DAY)
    with pytest.raises(ValueError):
        rolling_origin_folds(times, n_folds=2, horizon=dt.timedelta(0))
    with pytest.raises(TypeError):
        rolling_origin_folds(pl.Series([1, 2, 3]), n_folds=1, horizon=DAY)


def test_folds_accept_dates_and_one_column_frames() -> None:
    dates = pl.date_range(dt.date(2025, 1, 1), dt.date(2025, 3, 1), eager=True).to_frame("date")
    folds = rolling_origin_folds(dates, n_folds=2, horizon=7 * DAY)
    assert folds[-1].test_end == dt.date(2025, 3, 2)
    assert folds[0].cutoff == dt.date(2025, 2, 16)
    train, test = folds[0].split(dates, "date")
    assert train["date"].max() == dt.date(2025, 2, 15)
    assert test.height == 7


def test_right_censoring_keeps_only_targets_observed_before_train_end() -> None:
    d = lambda day: dt.datetime(2025, 1, day, tzinfo=UTC)  # noqa: E731
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "created_at": [d(1), d(2), d(3), d(4), d(12)],
            "delivered_at": [d(5), d(11), None, d(9), d(13)],
        }
    )
    fold = Fold(index=0, cutoff=d(10), train_end=d(10), test_end=d(17))
    assert fold.split(frame, "created_at")[0]["id"].to_list() == [1, 2, 3, 4]
    censored = fold.split(frame, "created_at", observed_col="delivered_at")[0]
    assert censored["id"].to_list() == [1, 4]  # 2 delivered after the cutoff, 3 still open
    mature = fold.split(frame, "created_at", observed_col="delivered_at", maturity=7 * DAY)[0]
    assert mature["id"].to_list() == [1]  # created before Jan 3


def test_backtest_stacks_predictions_with_cutoff_column() -> None:
    frame = _times(40).to_frame().with_columns(y=pl.int_range(pl.len()).cast(pl.Float64))
    folds = rolling_origin_folds(frame["created_at"], n_folds=3, horizon=5 * DAY)
    seen: list[tuple[dt.datetime, dt.datetime]] = []

    def fit_predict(train: pl.DataFrame, test: pl.DataFrame) -> pl.DataFrame:
        seen.append((train["created_at"].max(), test["created_at"].min()))
        return test.with_columns(mean=pl.lit(train["y"].mean()))

    out = backtest(frame, fit_predict, folds, "created_at")
    assert out.columns == ["cutoff", "created_at", "y", "mean"]
    assert out["cutoff"].unique().sort().to_list() == [f.cutoff for f in folds]
    assert out.height == 3 * 5 * 4
    assert all(train_max < test_min for train_max, test_min in seen)


def test_split_by_time_is_later_part() -> None:
    frame = _times(10).to_frame().with_row_index("id")
    early, late = split_by_time(frame, "created_at", 0.25)
    assert early.height + late.height == frame.height
    assert late.height == 10
    assert early["created_at"].max() < late["created_at"].min()
    with pytest.raises(ValueError):
        split_by_time(frame, "created_at", 1.0)


@settings(max_examples=40, deadline=None)
@given(
    n_days=st.integers(20, 200),
    n_folds=st.integers(1, 4),
    horizon=st.integers(1, 10),
    step=st.integers(1, 10),
    gap=st.integers(0, 3),
)
def test_folds_property_train_before_test(
    n_days: int, n_folds: int, horizon: int, step: int, gap: int
) -> None:
    times = _times(n_days, per_day=1)
    try:
        folds = rolling_origin_folds(times, n_folds, horizon * DAY, step * DAY, gap=gap * DAY)
    except ValueError:
        assert (n_folds - 1) * step + horizon + gap >= n_days
        return
    frame = times.to_frame()
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.cutoff < b.cutoff
    for fold in folds:
        train, test = fold.split(frame, "created_at")
        if train.height and test.height:
            assert train["created_at"].max() < test["created_at"].min()
