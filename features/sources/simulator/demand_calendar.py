"""Stage: simulator (overseas-warehouse side). The day grid and the known calendar factors of demand.

Reads nothing from disk and writes nothing. `DayGrid` indexes the simulated days (warm-up + the reported
period) and their ISO weeks; `DemandCalendar` holds, per day and category x warehouse, the factor the
planner knows in advance: yearly seasonality by category and hemisphere, the weekday profile, the
e-commerce peaks of `features.reference.calendar.daily_calendar` per country, the post-Christmas dip and the
destination's public holidays, plus the promotion start intensity and the Chinese origin capacity.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, NamedTuple

import numpy as np
import polars as pl

from features.reference.calendar import black_friday, country_holidays, daily_calendar
from features.sources.simulator.demand_categories import CATEGORIES
from features.sources.simulator.inventory_warehouses import WarehouseSpec

__all__ = ["DayGrid", "DemandCalendar"]

_SOUTHERN: Final = frozenset({"AU", "NZ", "ZA", "AR", "BR", "CL"})
# Uplift of an average category at 11.11, Black Friday / Cyber Monday and the Christmas run-up, by country.
_PEAK_UPLIFT: Final[dict[str, tuple[float, float, float]]] = {
    "US": (1.10, 2.2, 1.35),
    "GB": (1.12, 1.9, 1.35),
    "DE": (1.10, 1.6, 1.30),
    "AU": (1.18, 1.7, 1.30),
    "CA": (1.10, 1.9, 1.30),
}
_DEFAULT_UPLIFT: Final = (1.10, 1.6, 1.30)
_WEEKDAY: Final = np.array([1.22, 1.12, 1.04, 1.0, 0.95, 0.80, 0.87])
_HOLIDAY_FACTOR, _AFTER_HOLIDAY_FACTOR, _POST_CHRISTMAS_FACTOR = 0.6, 1.25, 0.6
_HORIZON_DAYS: Final = 150  # days past `end` the planner's calendar must cover


class DayGrid(NamedTuple):
    """Simulated days: warm-up + [start, end]; `first` is the index of `start`."""

    day0: dt.date
    first: int
    n_days: int
    week: np.ndarray  # [n_days] ISO-week number counted from the Monday on or before day0
    week_monday: dt.date

    @classmethod
    def build(cls, day0: dt.date, start: dt.date, end: dt.date) -> DayGrid:
        n_days = (end - day0).days + 1
        monday = day0 - dt.timedelta(days=day0.weekday())
        week = (np.arange(n_days) + day0.weekday()) // 7
        return cls(day0, (start - day0).days, n_days, week, monday)

    def epoch_days(self, idx: np.ndarray) -> np.ndarray:
        return idx + (self.day0 - dt.date(1970, 1, 1)).days


class DemandCalendar(NamedTuple):
    """Known calendar factors on `n_days + horizon` days."""

    profile: np.ndarray  # [days, n_categories * n_warehouses] seasonality x peaks x weekday x holidays
    promo_start: np.ndarray  # [days] relative promotion start intensity (higher in peaks)
    origin_capacity: np.ndarray
    month: np.ndarray
    weekday: np.ndarray

    @classmethod
    def build(cls, grid: DayGrid, warehouses: tuple[WarehouseSpec, ...]) -> DemandCalendar:
        last = grid.day0 + dt.timedelta(days=grid.n_days - 1 + _HORIZON_DAYS)
        cal = daily_calendar(grid.day0, last)
        dates = cal["date"]
        doy = dates.dt.ordinal_day().to_numpy().astype(float)
        month, day = dates.dt.month().to_numpy(), dates.dt.day().to_numpy()
        weekday = dates.dt.weekday().to_numpy() - 1
        peak = cal["ecommerce_peak"]
        is_peak = [
            (peak == name).fill_null(False).to_numpy()
            for name in ("singles_day", "black_friday_cyber_monday", "christmas")
        ]
        bf_days = {
            black_friday(y) + dt.timedelta(days=k)
            for y in range(grid.day0.year, last.year + 1)
            for k in (0, 3)
        }
        bf_cm = dates.is_in(list(bf_days)).to_numpy()
        post_xmas = ((month == 12) & (day >= 24)) | ((month == 1) & (day <= 1))
        hol = country_holidays({w.country for w in warehouses}, grid.day0, last)

        names = list(CATEGORIES)
        profile = np.empty((len(dates), len(names), len(warehouses)))
        for w, spec in enumerate(warehouses):
            holidays = hol.filter(pl.col("country") == spec.country)["date"]
            on_holiday = dates.is_in(holidays.implode()).to_numpy()
            after_holiday = np.concatenate([[False], on_holiday[:-1]]) & ~on_holiday
            base = _WEEKDAY[weekday] / _WEEKDAY.mean() * np.where(post_xmas, _POST_CHRISTMAS_FACTOR, 1.0)
            base *= np.where(on_holiday, _HOLIDAY_FACTOR, np.where(after_holiday, _AFTER_HOLIDAY_FACTOR, 1.0))
            u11, ubf, uxmas = _PEAK_UPLIFT.get(spec.country, _DEFAULT_UPLIFT)
            for c, name in enumerate(names):
                prof = CATEGORIES[name]
                shift = 182.6 if prof.weather and spec.country in _SOUTHERN else 0.0
                season = _season(prof.season, doy - shift) / _season(prof.season, np.arange(365.0)).mean()
                peaks = (
                    (1 + is_peak[0] * (u11 - 1) * prof.peak_sensitivity)
                    * (1 + is_peak[1] * (ubf * np.where(bf_cm, 1.3, 1.0) - 1) * prof.peak_sensitivity)
                    * (1 + is_peak[2] * (uxmas - 1) * prof.gift_sensitivity)
                )
                profile[:, c, w] = base * season * peaks
        promo_start = np.where(is_peak[0] | is_peak[1], 3.0, 1.0)
        return cls(
            profile.reshape(len(dates), -1), promo_start, cal["origin_capacity"].to_numpy(), month, weekday
        )


def _season(params: tuple[float, float, float, float], day_of_year: np.ndarray) -> np.ndarray:
    """Yearly seasonality: two harmonics, each with an amplitude (log scale) and a peak day of the year."""
    a1, p1, a2, p2 = params
    return np.exp(
        a1 * np.cos(2 * np.pi * (day_of_year - p1) / 365.25)
        + a2 * np.cos(4 * np.pi * (day_of_year - p2) / 365.25)
    )
