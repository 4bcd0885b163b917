"""Stage: calendars shared by the simulator and the feature builders.

Reads nothing from disk. Public holidays come from the `holidays` package; e-commerce peaks (11.11, Black
Friday / Cyber Monday, Christmas) and the Chinese origin slowdowns (Chinese New Year, Golden Week) are derived
from it so that the simulator and the models agree on what a peak is.

Which calendar applies to a shipment follows its own countries (`peak_applies`, `observes_lunar_new_year`):
Singles' Day (11.11) is a peak where the parcel leaves from or goes to China; Black Friday / Cyber Monday is
a peak everywhere; Christmas where the destination keeps 25 December as a public holiday; the Lunar New Year
matters where the origin country keeps it as a public holiday (China, Korea, Vietnam, Singapore, ...).

Example:
    >>> import datetime as dt
    >>> cal = daily_calendar(dt.date(2025, 11, 10), dt.date(2025, 11, 12))
    >>> cal.select("date", "ecommerce_peak").to_dicts()[1]
    {'date': datetime.date(2025, 11, 11), 'ecommerce_peak': 'singles_day'}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from functools import lru_cache

import holidays
import polars as pl

__all__ = [
    "ECOMMERCE_PEAKS",
    "black_friday",
    "chinese_new_year",
    "country_holidays",
    "daily_calendar",
    "observes_christmas",
    "observes_lunar_new_year",
    "peak_applies",
]

ECOMMERCE_PEAKS = ("singles_day", "black_friday_cyber_monday", "christmas")

# Chinese logistics runs at reduced capacity from about a week before the Spring Festival until factories
# and warehouses are fully staffed again, about two weeks after it. Golden Week (1-7 October) is milder.
_CNY_BEFORE_DAYS = 7
_CNY_AFTER_DAYS = 14
_CNY_CAPACITY = 0.25
_GOLDEN_WEEK_CAPACITY = 0.6


@lru_cache(maxsize=64)
def chinese_new_year(year: int) -> dt.date:
    """First day of the Spring Festival in `year`, from the `holidays` package's China calendar."""
    cn = holidays.country_holidays("CN", years=year, language="en_US")
    days = sorted(d for d, name in cn.items() if "Spring Festival" in name)
    if not days:  # pragma: no cover - the package covers every supported year
        raise ValueError(f"no Spring Festival in the holidays calendar for {year}")
    return days[0]


# Years a country's calendar is read in to decide whether it keeps a holiday (stable, recent years).
_OBSERVANCE_YEARS = (2023, 2024, 2025)


@lru_cache(maxsize=512)
def observes_lunar_new_year(country: str | None) -> bool:
    """The country keeps the Lunar New Year (China's Spring Festival day) as a public holiday."""
    if country is None:
        return False
    days = {d for d, _ in _holiday_dates(country, _OBSERVANCE_YEARS)}
    return all(chinese_new_year(y) in days for y in _OBSERVANCE_YEARS)


@lru_cache(maxsize=512)
def observes_christmas(country: str | None) -> bool:
    """The country keeps 25 December as a public holiday."""
    if country is None:
        return False
    days = {d for d, _ in _holiday_dates(country, _OBSERVANCE_YEARS)}
    return all(dt.date(y, 12, 25) in days for y in _OBSERVANCE_YEARS)


def peak_applies(peak: str, origin: str | None, destination: str | None) -> bool:
    """Whether e-commerce peak `peak` (one of `ECOMMERCE_PEAKS`) loads a shipment between these countries.

    Examples:
        >>> peak_applies("singles_day", "CN", "US"), peak_applies("singles_day", "BR", "BR")
        (True, False)
        >>> peak_applies("christmas", "CN", "SA"), peak_applies("black_friday_cyber_monday", "BR", "BR")
        (False, True)
    """
    if peak == "singles_day":
        return "CN" in (origin, destination)
    if peak == "black_friday_cyber_monday":
        return True
    if peak == "christmas":
        return observes_christmas(destination)
    raise ValueError(f"unknown e-commerce peak {peak!r}; known: {', '.join(ECOMMERCE_PEAKS)}")


def black_friday(year: int) -> dt.date:
    """The Friday after the fourth Thursday of November."""
    nov1 = dt.date(year, 11, 1)
    first_thursday = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


@lru_cache(maxsize=512)
def _holiday_dates(country: str, years: tuple[int, ...]) -> tuple[tuple[dt.date, str], ...]:
    try:
        cal = holidays.country_holidays(country, years=years, language="en_US")
    except NotImplementedError:
        return ()
    return tuple(sorted(cal.items()))


def country_holidays(countries: Iterable[str], start: dt.date, end: dt.date) -> pl.DataFrame:
    """Public holidays of each ISO-2 country between `start` and `end` (inclusive).

    Countries the `holidays` package does not cover contribute no rows.

    Returns:
        Frame with columns `country` (String), `date` (Date), `holiday` (String), sorted by country and date.
    """
    years = tuple(range(start.year, end.year + 1))
    rows = [
        (c, d, name)
        for c in sorted(set(countries))
        for d, name in _holiday_dates(c, years)
        if start <= d <= end
    ]
    return pl.DataFrame(
        rows, schema={"country": pl.String, "date": pl.Date, "holiday": pl.String}, orient="row"
    )


def _peak_windows(years: Sequence[int]) -> list[tuple[dt.date, dt.date, str]]:
    windows = []
    for y in years:
        bf = black_friday(y)
        windows += [
            (dt.date(y, 11, 9), dt.date(y, 11, 13), "singles_day"),
            (bf - dt.timedelta(days=3), bf + dt.timedelta(days=4), "black_friday_cyber_monday"),
            (dt.date(y, 12, 8), dt.date(y, 12, 22), "christmas"),
        ]
    return windows


def daily_calendar(start: dt.date, end: dt.date) -> pl.DataFrame:
    """One row per day with the e-commerce peak and the Chinese origin capacity of that day.

    Columns:
        date: the day.
        ecommerce_peak: name of the peak window the day falls in (`singles_day`,
            `black_friday_cyber_monday`, `christmas`) or null.
        origin_capacity: share of normal Chinese first-mile/export capacity available (1.0 normally, lower
            around Chinese New Year and Golden Week).
        is_cn_holiday: a Chinese public holiday.
        days_to_cny: days until the next Chinese New Year (0 on the day).
    """
    years = list(range(start.year - 1, end.year + 2))
    dates = pl.date_range(start, end, "1d", eager=True).alias("date")
    frame = pl.DataFrame(dates)

    peak = pl.lit(None, dtype=pl.String)
    for lo, hi, name in _peak_windows(years):
        peak = pl.when(pl.col("date").is_between(lo, hi)).then(pl.lit(name)).otherwise(peak)

    capacity = pl.lit(1.0)
    cny_dates = [chinese_new_year(y) for y in years]
    for cny in cny_dates:
        lo, hi = cny - dt.timedelta(days=_CNY_BEFORE_DAYS), cny + dt.timedelta(days=_CNY_AFTER_DAYS)
        capacity = pl.when(pl.col("date").is_between(lo, hi)).then(pl.lit(_CNY_CAPACITY)).otherwise(capacity)
    for y in years:
        gw = pl.col("date").is_between(dt.date(y, 10, 1), dt.date(y, 10, 7))
        capacity = pl.when(gw).then(pl.lit(_GOLDEN_WEEK_CAPACITY)).otherwise(capacity)

    cn = country_holidays(["CN"], dt.date(years[0], 1, 1), dt.date(years[-1], 12, 31))
    cny_frame = pl.DataFrame({"next_cny": sorted(cny_dates)}).with_columns(
        pl.col("next_cny").alias("cny_key")
    )
    return (
        frame.with_columns(
            peak.alias("ecommerce_peak"),
            capacity.alias("origin_capacity"),
            pl.col("date").is_in(cn["date"].implode()).alias("is_cn_holiday"),
        )
        .sort("date")
        .join_asof(cny_frame.sort("cny_key"), left_on="date", right_on="cny_key", strategy="forward")
        .with_columns(
            (pl.col("next_cny") - pl.col("date")).dt.total_days().cast(pl.Int32).alias("days_to_cny")
        )
        .drop("next_cny", "cny_key")
    )
