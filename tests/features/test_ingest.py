"""Ingest from files: discovery, file-level errors, atomic and deterministic writes, row accounting."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.ingest import IngestError, discover_sources, ingest
from tests.conftest import example_rows


def _write_clean_world(raw: Path) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    example_rows("shipments", 3).write_csv(raw / "shipments.csv")
    events = example_rows(
        "shipment_events",
        2,
        shipment_id=["SH00000001", "SH00000001-1"],
        event=["picked_up", "picked_up"],
        event_at=["2025-03-02T00:00:00Z", "2025-03-02T00:00:00Z"],
    )
    events.write_csv(raw / "shipment_events.csv")
    example_rows("skus", 2).write_csv(raw / "skus.csv")


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()
    }


def test_ingest_dirty_shipments_file_accounts_for_every_row(tmp_path: Path) -> None:
    """Wrong types, duplicate ids, negative weights, deliveries before creation, unknown countries."""
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = example_rows(
        "shipments",
        7,
        shipment_id=["OK1", "DUP", "DUP", "NEG", "EARLY", "NOWHERE", "TYPE"],
        weight_kg=["1", "1", "1", "-2", "1", "1", "heavy"],
        destination_country=["US", "US", "US", "US", "US", "Narnia", "US"],
        delivered_at=["2025-03-05T00:00:00Z"] * 4 + ["2025-02-01T00:00:00Z"] + ["2025-03-05T00:00:00Z"] * 2,
    )
    rows.write_csv(raw / "shipments.csv")
    report = ingest(raw, tmp_path / "out")
    counts = report.tables["shipments"]
    assert (counts.rows_in, counts.valid, counts.quarantined) == (7, 2, 5)
    q = pl.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert q.select("row_number", "column", "rule", "raw_value").rows() == [
        (3, "shipment_id", "duplicate_key", "DUP"),
        (4, "weight_kg", "non_negative", "-2"),
        (5, "delivered_at", "delivered_after_created", "2025-02-01T00:00:00Z"),
        (6, "destination_country", "iso2_country", "Narnia"),
        (7, "weight_kg", "type", "heavy"),
    ]
    assert q["source_file"].unique().to_list() == [str(raw / "shipments.csv")]
    valid = pl.read_parquet(tmp_path / "out" / "shipments.parquet")
    assert sorted(valid["shipment_id"]) == ["DUP", "OK1"]


def test_ingest_missing_column_names_file_column_and_type_and_writes_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    example_rows("shipments").drop("promised_date").write_csv(raw / "shipments.csv")
    out = tmp_path / "out"
    with pytest.raises(IngestError, match=r"shipments\.csv.*promised_date \(Date"):
        ingest(raw, out)
    assert not out.exists() or not any(out.iterdir())


def test_ingest_error_leaves_previous_output_untouched(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    _write_clean_world(raw)
    ingest(raw, out)
    before = _digest(out)
    (raw / "warehouses.parquet").write_bytes(b"definitely not parquet")
    with pytest.raises(IngestError, match=r"warehouses\.parquet: cannot read"):
        ingest(raw, out)
    assert _digest(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_ingest_unknown_table_file_is_an_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    pl.DataFrame({"a": [1]}).write_csv(raw / "parcels.csv")
    with pytest.raises(IngestError, match=r"parcels\.csv: unknown table 'parcels'.*shipments"):
        ingest(raw, tmp_path / "out")


def test_discover_sources_skips_oracle_and_reads_part_folders(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "oracle").mkdir(parents=True)
    (raw / "shipment_events").mkdir()
    (raw / "oracle" / "shipments.parquet").write_bytes(b"")
    (raw / "README.md").write_text("notes")
    for part in ("part-2.csv", "part-1.csv"):
        (raw / "shipment_events" / part).write_text("x")
    (raw / "shipments.csv").write_text("x")
    found = discover_sources(raw)
    assert {k: [p.name for p in v] for k, v in found.items()} == {
        "shipment_events": ["part-1.csv", "part-2.csv"],
        "shipments": ["shipments.csv"],
    }


def test_ingest_rerun_gives_identical_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    ingest(raw, tmp_path / "out")
    first = _digest(tmp_path / "out")
    ingest(raw, tmp_path / "out")
    assert _digest(tmp_path / "out") == first
    assert pl.read_parquet(tmp_path / "out" / "shipments.parquet").height == 3


def test_ingest_csv_and_parquet_inputs_give_the_same_tables(tmp_path: Path) -> None:
    csv_raw = tmp_path / "csv"
    _write_clean_world(csv_raw)
    ingest(csv_raw, tmp_path / "from_csv")
    typed = pl.read_parquet(tmp_path / "from_csv" / "shipments.parquet")
    pq_raw = tmp_path / "pq"
    pq_raw.mkdir()
    typed.with_columns(pl.col("mode").cast(pl.String)).write_parquet(pq_raw / "shipments.parquet")
    ingest(pq_raw, tmp_path / "from_pq")
    assert_frame_equal(pl.read_parquet(tmp_path / "from_pq" / "shipments.parquet"), typed)


def test_ingest_parts_row_numbers_refer_to_each_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "skus").mkdir(parents=True)
    example_rows("skus", 2, sku_id=["A", "B"]).write_csv(raw / "skus" / "part-1.csv")
    example_rows("skus", 2, sku_id=["C", "D"], price_usd=["1", "-1"]).write_csv(raw / "skus" / "part-2.csv")
    report = ingest(raw, tmp_path / "out")
    q = pl.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert q.select("row_number", "rule").rows() == [(2, "non_negative")]
    assert q["source_file"].item().endswith("part-2.csv")
    assert report.tables["skus"].files == [str(raw / "skus" / "part-1.csv"), str(raw / "skus" / "part-2.csv")]


def test_ingest_report_counts_and_ignored_columns(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    example_rows("skus", 2).with_columns(pl.lit("x").alias("colour")).write_csv(raw / "skus.csv")
    report = ingest(raw, tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "ingest_report.json").read_text())
    assert on_disk["tables"]["skus"]["ignored_columns"] == ["colour"]
    for name, c in on_disk["tables"].items():
        assert c["rows_in"] == c["valid"] + c["quarantined"], name
    assert report.tables["shipment_events"].unchecked_foreign_keys == []
    assert set(on_disk["sources"]) == {str(p) for p in raw.glob("*.csv")}


def test_ingest_source_without_business_columns_keeps_them_absent_and_reports_them(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    example_rows("shipments", 3).drop("carrier", "hs_code", "incoterm").write_csv(raw / "shipments.csv")
    report = ingest(raw, tmp_path / "out")
    counts = report.tables["shipments"]
    assert (counts.valid, counts.quarantined) == (3, 0)
    assert counts.omitted_columns == ["carrier", "hs_code", "incoterm"]
    valid = pl.read_parquet(tmp_path / "out" / "shipments.parquet")
    assert not {"carrier", "hs_code", "incoterm"} & set(valid.columns)
    assert report.tables["shipment_events"].omitted_columns == []


def test_ingest_removes_stale_tables_of_a_previous_run(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    ingest(raw, tmp_path / "out")
    (raw / "skus.csv").unlink()
    ingest(raw, tmp_path / "out")
    assert not (tmp_path / "out" / "skus.parquet").exists()


def test_ingest_quarantine_collects_rows_of_several_tables_and_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_clean_world(raw)
    example_rows("skus", 2, price_usd=["1", "-1"]).write_csv(raw / "skus.csv")
    example_rows("shipments", 2, weight_kg=["1", "-1"]).write_parquet(raw / "shipments.parquet")
    (raw / "shipments.csv").unlink()
    ingest(raw, tmp_path / "out")
    q = pl.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert q.select("table", "rule").rows() == [
        ("shipment_events", "foreign_key"),
        ("shipments", "non_negative"),
        ("skus", "non_negative"),
    ]
    assert q.schema["source_file"] == pl.String
