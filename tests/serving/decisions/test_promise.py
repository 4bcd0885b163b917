"""Promise dates from ETA quantiles: interpolation, tail rule, monotonicity, errors."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from serving.decisions.promise import promise_dates


def _frame(q50: float, q80: float, q95: float, created: dt.datetime | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "created_at": [created or dt.datetime(2025, 3, 1, 8, tzinfo=dt.UTC)],
            "eta_days_q50": [q50],
            "eta_days_q80": [q80],
            "eta_days_q95": [q95],
        }
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(0.5, 6.0, id="median"),
        pytest.param(0.8, 8.0, id="q80"),
        pytest.param(0.95, 12.0, id="q95"),
        pytest.param(0.65, 7.0, id="half-way-q50-q80"),
        pytest.param(0.9, 8.0 + 4.0 * (0.1 / 0.15), id="between-q80-q95"),
        pytest.param(0.99, 12.0 + 4.0 * math.log(5.0) / math.log(4.0), id="exponential-tail"),
    ],
)
def test_promise_days_hand_computed(target: float, expected: float) -> None:
    out = promise_dates(_frame(6.0, 8.0, 12.0), target=target)
    assert out["promise_days"][0] == pytest.approx(expected)


def test_promise_date_is_the_day_the_quantile_falls_on() -> None:
    created = dt.datetime(2025, 3, 1, 20, tzinfo=dt.UTC)  # 20:00 + 0.25 day = next day 02:00
    out = promise_dates(_frame(2.25, 3.0, 4.0, created), target=0.5)
    expected = _frame(2.25, 3.0, 4.0, created).with_columns(
        pl.lit(2.25).alias("promise_days"), pl.lit(dt.date(2025, 3, 4)).alias("promise_date")
    )
    assert_frame_equal(out, expected)


def test_promise_crossing_quantiles_are_repaired() -> None:
    out = promise_dates(_frame(10.0, 8.0, 9.0), target=0.9)
    assert out["promise_days"][0] == pytest.approx(10.0)


def test_promise_null_quantile_gives_null() -> None:
    df = _frame(1.0, 2.0, 3.0).with_columns(pl.lit(None, pl.Float64).alias("eta_days_q80"))
    out = promise_dates(df)
    assert out["promise_days"][0] is None and out["promise_date"][0] is None


def test_promise_date_column_created_as_date() -> None:
    df = _frame(3.0, 4.0, 5.0).with_columns(pl.lit(dt.date(2025, 1, 1)).alias("created_at"))
    assert promise_dates(df, 0.8)["promise_date"][0] == dt.date(2025, 1, 5)


@pytest.mark.parametrize("target", [0.3, 0.999, 1.0, float("nan")])
def test_promise_target_out_of_range_is_an_error(target: float) -> None:
    with pytest.raises(ValueError, match="promise target"):
        promise_dates(_frame(1.0, 2.0, 3.0), target=target)


def test_promise_missing_and_negative_columns_are_named() -> None:
    with pytest.raises(ValueError, match="eta_days_q95"):
        promise_dates(_frame(1.0, 2.0, 3.0).drop("eta_days_q95"))
    with pytest.raises(ValueError, match="row 0: eta_days_q50"):
        promise_dates(_frame(-1.0, 2.0, 3.0))


q = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(q50=q, d80=q, d95=q, t1=st.floats(0.5, 0.99), t2=st.floats(0.5, 0.99))
def test_promise_monotone_in_target_and_never_below_median(
    q50: float, d80: float, d95: float, t1: float, t2: float
) -> None:
    df = _frame(q50, q50 + d80, q50 + d80 + d95)
    lo, hi = sorted((t1, t2))
    a = promise_dates(df, lo)["promise_days"][0]
    b = promise_dates(df, hi)["promise_days"][0]
    assert q50 - 1e-9 <= a <= b + 1e-9
