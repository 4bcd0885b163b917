"""Stage: features. Calendar features of a booking: the booking day and the days of its expected transit.

Reads frames (no I/O); calendars come from `features.reference.calendar` (public holidays from the `holidays`
package, e-commerce peaks and Chinese origin capacity derived from it), per shipment: the holidays of its
origin and of its destination country, the peaks that apply between them, the Lunar New Year only where the
origin keeps it. Known in advance, so they leak nothing. Used by
`features.shipment_features.build_booking_features`.

The daily calendar and each destination's running holiday count are computed once per range of whole
years and cached in the process (`CalendarTable`); a frame's features are then array look-ups by day, the
same values for training frames and one-row requests (`tests/features/test_booking_calendar_cache.py`
checks them against the frame joins they replace).

Example:
    >>> import datetime as dt
    >>> df = pl.DataFrame({"created_at": [dt.datetime(2025, 12, 20, 9, tzinfo=dt.UTC)],
    ...                    "origin_country": ["CN"], "destination_country": ["US"], "days": [6.0]})
    >>> add_booking_calendar(df, window_days="days").select(WINDOW_FEATURES).rows()
    [(1, 0, 3)]
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import numpy as np
import polars as pl

from features.reference.calendar import (
    ECOMMERCE_PEAKS,
    country_holidays,
    daily_calendar,
    observes_lunar_new_year,
    peak_applies,
)

__all__ = [
    "CALENDAR_FEATURES",
    "WINDOW_FEATURES",
    "CalendarTable",
    "EcommercePeak",
    "add_booking_calendar",
    "calendar_table",
]

EcommercePeak = pl.Enum(list(ECOMMERCE_PEAKS))
CALENDAR_FEATURES: tuple[str, ...] = (
    "booking_weekday",
    "booking_hour_utc",
    "is_ecommerce_peak",
    "origin_capacity",
    "days_to_cny",
)
WINDOW_FEATURES: tuple[str, ...] = (
    "dest_holidays_in_window",
    "origin_holidays_in_window",
    "peak_days_in_window",
)

_EPOCH = dt.date(1970, 1, 1)
# A table covers whole years, with this many spare years on each side, so that nearby requests reuse it.
_SPARE_YEARS = 1


class CalendarTable:
    """The daily calendar of whole years as arrays indexed by day, and running holiday counts per country.

    Built by `calendar_table`; read-only except for the per-country counts, added on first use.

    Attributes:
        start: first day of the table (1 January).
        end: last day (31 December).
        peak: per day, the index of its `ECOMMERCE_PEAKS` window or -1.
        capacity: per day, the Chinese origin capacity (`daily_calendar`'s `origin_capacity`).
        days_to_cny: per day, days until the next Chinese New Year.
        peak_cum_by: per peak of `ECOMMERCE_PEAKS`, per day, the number of that peak's days from `start`
            up to and including that day.
    """

    def __init__(self, start: dt.date, end: dt.date) -> None:
        self.start, self.end = start, end
        cal = daily_calendar(start, end)
        codes = cal.get_column("ecommerce_peak").cast(EcommercePeak).to_physical()
        self.peak = codes.fill_null(-1).cast(pl.Int32).to_numpy()
        self.capacity = cal.get_column("origin_capacity").cast(pl.Float64).to_numpy()
        self.days_to_cny = cal.get_column("days_to_cny").cast(pl.Int32).to_numpy()
        self.peak_cum_by = [np.cumsum(self.peak == k, dtype=np.int64) for k in range(len(ECOMMERCE_PEAKS))]
        self._holidays: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def start_day(self) -> int:
        """`start` as days since 1970-01-01."""
        return (self.start - _EPOCH).days

    def covers(self, lo: dt.date, hi: dt.date) -> bool:
        """Whether every day of `[lo, hi]` is in the table."""
        return self.start <= lo and hi <= self.end

    def holiday_cum(self, country: str) -> np.ndarray:
        """Per day, the number of `country`'s public holidays from `start` up to and including that day."""
        cum = self._holidays.get(country)
        if cum is None:
            days = country_holidays([country], self.start, self.end).get_column("date").unique()
            flags = np.zeros(self.peak.size, dtype=np.int64)
            flags[days.cast(pl.Int32).to_numpy() - self.start_day] = 1
            cum = np.cumsum(flags)
            with self._lock:
                self._holidays[country] = cum
        return cum


_TABLE: CalendarTable | None = None
_TABLE_LOCK = threading.Lock()


def calendar_table(lo: dt.date, hi: dt.date) -> CalendarTable:
    """The cached `CalendarTable` covering `[lo, hi]` (rebuilt over the union of ranges when it does not)."""
    global _TABLE  # noqa: PLW0603 - the process-wide cache
    table = _TABLE
    if table is not None and table.covers(lo, hi):
        return table
    with _TABLE_LOCK:
        table = _TABLE
        if table is not None and table.covers(lo, hi):
            return table
        if table is not None:
            lo, hi = min(lo, table.start), max(hi, table.end)
        table = CalendarTable(dt.date(lo.year - _SPARE_YEARS, 1, 1), dt.date(hi.year + _SPARE_YEARS, 12, 31))
        _TABLE = table
        return table


_PEAK_NAMES = np.array([*ECOMMERCE_PEAKS, None], dtype=object)  # index -1: no peak
_NULL_KEY = "\x00"  # stands for a null country in the per-value look-ups


def _per_value(values: pl.Series, rule: Callable[[str | None], object]) -> np.ndarray:
    """`rule` of each value (null passed as None), evaluated once per distinct value (countries, pairs)."""
    keyed = values.cast(pl.String).fill_null(_NULL_KEY)
    uniques = keyed.unique(maintain_order=True).to_list()
    if not uniques:
        return np.empty(0, dtype=object)
    table = np.array([rule(None if v == _NULL_KEY else v) for v in uniques])
    codes = keyed.replace_strict(uniques, list(range(len(uniques))), return_dtype=pl.Int64)
    return table[codes.to_numpy()]


def _applying_peaks(origin: pl.Series, destination: pl.Series) -> np.ndarray:
    """Rows x peaks: which e-commerce peaks load each shipment (`peak_applies` per country pair)."""
    pairs = origin.fill_null("") + "|" + destination.fill_null("")

    def _rule(pair: str | None) -> tuple[bool, ...]:
        o, d = (pair or "|").split("|")
        return tuple(peak_applies(p, o or None, d or None) for p in ECOMMERCE_PEAKS)

    flags = _per_value(pairs, _rule)
    return flags.reshape(origin.len(), len(ECOMMERCE_PEAKS)).astype(bool)


def _holidays_in_window(
    table: CalendarTable, countries: pl.Series, valid: np.ndarray, i_before: np.ndarray, i_end: np.ndarray
) -> np.ndarray:
    """Public holidays of each row's country in its window (0 for a null date or country)."""
    out = np.zeros(countries.len(), dtype=np.int32)
    names = np.array(countries.to_list(), dtype=object)
    for name in set(names.tolist()) - {None}:
        rows = np.flatnonzero((names == name) & valid)
        cum = table.holiday_cum(name)
        out[rows] = cum[i_end[rows]] - cum[i_before[rows]]
    return out


def add_booking_calendar(
    df: pl.DataFrame,
    *,
    window_days: str,
    at: str = "created_at",
    country: str = "destination_country",
    origin_country: str = "origin_country",
) -> pl.DataFrame:
    """Add the calendar of the booking day and the holidays and peak days of the expected transit.

    Calendars follow each shipment's own countries (`features.reference.calendar`): adds
    `booking_weekday` (ISO, 1 = Monday, UTC), `booking_hour_utc`, `ecommerce_peak` (Enum of
    `ECOMMERCE_PEAKS`: the peak of the booking day when it applies to the shipment's countries, else null)
    and `is_ecommerce_peak`, `origin_capacity` (share of Chinese first-mile capacity that day; 1.0 when the
    parcel does not leave China), `days_to_cny` (null when the origin does not keep the Lunar New Year), and
    over the window `[booking date, booking date + ceil(window_days)]` (both ends included):
    `dest_holidays_in_window` and `origin_holidays_in_window` (public holidays of each country) and
    `peak_days_in_window` (days of the peaks that apply). Row order is kept.

    Args:
        df: frame with `at` (timestamp), `country`, `origin_country` and `window_days` (float days; null
            counts as 0).
        window_days: column with the expected transit days.
        at: booking moment.
        country: destination country (ISO-2).
        origin_country: origin country (ISO-2).
    """
    day_expr = pl.col(at).dt.date().cast(pl.Int64)
    keys = df.select(
        day_expr.is_null().alias("null"),
        day_expr.fill_null(0).alias("day"),
        pl.col(window_days).ceil().fill_null(0).cast(pl.Int64).alias("span"),
        pl.col(country).cast(pl.String).alias("country"),
        pl.col(origin_country).cast(pl.String).alias("origin"),
        (pl.col(origin_country) == "CN").fill_null(False).alias("cn"),
        pl.col(at).dt.weekday().cast(pl.Int8).alias("booking_weekday"),
        pl.col(at).dt.hour().cast(pl.Int8).alias("booking_hour_utc"),
    )
    null = keys.get_column("null").to_numpy()
    valid = ~null
    day = keys.get_column("day").to_numpy()
    before, end = day - 1, day + keys.get_column("span").to_numpy()
    if valid.size and valid.all():
        lo = _EPOCH + dt.timedelta(days=int(min(before.min(), end.min())))
        hi = _EPOCH + dt.timedelta(days=int(max(day.max(), end.max())))
    elif valid.any():
        lo = _EPOCH + dt.timedelta(days=int(min(before[valid].min(), end[valid].min())))
        hi = _EPOCH + dt.timedelta(days=int(max(day[valid].max(), end[valid].max())))
    else:  # no dated rows: any table keeps the schema
        lo = hi = dt.date(2000, 1, 1)
    table = calendar_table(lo, hi)
    base = table.start_day
    i_day = np.where(null, 0, day - base)
    i_before, i_end = np.where(null, 0, before - base), np.where(null, 0, end - base)

    origin, destination = keys.get_column("origin"), keys.get_column("country")
    applies = _applying_peaks(origin, destination)
    peak = np.where(null, -1, table.peak[i_day])
    peak = np.where((peak >= 0) & applies[np.arange(peak.size), np.maximum(peak, 0)], peak, -1)
    peak_days = sum(
        applies[:, k] * (table.peak_cum_by[k][i_end] - table.peak_cum_by[k][i_before])
        for k in range(len(ECOMMERCE_PEAKS))
    )
    lunar = _per_value(origin, observes_lunar_new_year).astype(bool)
    capacity = np.where(keys.get_column("cn").to_numpy(), table.capacity[i_day], 1.0)
    added = pl.DataFrame(
        [
            keys.get_column("booking_weekday"),
            keys.get_column("booking_hour_utc"),
            pl.Series("is_ecommerce_peak", peak >= 0, dtype=pl.Boolean),
            pl.Series("origin_capacity", capacity, dtype=pl.Float64),
            pl.Series("days_to_cny", table.days_to_cny[i_day], dtype=pl.Int32),
            pl.Series(
                "dest_holidays_in_window",
                _holidays_in_window(table, destination, valid, i_before, i_end),
                dtype=pl.Int32,
            ),
            pl.Series(
                "origin_holidays_in_window",
                _holidays_in_window(table, origin, valid, i_before, i_end),
                dtype=pl.Int32,
            ),
            pl.Series("peak_days_in_window", np.asarray(peak_days), dtype=pl.Int32),
            pl.Series("ecommerce_peak", _PEAK_NAMES[peak].tolist(), dtype=EcommercePeak),
        ]
    )
    no_cny = pl.Series(null | ~lunar)
    added = added.with_columns(pl.when(~no_cny).then(pl.col("days_to_cny")).alias("days_to_cny"))
    if null.any():  # an undated row has no calendar (holidays in its window count 0)
        missing = pl.Series(null)
        added = added.with_columns(
            pl.when(~missing).then(pl.col("peak_days_in_window")).alias("peak_days_in_window")
        ).with_columns(
            pl.when(missing & keys.get_column("cn"))
            .then(None)
            .otherwise(pl.col("origin_capacity"))
            .alias("origin_capacity")
        )
    return df.hstack(added)
