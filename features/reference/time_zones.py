"""Stage: reference. Each country's primary time zone, and local dates and day ends in it.

Reads the IANA time zone database's country table (`zone.tab`, from the system's zoneinfo folder or the
`tzdata` package) once per process. A promised date is a date in the destination's local calendar, so
lateness is judged on the destination's local date (see docs/data-contract.md):

* the primary zone of a country is the zone of its capital: the first zone the tz database lists for the
  country (it lists the most populous first), except where that is not the capital's zone
  (`CAPITAL_ZONES`: Sydney for AU, Sao Paulo for BR, Toronto for CA, Moscow for RU, ...);
* a country the database does not know (or a null country) falls back to UTC.

Example:
    >>> country_time_zone("US"), country_time_zone("BR"), country_time_zone("ZZ")
    ('America/New_York', 'America/Sao_Paulo', 'UTC')
    >>> df = pl.DataFrame({"at": [dt.datetime(2025, 3, 11, 2, 30, tzinfo=dt.UTC)] * 2, "c": ["US", "CN"]})
    >>> df.select(local_date("at", "c")).to_series().to_list()
    [datetime.date(2025, 3, 10), datetime.date(2025, 3, 11)]
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Final

import polars as pl

__all__ = ["CAPITAL_ZONES", "UTC_ZONE", "country_time_zone", "local_date", "local_day_end"]

UTC_ZONE: Final = "UTC"
# Countries whose first zone in the tz database is not the capital's.
CAPITAL_ZONES: Final[dict[str, str]] = {
    "AQ": "UTC",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "UZ": "Asia/Tashkent",
}


def _zone_table_text() -> str:
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / "zone.tab"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    try:
        return (importlib.resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:  # pragma: no cover - platform without tz data
        raise RuntimeError("no IANA time zone table found: install the `tzdata` package") from exc


@lru_cache(maxsize=1)
def _primary_zones() -> dict[str, str]:
    zones: dict[str, str] = {}
    for line in _zone_table_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        country, _coordinates, zone = line.split("\t")[:3]
        zones.setdefault(country, zone)  # the first listed zone of the country
    return {**zones, **CAPITAL_ZONES}


def country_time_zone(country: str | None) -> str:
    """IANA zone of an ISO-2 country's capital; `UTC` for an unknown or null country."""
    if country is None:
        return UTC_ZONE
    return _primary_zones().get(country.upper(), UTC_ZONE)


_Convert = Callable[[pl.Series, str], pl.Series]


def _per_country(values: pl.Series, countries: pl.Series, convert: _Convert) -> pl.Series:
    """Apply `convert(values, zone)` to each country's rows (one conversion per country present)."""
    frame = pl.DataFrame({"v": values, "c": countries.cast(pl.String)}).with_row_index("__i")
    parts = [
        pl.DataFrame({"__i": part.get_column("__i"), "out": convert(part.get_column("v"), zone)})
        for (code,), part in frame.partition_by("c", as_dict=True, maintain_order=True).items()
        for zone in (country_time_zone(code),)
    ]
    if not parts:
        return convert(values, UTC_ZONE)
    return pl.concat(parts).sort("__i").get_column("out")


def _to_local_date(values: pl.Series, zone: str) -> pl.Series:
    return values.dt.convert_time_zone(zone).dt.date()


def _day_end_utc(values: pl.Series, zone: str) -> pl.Series:
    midnight = (values + dt.timedelta(days=1)).cast(pl.Datetime("us"))
    local = midnight.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    # A midnight that does not exist (a DST jump at 00:00) ends the day at the first hour after the jump.
    later = (midnight + dt.timedelta(hours=1)).dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"
    )
    return local.fill_null(later).dt.convert_time_zone(UTC_ZONE)


def local_date(at: str | pl.Expr, country: str | pl.Expr) -> pl.Expr:
    """The date of timestamp `at` in the primary zone of each row's `country` (UTC for unknown countries)."""
    at_e = pl.col(at) if isinstance(at, str) else at
    country_e = pl.col(country) if isinstance(country, str) else country
    return pl.struct(at_e.alias("at"), country_e.cast(pl.String).alias("c")).map_batches(
        lambda s: _per_country(s.struct.field("at"), s.struct.field("c"), _to_local_date),
        return_dtype=pl.Date,
        is_elementwise=True,
    )


def local_day_end(day: str | pl.Expr, country: str | pl.Expr) -> pl.Expr:
    """The UTC instant a date ends in the primary zone of each row's `country` (its next local midnight)."""
    day_e = pl.col(day) if isinstance(day, str) else day
    country_e = pl.col(country) if isinstance(country, str) else country
    return pl.struct(day_e.alias("d"), country_e.cast(pl.String).alias("c")).map_batches(
        lambda s: _per_country(s.struct.field("d"), s.struct.field("c"), _day_end_utc),
        return_dtype=pl.Datetime("us", UTC_ZONE),
        is_elementwise=True,
    )
