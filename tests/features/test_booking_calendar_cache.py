"""The cached calendar and de minimis look-ups give the values of plain frame joins.

The reference implementations below are frame joins over a calendar built for each frame's own date range
(the way `add_booking_calendar` / `add_de_minimis` were first written), with the per-country rules of
`features.reference.calendar`: the peaks that apply to a shipment's countries, the destination's and the
origin's holidays, the Lunar New Year only where the origin keeps it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features import booking_calendar
from features.booking_calendar import EcommercePeak, add_booking_calendar, calendar_table
from features.customs_rules import add_de_minimis, de_minimis_table
from features.reference.calendar import (
    ECOMMERCE_PEAKS,
    country_holidays,
    daily_calendar,
    observes_lunar_new_year,
    peak_applies,
)


def _holiday_counts(
    frame: pl.DataFrame, column: str, cal: pl.DataFrame, lo: dt.date, hi: dt.date
) -> pl.DataFrame:
    """Per country of `column` and day, the running count of that country's public holidays."""
    countries = frame[column].drop_nulls().unique().sort().to_list()
    hol_days = country_holidays(countries, lo, hi).unique(["country", "date"])
    return (
        pl.DataFrame({"country": countries}, schema={"country": pl.String})
        .join(cal.select("date"), how="cross")
        .join(
            hol_days.select("country", "date", pl.lit(1, dtype=pl.Int32).alias("h")),
            on=["country", "date"],
            how="left",
        )
        .sort("country", "date")
        .select(pl.col("country").alias(column), "date", pl.col("h").fill_null(0).cum_sum().over("country"))
    )


def _reference_calendar(df: pl.DataFrame, *, window_days: str) -> pl.DataFrame:
    at, country, origin_country = "created_at", "destination_country", "origin_country"
    d, b, e = "__cal_date", "__cal_day_before", "__cal_window_end"
    end = pl.col(d) + pl.duration(days=pl.col(window_days).ceil().fill_null(0).cast(pl.Int64))
    frame = df.with_columns(pl.col(at).dt.date().alias(d)).with_columns(
        end.alias(e), (pl.col(d) - pl.duration(days=1)).alias(b)
    )
    lo, hi = frame[b].min(), frame[e].max()
    if lo is None or hi is None:
        lo = hi = dt.date(2000, 1, 1)
    cal = daily_calendar(lo, hi).with_columns(  # type: ignore[arg-type]
        (pl.col("ecommerce_peak") == p).fill_null(False).cum_sum().cast(pl.Int32).alias(f"__cum_{p}")
        for p in ECOMMERCE_PEAKS
    )

    def _at(
        day: str, value: str, alias: str, source: pl.DataFrame, keys: tuple[str, ...] = ()
    ) -> pl.DataFrame:
        return source.select(*keys, pl.col("date").alias(day), pl.col(value).alias(alias))

    frame = frame.join(
        cal.select(
            pl.col("date").alias(d),
            pl.col("ecommerce_peak").alias("__day_peak"),
            pl.col("origin_capacity").alias("__capacity"),
            "days_to_cny",
        ),
        on=d,
        how="left",
        maintain_order="left",
    )
    for p in ECOMMERCE_PEAKS:
        frame = frame.join(_at(b, f"__cum_{p}", f"__p0_{p}", cal), on=b, how="left", maintain_order="left")
        frame = frame.join(_at(e, f"__cum_{p}", f"__p1_{p}", cal), on=e, how="left", maintain_order="left")
    for col, tag in ((country, "d"), (origin_country, "o")):
        hol = _holiday_counts(frame, col, cal, lo, hi)  # type: ignore[arg-type]
        frame = frame.join(
            _at(b, "h", f"__{tag}0", hol, (col,)), on=[col, b], how="left", maintain_order="left"
        )
        frame = frame.join(
            _at(e, "h", f"__{tag}1", hol, (col,)), on=[col, e], how="left", maintain_order="left"
        )
    pair = pl.struct(origin_country, country)

    def _applies(p: str) -> pl.Expr:
        return pair.map_elements(
            lambda r: peak_applies(p, r[origin_country], r[country]), return_dtype=pl.Boolean
        )

    day_peak = pl.lit(None, dtype=pl.String)
    for p in ECOMMERCE_PEAKS:
        day_peak = pl.when((pl.col("__day_peak") == p) & _applies(p)).then(pl.lit(p)).otherwise(day_peak)
    lunar = pl.col(origin_country).map_elements(observes_lunar_new_year, return_dtype=pl.Boolean)
    added = frame.select(
        pl.col(at).dt.weekday().cast(pl.Int8).alias("booking_weekday"),
        pl.col(at).dt.hour().cast(pl.Int8).alias("booking_hour_utc"),
        day_peak.is_not_null().alias("is_ecommerce_peak"),
        pl.when(pl.col(origin_country) == "CN")
        .then(pl.col("__capacity"))
        .otherwise(1.0)
        .alias("origin_capacity"),
        pl.when(lunar.fill_null(False)).then(pl.col("days_to_cny")).alias("days_to_cny"),
        *[
            (pl.col(f"__{tag}1").fill_null(0) - pl.col(f"__{tag}0").fill_null(0)).cast(pl.Int32).alias(name)
            for tag, name in (("d", "dest_holidays_in_window"), ("o", "origin_holidays_in_window"))
        ],
        pl.sum_horizontal(
            (pl.col(f"__p1_{p}") - pl.col(f"__p0_{p}")) * _applies(p).cast(pl.Int32) for p in ECOMMERCE_PEAKS
        )
        .cast(pl.Int32)
        .alias("peak_days_in_window"),
        day_peak.cast(EcommercePeak).alias("ecommerce_peak"),
    )
    if frame.height:
        added = added.with_columns(
            pl.when(frame[d].is_not_null()).then(pl.col("peak_days_in_window")).alias("peak_days_in_window")
        )
    return df.hstack(added)


def _reference_de_minimis(df: pl.DataFrame, table: pl.DataFrame | None = None) -> pl.DataFrame:
    rules = (de_minimis_table() if table is None else table).sort("valid_from")
    out = (
        df.with_row_index("__row")
        .with_columns(pl.col("created_at").dt.date().alias("__d"))
        .sort("__d")
        .join_asof(
            rules.rename({"country": "destination_country"}),
            left_on="__d",
            right_on="valid_from",
            by="destination_country",
            strategy="backward",
            check_sortedness=False,
        )
        .sort("__row")
    )
    t = pl.col("de_minimis_usd")
    return out.with_columns(
        (pl.col("declared_value_usd") > t).alias("is_over_de_minimis"),
        (t - pl.col("declared_value_usd")).alias("de_minimis_headroom_usd"),
    ).select(*df.columns, "de_minimis_usd", "is_over_de_minimis", "de_minimis_headroom_usd")


_COUNTRIES = ["US", "DE", "GB", "CN", "BR", "ZZ", None]
_T0 = dt.datetime(2022, 10, 1, tzinfo=dt.UTC)


def _frame(n: int, seed: int, *, span_days: int = 1300) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    minutes = rng.integers(0, span_days * 1440, n)
    created = [_T0 + dt.timedelta(minutes=int(m)) for m in minutes]
    days = rng.uniform(0, 45, n)
    return pl.DataFrame(
        {
            "created_at": created,
            "origin_country": rng.choice(["CN", "DE", "US"], n).tolist(),
            "destination_country": [_COUNTRIES[i] for i in rng.integers(0, len(_COUNTRIES), n)],
            "days": [None if rng.random() < 0.1 else float(x) for x in days],
            "declared_value_usd": rng.uniform(0, 1200, n),
        },
        schema_overrides={"created_at": pl.Datetime("us", "UTC"), "days": pl.Float64},
    )


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(booking_calendar, "_TABLE", None)


@pytest.mark.usefixtures("fresh_cache")
def test_calendar_equals_reference_on_a_batch_and_row_by_row() -> None:
    df = _frame(300, seed=1)
    expected = _reference_calendar(df, window_days="days")
    assert_frame_equal(add_booking_calendar(df, window_days="days"), expected)
    for i in range(0, 300, 23):  # one row at a time: each row's own window, the cached table
        row = df.slice(i, 1)
        assert_frame_equal(add_booking_calendar(row, window_days="days"), expected.slice(i, 1))
    assert expected["dest_holidays_in_window"].sum() > 0 and expected["peak_days_in_window"].sum() > 0
    assert expected["origin_holidays_in_window"].sum() > 0 and expected["days_to_cny"].null_count() > 0


@pytest.mark.usefixtures("fresh_cache")
def test_cache_grows_to_cover_new_ranges_with_the_same_values() -> None:
    early = _frame(40, seed=2, span_days=30)
    late = early.with_columns(pl.col("created_at").dt.offset_by("3y"))
    add_booking_calendar(early, window_days="days")
    first = calendar_table(dt.date(2022, 10, 1), dt.date(2022, 10, 2))
    assert_frame_equal(
        add_booking_calendar(late, window_days="days"), _reference_calendar(late, window_days="days")
    )
    grown = calendar_table(dt.date(2022, 10, 1), dt.date(2025, 12, 1))
    assert grown.start <= first.start and grown.end > first.end
    assert_frame_equal(
        add_booking_calendar(early, window_days="days"), _reference_calendar(early, window_days="days")
    )


@pytest.mark.usefixtures("fresh_cache")
def test_calendar_nulls_and_empty_frames_match_reference() -> None:
    df = pl.DataFrame(
        {
            "created_at": [
                None,
                dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2025, 12, 30, tzinfo=dt.UTC),
            ],
            "origin_country": ["CN", None, "CN"],
            "destination_country": ["US", "DE", None],
            "days": [3.0, None, 10.0],
        },
        schema_overrides={"created_at": pl.Datetime("us", "UTC")},
    )
    assert_frame_equal(
        add_booking_calendar(df, window_days="days"), _reference_calendar(df, window_days="days")
    )
    empty = df.clear()
    assert_frame_equal(
        add_booking_calendar(empty, window_days="days"), _reference_calendar(empty, window_days="days")
    )


@settings(max_examples=30, deadline=None)
@given(
    minutes=st.integers(0, 1500 * 1440),
    days=st.one_of(st.none(), st.floats(0, 60)),
    dest=st.sampled_from(_COUNTRIES),
    origin=st.sampled_from(["CN", "US", None]),
)
def test_calendar_one_row_hypothesis(
    minutes: int, days: float | None, dest: str | None, origin: str | None
) -> None:
    row = pl.DataFrame(
        {
            "created_at": [_T0 + dt.timedelta(minutes=minutes)],
            "origin_country": [origin],
            "destination_country": [dest],
            "days": [days],
        },
        schema={
            "created_at": pl.Datetime("us", "UTC"),
            "origin_country": pl.String,
            "destination_country": pl.String,
            "days": pl.Float64,
        },
    )
    assert_frame_equal(
        add_booking_calendar(row, window_days="days"), _reference_calendar(row, window_days="days")
    )


def test_de_minimis_equals_reference_batch_rows_and_custom_table() -> None:
    df = _frame(200, seed=3).with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0)
        .then(None)
        .otherwise(pl.col("created_at"))
        .alias("created_at")
    )
    expected = _reference_de_minimis(df)
    assert_frame_equal(add_de_minimis(df), expected)
    for i in range(0, 200, 19):
        assert_frame_equal(add_de_minimis(df.slice(i, 1)), expected.slice(i, 1))
    assert expected["is_over_de_minimis"].sum() > 0 and expected["de_minimis_usd"].null_count() > 0
    custom = pl.DataFrame(
        {
            "country": ["US", "US", "DE"],
            "valid_from": [dt.date(2024, 1, 1), dt.date(2025, 1, 1), dt.date(2023, 6, 1)],
            "de_minimis_usd": [100.0, 5.0, None],
        }
    )
    assert_frame_equal(add_de_minimis(df, table=custom), _reference_de_minimis(df, custom))
