"""The flows' input side: one table loader, the oracle, and the default forecast / plan week."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.demand_panel import iso_week_label, iso_week_start
from pipelines.catalog import DataCatalog
from pipelines.flows._tables import load_oracle, load_tables, week_after_last_sale

DAYS = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31))


@given(DAYS)
def test_week_after_last_sale_is_the_next_monday_and_its_label_round_trips(day: dt.date) -> None:
    monday = week_after_last_sale(pl.DataFrame({"date": [day]}))
    assert monday.weekday() == 0 and 1 <= (monday - day).days <= 7
    label = iso_week_label(monday)
    assert iso_week_start(label) == monday  # the folder name of a week gives its Monday back
    assert iso_week_label(iso_week_start(label)) == label


def test_week_after_last_sale_of_no_sales_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="warehouse_sales is empty"):
        week_after_last_sale(pl.DataFrame({"date": []}, schema={"date": pl.Date}))


def test_load_tables_reads_what_exists_and_names_the_missing_required_table(tmp_path: Path) -> None:
    data = DataCatalog(tmp_path)
    data.validated.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="shipments.parquet not found: run `transitcast ingest`"):
        load_tables(data.validated)
    pl.DataFrame({"a": [1]}).write_parquet(data.table("shipments"))
    assert set(load_tables(data.validated)) == {"shipments"}  # optional tables may be absent
    with pytest.raises(FileNotFoundError, match="lanes.parquet"):
        load_tables(data.validated, ("shipments", "lanes"), required=("shipments", "lanes"))


def test_load_oracle_is_none_for_real_data(tmp_path: Path) -> None:
    data = DataCatalog(tmp_path)
    assert load_oracle(data.raw, "demand_weekly") is None
    data.oracle_dir.mkdir(parents=True)
    pl.DataFrame({"x": [1]}).write_parquet(data.oracle("demand_weekly"))
    oracle = load_oracle(data.raw, "demand_weekly")
    assert oracle is not None and oracle.height == 1
