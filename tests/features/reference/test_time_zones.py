"""Tests for features.reference.time_zones: capital zones, local dates and day ends across DST."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_series_equal

from features.reference.time_zones import country_time_zone, local_date, local_day_end


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        pytest.param("CN", "Asia/Shanghai", id="single-zone"),
        pytest.param("US", "America/New_York", id="first-listed-is-capital"),
        pytest.param("RU", "Europe/Moscow", id="capital-override"),
        pytest.param("AU", "Australia/Sydney", id="capital-override-au"),
        pytest.param("ZZ", "UTC", id="unknown"),
        pytest.param(None, "UTC", id="null"),
    ],
)
def test_country_time_zone(country: str | None, zone: str) -> None:
    assert country_time_zone(country) == zone


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_local_date_follows_each_rows_country_and_dst() -> None:
    df = pl.DataFrame(
        {
            "at": [
                _utc(2025, 3, 9, 4, 30),
                _utc(2025, 3, 10, 3, 30),
                _utc(2025, 3, 10, 17),
                None,
                _utc(2025, 1, 1),
            ],
            "c": ["US", "US", "CN", "US", None],
        }
    )
    got = df.select(local_date("at", "c")).to_series()
    # 04:30 UTC on 9 March is 23:30 EST on 8 March; after the DST switch 03:30 UTC is 23:30 EDT.
    expected = [dt.date(2025, 3, 8), dt.date(2025, 3, 9), dt.date(2025, 3, 11), None, dt.date(2025, 1, 1)]
    assert got.to_list() == expected


def test_local_day_end_is_the_next_local_midnight_even_when_midnight_is_skipped() -> None:
    df = pl.DataFrame(
        {
            "d": [dt.date(2025, 3, 10), dt.date(2025, 3, 10), dt.date(2025, 9, 6), None],
            "c": ["US", "CN", "CL", "CN"],
        }
    )
    got = df.select(local_day_end("d", "c")).to_series()
    # Chile moves clocks from 00:00 to 01:00 on 7 September 2025: the day ends at 01:00 -03 = 04:00 UTC.
    expected = [_utc(2025, 3, 11, 4), _utc(2025, 3, 10, 16), _utc(2025, 9, 7, 4), None]
    assert got.to_list() == expected


def test_one_row_frames_equal_the_batch() -> None:
    df = pl.DataFrame(
        {"at": [_utc(2025, 6, 1, h) for h in range(0, 24, 5)], "c": ["BR", "JP", "US", "GB", "NZ"]}
    )
    batch = df.select(local_date("at", "c")).to_series()
    rows = pl.concat([df.slice(i, 1).select(local_date("at", "c")).to_series() for i in range(df.height)])
    assert_series_equal(rows, batch)
    assert df.clear().select(local_date("at", "c")).height == 0
