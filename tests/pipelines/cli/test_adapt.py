"""`transitcast adapt --assume-timezone`: naive dataset times read as wall-clock times of a zone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from pipelines.cli.adapt import as_local_time
from pipelines.cli.main import app

UTC = pl.Datetime("us", "UTC")


def test_as_local_time_shifts_utc_stamps_by_the_zone_offset_of_the_day() -> None:
    stamps = [dt.datetime(2025, 1, 15, 9), dt.datetime(2025, 7, 15, 9), dt.datetime(2025, 3, 9, 2, 30)]
    frame = pl.DataFrame({"created_at": stamps, "n": [1, 2, 3]}).with_columns(pl.col("created_at").cast(UTC))
    out = as_local_time({"shipments": frame}, "America/New_York")["shipments"]
    expected = pl.DataFrame(
        {"created_at": [dt.datetime(2025, 1, 15, 14), dt.datetime(2025, 7, 15, 13), None], "n": [1, 2, 3]}
    ).with_columns(pl.col("created_at").cast(UTC))
    assert_frame_equal(out, expected)  # winter UTC-5, summer UTC-4, 02:30 on the DST day does not exist


def test_as_local_time_leaves_dates_and_other_columns() -> None:
    frame = pl.DataFrame({"date": [dt.date(2025, 1, 1)], "units_sold": [3]})
    assert_frame_equal(as_local_time({"warehouse_sales": frame}, "Asia/Shanghai")["warehouse_sales"], frame)


def test_adapt_rejects_an_unknown_zone_before_reading(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["adapt", "scms", "--src", str(tmp_path), "--out", str(out), "--assume-timezone", "Mars/X"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "not an IANA zone" in result.output
    assert not (tmp_path / "o").exists()
