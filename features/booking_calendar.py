"""Stage: features. Calendar features of a booking: the booking day and the days of its expected transit.

Reads frames (no I/O); calendars come from `features.calendar` (public holidays from the `holidays`
package, e-commerce peaks and Chinese origin capacity derived from it). Known in advance, so they leak
nothing. Used by `features.shipment_features.build_booking_features`.

Example:
    >>> import datetime as dt
    >>> df = pl.DataFrame({"created_at": [dt.datetime(2025, 12, 20, 9, tzinfo=dt.UTC)],
    ...                    "origin_country": ["CN"], "destination_country": ["US"], "days": [6.0]})
    >>> add_booking_calendar(df, window_days="days").select(WINDOW_FEATURES).rows()
    [(1, 3)]
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from features.calendar import ECOMMERCE_PEAKS, country_holidays, daily_calendar

__all__ = ["CALENDAR_FEATURES", "WINDOW_FEATURES", "EcommercePeak", "add_booking_calendar"]

EcommercePeak = pl.Enum(list(ECOMMERCE_PEAKS))
CALENDAR_FEATURES: tuple[str, ...] = (
    "booking_weekday",
    "booking_hour_utc",
    "is_ecommerce_peak",
    "origin_capacity",
    "days_to_cny",
)
WINDOW_FEATURES: tuple[str, ...] = ("dest_holidays_in_window", "peak_days_in_window")

_DATE, _BEFORE, _END = "__cal_date", "__cal_day_before", "__cal_window_end"


def _holiday_counts(countries: list[str], days: pl.DataFrame, lo: dt.date, hi: dt.date) -> pl.DataFrame:
    """Running count of public holidays per country over every day of `days` (columns country, date)."""
    hol = country_holidays(countries, lo, hi).unique(["country", "date"])
    return (
        pl.DataFrame({"country": countries}, schema={"country": pl.String})
        .join(days, how="cross")
        .join(
            hol.select("country", "date", pl.lit(1, dtype=pl.Int32).alias("h")),
            on=["country", "date"],
            how="left",
        )
        .sort("country", "date")
        .select("country", "date", pl.col("h").fill_null(0).cum_sum().over("country").alias("n"))
    )


def add_booking_calendar(
    df: pl.DataFrame,
    *,
    window_days: str,
    at: str = "created_at",
    country: str = "destination_country",
    origin_country: str = "origin_country",
) -> pl.DataFrame:
    """Add the calendar of the booking day and the holidays and peak days of the expected transit.

    Adds `booking_weekday` (ISO, 1 = Monday, UTC), `booking_hour_utc`, `ecommerce_peak` (Enum of
    `ECOMMERCE_PEAKS`, null outside a peak) and `is_ecommerce_peak`, `origin_capacity` (share of Chinese
    first-mile capacity that day; 1.0 when the parcel does not leave China), `days_to_cny`, and over the
    window `[booking date, booking date + ceil(window_days)]` (both ends included): `dest_holidays_in_window`
    (public holidays of the destination) and `peak_days_in_window`. Row order is kept.

    Args:
        df: frame with `at` (timestamp), `country`, `origin_country` and `window_days` (float days; null
            counts as 0).
        window_days: column with the expected transit days.
        at: booking moment.
        country: destination country (ISO-2) whose holidays count.
        origin_country: origin country; the Chinese capacity applies only to `CN`.
    """
    end = pl.col(_DATE) + pl.duration(days=pl.col(window_days).ceil().fill_null(0).cast(pl.Int64))
    frame = df.with_columns(pl.col(at).dt.date().alias(_DATE)).with_columns(
        end.alias(_END), (pl.col(_DATE) - pl.duration(days=1)).alias(_BEFORE)
    )
    lo: dt.date | None = frame[_BEFORE].min()  # type: ignore[assignment]
    hi: dt.date | None = frame[_END].max()  # type: ignore[assignment]
    if lo is None or hi is None:  # no rows: an arbitrary one-day calendar keeps the schema
        lo = hi = dt.date(2000, 1, 1)
    cal = daily_calendar(lo, hi).with_columns(
        pl.col("ecommerce_peak").is_not_null().cum_sum().cast(pl.Int32).alias("__peak_cum")
    )
    countries = frame[country].drop_nulls().unique().sort().to_list()
    hol = _holiday_counts(countries, cal.select("date"), lo, hi).rename({"country": country})

    def _at(
        day: str, value: str, alias: str, source: pl.DataFrame, keys: tuple[str, ...] = ()
    ) -> pl.DataFrame:
        return source.select(*keys, pl.col("date").alias(day), pl.col(value).alias(alias))

    frame = (
        frame.join(
            cal.select(
                pl.col("date").alias(_DATE),
                pl.col("ecommerce_peak").cast(EcommercePeak),
                pl.col("origin_capacity").alias("__capacity"),
                "days_to_cny",
            ),
            on=_DATE,
            how="left",
            maintain_order="left",
        )
        .join(_at(_BEFORE, "__peak_cum", "__p0", cal), on=_BEFORE, how="left", maintain_order="left")
        .join(_at(_END, "__peak_cum", "__p1", cal), on=_END, how="left", maintain_order="left")
        .join(
            _at(_BEFORE, "n", "__h0", hol, (country,)),
            on=[country, _BEFORE],
            how="left",
            maintain_order="left",
        )
        .join(_at(_END, "n", "__h1", hol, (country,)), on=[country, _END], how="left", maintain_order="left")
    )
    added = frame.select(
        pl.col(at).dt.weekday().cast(pl.Int8).alias("booking_weekday"),
        pl.col(at).dt.hour().cast(pl.Int8).alias("booking_hour_utc"),
        pl.col("ecommerce_peak").is_not_null().alias("is_ecommerce_peak"),
        pl.when(pl.col(origin_country) == "CN")
        .then(pl.col("__capacity"))
        .otherwise(1.0)
        .alias("origin_capacity"),
        "days_to_cny",
        (pl.col("__h1").fill_null(0) - pl.col("__h0").fill_null(0))
        .cast(pl.Int32)
        .alias("dest_holidays_in_window"),
        (pl.col("__p1") - pl.col("__p0")).cast(pl.Int32).alias("peak_days_in_window"),
        "ecommerce_peak",
    )
    return df.hstack(added)
