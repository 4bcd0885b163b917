"""ETA distribution: quantile and CDF are inverses, monotone, and promise dates agree with P(late)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.decisions.eta_distribution import (
    cdf_expr,
    days_to_end_of_date_expr,
    p_late_expr,
    quantile_expr,
)
from serving.decisions.promise import promise_dates

# q50 and the two gaps above it; gaps of at least 0.01 day (ties are a point mass, tested separately)
quantiles = st.tuples(st.floats(0.0, 40.0), st.floats(0.01, 20.0), st.floats(0.01, 30.0))


def _frame(q50: float, d80: float, d95: float, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"eta_days_q50": [q50] * n, "eta_days_q80": [q50 + d80] * n, "eta_days_q95": [q50 + d80 + d95] * n}
    )


def test_known_points_of_quantile_and_cdf() -> None:
    df = _frame(4.0, 2.0, 4.0, 4).with_columns(
        pl.Series("p", [0.5, 0.8, 0.95, 0.9875]), pl.Series("d", [4.0, 6.0, 10.0, 14.0])
    )
    out = df.select(quantile_expr(pl.col("p")).alias("q"), p_late_expr(pl.col("d")).alias("late"))
    assert out["q"].to_list() == pytest.approx([4.0, 6.0, 10.0, 14.0])
    assert out["late"].to_list() == pytest.approx([0.5, 0.2, 0.05, 0.0125])


@settings(max_examples=80, deadline=None)
@given(q=quantiles, probs=st.lists(st.floats(0.01, 0.999), min_size=1, max_size=8))
def test_cdf_of_quantile_is_the_probability(q: tuple[float, float, float], probs: list[float]) -> None:
    df = _frame(*q, len(probs)).with_columns(pl.Series("p", probs))
    back = df.select(cdf_expr(quantile_expr(pl.col("p"))).alias("c"))["c"].to_list()
    assert back == pytest.approx(probs, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(q=quantiles, days=st.lists(st.floats(-5.0, 200.0), min_size=1, max_size=8))
def test_quantile_of_cdf_is_the_days_where_the_cdf_is_strict(
    q: tuple[float, float, float], days: list[float]
) -> None:
    df = _frame(*q, len(days)).with_columns(pl.Series("d", days))
    out = df.with_columns(cdf_expr(pl.col("d")).alias("c")).filter(
        (pl.col("c") > 1e-6) & (pl.col("c") < 1 - 1e-6)  # 0 and 1 are reached on whole half-lines
    )
    back = out.select(quantile_expr(pl.col("c")).alias("t"))["t"].to_list()
    assert back == pytest.approx(out["d"].to_list(), abs=1e-6, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    q50=st.floats(0.0, 40.0),
    d80=st.floats(0.0, 20.0),
    d95=st.floats(0.0, 30.0),
    days=st.lists(st.floats(-5.0, 200.0), min_size=2, max_size=8),
    probs=st.lists(st.floats(0.01, 0.999), min_size=2, max_size=8),
)
def test_cdf_and_quantile_are_monotone_even_with_ties(
    q50: float, d80: float, d95: float, days: list[float], probs: list[float]
) -> None:
    days, probs = sorted(days), sorted(probs)
    c = _frame(q50, d80, d95, len(days)).with_columns(pl.Series("d", days)).select(cdf_expr(pl.col("d")))
    t = _frame(q50, d80, d95, len(probs)).with_columns(pl.Series("p", probs))
    cs, ts = c.to_series().to_list(), t.select(quantile_expr(pl.col("p"))).to_series().to_list()
    assert all(0.0 <= x <= 1.0 for x in cs)
    assert all(a <= b + 1e-12 for a, b in zip(cs, cs[1:], strict=False))
    assert all(a <= b + 1e-9 for a, b in zip(ts, ts[1:], strict=False))


@settings(max_examples=60, deadline=None)
@given(
    q=quantiles,
    target=st.floats(0.5, 0.99),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_promise_date_at_target_has_p_late_at_most_one_minus_target(
    q: tuple[float, float, float], target: float, hour: int, minute: int
) -> None:
    created = dt.datetime(2025, 3, 1, hour, minute, tzinfo=dt.UTC)
    df = _frame(*q, 1).with_columns(pl.lit(created).alias("created_at"))
    promised = promise_dates(df, target=target)
    late = promised.select(p_late_expr(days_to_end_of_date_expr("promise_date")))[0, 0]
    assert late <= 1.0 - target + 1e-9
    # and the day before the promise date would not have met the target (the promise is the earliest date)
    earlier = promised.with_columns(pl.col("promise_date") - dt.timedelta(days=1))
    late_before = earlier.select(p_late_expr(days_to_end_of_date_expr("promise_date")))[0, 0]
    assert late_before >= 1.0 - target - 1e-9


def test_days_to_end_of_date_counts_the_whole_promised_day() -> None:
    df = pl.DataFrame(
        {"created_at": [dt.datetime(2025, 3, 1, 18, tzinfo=dt.UTC)], "promised_date": [dt.date(2025, 3, 3)]}
    )
    assert df.select(days_to_end_of_date_expr("promised_date"))[0, 0] == pytest.approx(2.25)
