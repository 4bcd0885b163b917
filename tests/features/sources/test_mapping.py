"""Tests for the mapping-file adapter (features.sources.mapping): rules on hand-made frames, one test per
error class of a bad mapping, the marketplace example of docs/adapters.md end to end (adapt, then ingest),
and SCMS through docs/mappings/scms.yaml against the code adapter on the real file."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.contract.countries import ISO2_CODES
from features.contract.schema import TABLES
from features.ingest import ingest, validate_tables
from features.sources import REJECTED_SCHEMA, adapt_scms, read_source
from features.sources.country_names import lookup_country
from features.sources.mapping import (
    MappingError,
    adapt_flat_file,
    apply_mapping,
    parse_mapping,
    read_flat,
    read_mapping,
)
from pipelines.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "docs" / "mappings"
runner = CliRunner()


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _map(text: str, frame: pl.DataFrame, **kw: str) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    result = apply_mapping(frame, parse_mapping(text, "m.yaml"), **kw)  # type: ignore[arg-type]
    notes = result.notes
    assert notes["rows_in"] == frame.height == notes["rows_mapped"] + notes["rows_rejected"]
    assert result.rejected.schema == REJECTED_SCHEMA
    return result.tables, result.rejected


def _error(text: str, frame: pl.DataFrame | None = None, **kw: str) -> str:
    with pytest.raises(MappingError) as info:
        apply_mapping(_WH if frame is None else frame, parse_mapping(text, "m.yaml"), **kw)  # type: ignore[arg-type]
    return str(info.value)


# ---------------------------------------------------------------------------------------------------------
# Rules on small frames (warehouses: three required columns)
# ---------------------------------------------------------------------------------------------------------
_WH = pl.DataFrame(
    {"wh": ["W1", "W2", "W3"], "land": ["Deutschland", "Frankreich", "Viet Nam"], "cap": ["100", "2", "x"]}
)
_WH_MAPPING = """\
countries: {languages: [en, de]}
tables:
  warehouses:
    columns:
      warehouse_id: wh
      country: {country: land}
      capacity_units: cap
"""


def test_apply_mapping_renames_looks_up_countries_and_rejects_a_bad_number() -> None:
    tables, rejected = _map(_WH_MAPPING, _WH)
    expected = pl.DataFrame(
        {"warehouse_id": ["W1", "W2"], "country": ["DE", "FR"], "capacity_units": [100, 2]},
        schema_overrides={"capacity_units": pl.Int64},
    )
    out = tables["warehouses"]
    assert out.schema == pl.Schema({c.name: c.dtype for c in TABLES["warehouses"].columns})
    assert_frame_equal(out.select(expected.columns), expected)
    assert rejected.rows() == [(3, "cap", "type", "x", rejected.item(0, "detail"))]
    assert "warehouses.capacity_units" in rejected.item(0, "detail")


@pytest.mark.parametrize(
    ("name", "languages", "code"),
    [
        pytest.param("Côte d'Ivoire", ("en",), "CI", id="accent"),
        pytest.param("cote d’ivoire", ("en",), "CI", id="no-accent-curly-apostrophe"),
        pytest.param("Deutschland", ("en", "de"), "DE", id="german"),
        pytest.param("Allemagne", ("fr",), "DE", id="french"),
        pytest.param("Viet Nam", ("en",), "VN", id="iso-name"),
        pytest.param("Vietnam", ("en",), "VN", id="common-name"),
        pytest.param("DEU", ("en",), "DE", id="alpha-3"),
        pytest.param("Swaziland", ("en",), "SZ", id="shared-alias"),
        pytest.param("Deutschland", ("en",), None, id="german-name-not-in-english"),
    ],
)
def test_lookup_country_in_several_languages(name: str, languages: tuple[str, ...], code: str | None) -> None:
    assert lookup_country(name, languages).code == code


def test_lookup_country_ambiguous_unknown_and_alias() -> None:
    korea = lookup_country("Korea")
    assert (korea.code, korea.kind, korea.candidates) == (None, "ambiguous", ("KP", "KR"))
    assert lookup_country("Narnia").kind == "unknown"
    assert lookup_country("Korea", aliases={"korea": "kr"}).code == "KR"


def test_country_rule_rejects_ambiguous_and_unknown_names_with_the_reason() -> None:
    frame = _WH.with_columns(land=pl.Series(["Korea", "Narnia", "France"]), cap=pl.Series(["1", "2", "3"]))
    tables, rejected = _map(_WH_MAPPING, frame)
    assert tables["warehouses"].get_column("country").to_list() == ["FR"]
    assert rejected.select("source_row", "rule", "raw_value").rows() == [
        (1, "country_ambiguous", "Korea"),
        (2, "country_unknown", "Narnia"),
    ]
    assert "KP, KR" in rejected.item(0, "detail")
    assert "countries.aliases" in rejected.item(1, "detail")


def test_map_rule_default_and_unmapped_reject() -> None:
    text = _WH_MAPPING.replace(
        "country: {country: land}", "country: {map: land, values: {Deutschland: DE}, unmapped: reject}"
    ).replace("cap\n", "{const: 5}\n")
    tables, rejected = _map(text, _WH)
    assert tables["warehouses"].get_column("country").to_list() == ["DE"]
    assert rejected.select("source_row", "rule", "raw_value").rows() == [
        (2, "value_not_in_map", "Frankreich"),
        (3, "value_not_in_map", "Viet Nam"),
    ]
    with_default = text.replace("unmapped: reject", "default: FR")
    result = apply_mapping(_WH, parse_mapping(with_default))
    assert result.tables["warehouses"].get_column("country").to_list() == ["DE", "FR", "FR"]
    assert result.notes["map_default:warehouses.country"] == 2


_EVENTS = pl.DataFrame(
    {
        "id": ["S1", "S1", "S2", "S3"],
        "handover": ["2025-03-01 10:00", "2025-03-01 10:00", "", "2025-03-30 02:30"],
        "delivered": ["2025-03-04 12:00", "2025-03-04 12:00", "2025-03-05 08:00", ""],
        "cc": ["DE", "DE", "FR", "DE"],
    }
)
_EVENTS_MAPPING = """\
source: {timezone: Europe/Berlin, null_values: [""]}
tables:
  shipment_events:
    columns: {shipment_id: id, country: cc}
    events:
      - {event: picked_up, at: {datetime: handover, format: "%Y-%m-%d %H:%M"}}
      - {event: delivered, at: {datetime: delivered, format: "%Y-%m-%d %H:%M"}}
"""


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["W1", "W2", ""]),
            st.sampled_from(["Deutschland", "Korea", "FR", "", "Narnia"]) | st.text(max_size=8),
            st.text(max_size=6),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_every_source_row_is_mapped_or_rejected_once(rows: list[tuple[str, str, str]]) -> None:
    frame = pl.DataFrame(rows, schema=["wh", "land", "cap"], orient="row")
    text = 'source: {null_values: [""]}\n' + _WH_MAPPING.replace(
        "    columns:", "    group_by: [warehouse_id]\n    columns:"
    )
    tables, rejected = _map(text, frame)
    assert rejected.get_column("source_row").is_unique().all()
    assert tables["warehouses"].get_column("warehouse_id").is_unique().all()
    assert tables["warehouses"].get_column("country").is_in(sorted(ISO2_CODES)).all()


def test_events_from_timestamp_columns_in_a_local_zone() -> None:
    tables, rejected = _map(_EVENTS_MAPPING, _EVENTS)
    expected = pl.DataFrame(
        {
            "shipment_id": ["S1", "S1", "S2"],
            "event": ["picked_up", "delivered", "delivered"],
            "event_at": [_utc(2025, 3, 1, 9), _utc(2025, 3, 4, 11), _utc(2025, 3, 5, 7)],
            "country": ["DE", "DE", "FR"],
        }
    )
    out = tables["shipment_events"]
    # S1's two identical rows give one event each; S2 has no hand-over yet (no event, not a rejection).
    assert_frame_equal(out.select(expected.columns).with_columns(pl.col("event").cast(pl.String)), expected)
    # 02:30 on 2025-03-30 does not exist in Berlin (clocks jump from 02:00 to 03:00).
    assert rejected.select("source_row", "column", "rule").rows() == [(4, "handover", "unparseable_datetime")]


def test_assume_timezone_overrides_the_mapping_zone() -> None:
    tables, _ = _map(_EVENTS_MAPPING, _EVENTS.head(1), assume_timezone="Asia/Shanghai")
    assert tables["shipment_events"].get_column("event_at").to_list()[0] == _utc(2025, 3, 1, 2)


def test_group_by_aggregates_and_rejects_the_whole_group() -> None:
    frame = pl.DataFrame({"wh": ["W1", "W1", "W2", "W2"], "cap": ["10", "5", "7", "bad"]})
    text = """\
tables:
  warehouses:
    group_by: [warehouse_id]
    aggregate: {capacity_units: sum}
    columns: {warehouse_id: wh, country: {const: DE}, capacity_units: cap}
"""
    tables, rejected = _map(text, frame)
    assert tables["warehouses"].select("warehouse_id", "capacity_units").rows() == [("W1", 15)]
    assert rejected.select("source_row", "rule").rows() == [(3, "group_rejected"), (4, "type")]
    assert "source row 4" in rejected.item(0, "detail")


def test_sql_rule_and_derived_columns() -> None:
    frame = pl.DataFrame({"a": ["W"], "b": ["1"], "land": ["Allemagne"]})
    text = """\
countries: {languages: [fr]}
derive:
  cc: {country: land}
tables:
  warehouses:
    columns:
      warehouse_id: {sql: "a || '-' || cc"}
      country: cc
      capacity_units: {sql: "CAST(b AS INT) * 250"}
      region: {sql: "CASE WHEN cc = 'DE' THEN 'EU' ELSE 'other' END"}
"""
    tables, _ = _map(text, frame)
    assert tables["warehouses"].select("warehouse_id", "country", "capacity_units", "region").rows() == [
        ("W-DE", "DE", 250, "EU")
    ]


# ---------------------------------------------------------------------------------------------------------
# Bad mappings: one test per error class; each message names file:line, key, rule and fix
# ---------------------------------------------------------------------------------------------------------
def test_error_unknown_source_column() -> None:
    message = _error(_WH_MAPPING.replace("warehouse_id: wh", "warehouse_id: whs"))
    assert message.startswith("m.yaml:5: tables.warehouses.columns.warehouse_id: unknown source column 'whs'")
    assert "did you mean 'wh'" in message


def test_error_unknown_target_column() -> None:
    message = _error(_WH_MAPPING + "      capacity: cap\n")
    assert message.startswith(
        "m.yaml:8: tables.warehouses.columns.capacity: unknown target column 'capacity'"
    )
    assert "did you mean capacity_units" in message


def test_error_unknown_table() -> None:
    message = _error(_WH_MAPPING.replace("  warehouses:", "  warehouse:"))
    assert message.startswith("m.yaml:3: tables.warehouse: unknown table 'warehouse'")
    assert "did you mean warehouses" in message


def test_error_bad_expression() -> None:
    message = _error(_WH_MAPPING.replace("capacity_units: cap", 'capacity_units: {sql: "cap +"}'))
    assert message.startswith("m.yaml:7: tables.warehouses.columns.capacity_units: bad expression 'cap +'")
    assert "Fix:" in message
    # Parses, but fails on the data: 'x' is not a number (the message names the value and says TRY_CAST).
    message = _error(_WH_MAPPING.replace("capacity_units: cap", 'capacity_units: {sql: "CAST(cap AS INT)"}'))
    assert message.startswith("m.yaml:7: tables.warehouses.columns.capacity_units: bad expression")
    assert '["x"]' in message and "TRY_CAST" in message
    assert "\n" not in message


def test_error_bad_time_zone() -> None:
    message = _error("source: {timezone: Mars/Olympus}\n" + _WH_MAPPING)
    assert message.startswith("m.yaml:1: source.timezone: 'Mars/Olympus' is not an IANA time zone")
    assert "Europe/Berlin" in message
    assert _error(_WH_MAPPING, assume_timezone="Berlin").startswith(
        "--assume-timezone: 'Berlin' is not an IANA"
    )


def test_error_value_not_in_map_without_default() -> None:
    message = _error(
        _WH_MAPPING.replace("country: {country: land}", "country: {map: land, values: {Deutschland: DE}}")
    )
    assert message.startswith("m.yaml:6: tables.warehouses.columns.country.values: source column 'land' has")
    assert "'Frankreich' (1 row, first row 2)" in message
    assert "set `default:`" in message


def test_error_map_value_outside_the_vocabulary() -> None:
    frame = pl.DataFrame({"id": ["S1"], "t": ["2025-01-01T00:00:00Z"], "cc": ["DE"], "e": ["scan"]})
    text = "tables:\n  shipment_events:\n    columns:\n      shipment_id: id\n      event_at: t\n"
    text += "      country: cc\n"
    message = _error(text + "      event: {map: e, values: {scan: scanned}}\n", frame)
    assert message.startswith(
        "m.yaml:7: tables.shipment_events.columns.event.values.scan: 'scanned' is not a value"
    )
    assert "picked_up" in message


def test_error_yaml_syntax() -> None:
    message = _error("tables:\n  warehouses:\n    columns: {warehouse_id: wh\n")
    assert re.match(r"m\.yaml:4:\d+: YAML syntax error", message)
    assert "indentation and quoting" in message


def test_error_missing_required_contract_column() -> None:
    message = _error(_WH_MAPPING.replace("      capacity_units: cap\n", ""))
    assert message.startswith("m.yaml:4: tables.warehouses.columns: missing required contract column(s)")
    assert "capacity_units (Int64, e.g. '250000')" in message


def test_error_naive_timestamps_without_a_time_zone() -> None:
    message = _error(_EVENTS_MAPPING.replace("timezone: Europe/Berlin, ", ""), _EVENTS)
    assert message.startswith("m.yaml:6: tables.shipment_events.events.0.at: source column 'handover' holds")
    assert "--assume-timezone" in message


def test_error_unknown_key_and_unknown_event() -> None:
    message = _error(_WH_MAPPING.replace("countries:", "cuntries:"))
    assert message.startswith("m.yaml:1: cuntries: unknown key 'cuntries'")
    message = _error(_EVENTS_MAPPING.replace("event: picked_up", "event: shipped"), _EVENTS)
    assert message.startswith("m.yaml:6: tables.shipment_events.events.0.event: unknown event 'shipped'")


# ---------------------------------------------------------------------------------------------------------
# The marketplace example of docs/adapters.md, end to end
# ---------------------------------------------------------------------------------------------------------
ORDERS_CSV = """\
order_id,purchased_at,handed_to_carrier_at,delivered_at,promised_date,seller_country,seller_city,buyer_country,buyer_region,service,carrier,order_status,order_value_eur,shipping_fee_eur,weight_g,category,items
A1001,2025-03-01 10:15:00,2025-03-02 16:40:00,2025-03-06 11:02:00,10.03.2025,Deutschland,Leipzig,Frankreich,IDF,Express,DHL,delivered,59.90,6.90,420,toys,2
A1002,2025-03-01 12:00:00,2025-03-03 09:10:00,,14.03.2025,China,Shenzhen,Viet Nam,HN,Standard,YunExpress,shipped,12.50,2.10,150,electronics,1
A1003,2025-03-02 08:30:00,,,15.03.2025,Deutschland,Leipzig,Côte d'Ivoire,AB,Pickup,DHL,shipped,30.00,9.90,800,apparel,1
A1004,2025-03-02 09:00:00,2025-03-02 18:00:00,2025-03-05 10:00:00,08.03.2025,Deutschland,Leipzig,Korea,11,Express,DHL,delivered,80.00,12.00,1200,electronics,3
A1005,2025-03-03 14:00:00,2025-03-04 10:00:00,,12.03.2025,Deutschland,Leipzig,Turkey,34,Economy,DHL,shipped,20.00,4.50,300,toys,1
A1006,2025-03-30 02:30:00,2025-03-30 10:00:00,2025-04-02 09:00:00,05.04.2025,Allemagne,Berlin,Espagne,MD,Express,UPS,delivered,45.00,7.00,500,toys,1
A1007,2025-03-31 09:00:00,,,09.04.2025,Deutschland,Leipzig,Narnia,NA,Express,DHL,shipped,15.00,3.00,200,toys,1
A1008,2025-03-31 10:00:00,,,09.04.2025,Deutschland,Leipzig,Österreich,9,Express,DHL,shipped,15.00,3.00,200,books,1
A1009,2025-04-01 08:00:00,,,04.04.2025,Deutschland,Leipzig,Deutschland,BE,Domestic,DHL,canceled,25.00,4.90,350,toys,1
"""  # noqa: E501


@pytest.fixture()
def orders_csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV, encoding="utf-8")
    return path


def test_marketplace_csv_in_the_docs_is_the_one_tested() -> None:
    doc = (ROOT / "docs" / "adapters.md").read_text(encoding="utf-8")
    block = re.search(r"```csv\n(order_id,.*?)```", doc, re.S)
    assert block is not None and block.group(1) == ORDERS_CSV


def test_marketplace_mapping_shipments_events_and_rejections(orders_csv: Path) -> None:
    result = adapt_flat_file(orders_csv, MAPPINGS / "marketplace.yaml")
    ships = result.tables["shipments"]
    expected = pl.DataFrame(
        {
            "shipment_id": ["A1001", "A1002", "A1003", "A1005", "A1009"],
            "created_at": [
                _utc(2025, 3, 1, 9, 15),
                _utc(2025, 3, 1, 11),
                _utc(2025, 3, 2, 7, 30),
                _utc(2025, 3, 3, 13),
                _utc(2025, 4, 1, 6),  # summer time: UTC+2
            ],
            "origin_country": ["DE", "CN", "DE", "DE", "DE"],
            "destination_country": ["FR", "VN", "CI", "TR", "DE"],
            "destination_region": ["FR-IDF", "VN-HN", "CI-AB", "TR-34", "DE-BE"],
            "mode": ["express", "postal", "dedicated_line", "postal", "domestic_parcel"],
            "promised_date": [date(2025, 3, d) for d in (10, 14, 15, 12)] + [date(2025, 4, 4)],
            "delivered_at": [_utc(2025, 3, 6, 10, 2), None, None, None, None],
            "status": ["delivered", "in_transit", "in_transit", "in_transit", "cancelled"],
            "weight_kg": [0.42, 0.15, 0.8, 0.3, 0.35],
            "declared_value_usd": [v * 1.08 for v in (59.90, 12.50, 30.00, 20.00, 25.00)],
        }
    )
    got = ships.select(expected.columns).with_columns(pl.col("mode", "status").cast(pl.String))
    assert_frame_equal(got, expected, check_dtypes=False)
    events = result.tables["shipment_events"]
    assert events.select("shipment_id", pl.col("event").cast(pl.String), "country").rows() == [
        ("A1001", "picked_up", "DE"),
        ("A1001", "delivered", "FR"),
        ("A1002", "picked_up", "CN"),
        ("A1005", "picked_up", "DE"),
    ]
    assert result.rejected.select("source_row", "column", "rule", "raw_value").rows() == [
        (4, "buyer_country", "country_ambiguous", "Korea"),
        (6, "purchased_at", "unparseable_datetime", "2025-03-30 02:30:00"),
        (7, "buyer_country", "country_unknown", "Narnia"),
        (8, "category", "value_not_in_map", "books"),
    ]
    assert result.notes["rows_in"] == 9 == result.notes["rows_mapped"] + result.notes["rows_rejected"]
    assert "incoterm" not in ships.columns  # not in the export: left out, no placeholder


def test_adapt_mapping_then_ingest_end_to_end(orders_csv: Path, tmp_path: Path) -> None:
    raw, validated = tmp_path / "raw", tmp_path / "validated"
    args = ["adapt", "mapping", "--src", str(orders_csv), "--mapping", str(MAPPINGS / "marketplace.yaml")]
    result = runner.invoke(app, [*args, "--out", str(raw)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in raw.iterdir()) == [
        "_adapter_rejected.parquet",
        "_adapter_report.json",
        "shipment_events.parquet",
        "shipments.parquet",
    ]
    report = ingest(raw, validated)
    assert {k: (c.rows_in, c.valid) for k, c in report.tables.items()} == {
        "shipments": (5, 5),
        "shipment_events": (4, 4),
    }


def test_adapt_mapping_writes_nothing_on_a_bad_mapping(orders_csv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((MAPPINGS / "marketplace.yaml").read_text().replace("order_id\n", "order_no\n", 1))
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["adapt", "mapping", "--src", str(orders_csv), "--mapping", str(bad), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "unknown source column 'order_no'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_read_mapping_and_read_flat_errors(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        read_mapping(tmp_path / "missing.yaml")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ValueError, match="not a .csv"):
        read_flat(tmp_path / "x.xlsx")


# ---------------------------------------------------------------------------------------------------------
# SCMS through the mapping file vs the code adapter (real file)
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_scms_mapping_matches_the_code_adapter(shared_data: Path) -> None:
    src = shared_data / "scms_shipment_pricing"
    code = adapt_scms(read_source("scms", src)).tables["shipments"]
    mapped = adapt_flat_file(src, MAPPINGS / "scms.yaml")
    ships = mapped.tables["shipments"]
    assert mapped.notes["rows_in"] == 10_324 == mapped.notes["rows_mapped"] + mapped.notes["rows_rejected"]
    assert (code.height, ships.height) == (5_788, 5_786)
    # The two the mapping rejects: one line's site has no known country (the code adapter takes the site of
    # the highest-value line with a known country instead).
    assert set(code["shipment_id"]) - set(ships["shipment_id"]) == {"ASN-11528", "ASN-18722"}
    assert set(ships["shipment_id"]) <= set(code["shipment_id"])
    same = [c for c in ships.columns if c not in ("origin_country", "origin_hub")]
    joined = code.select(same).join(ships.select(same), on="shipment_id", suffix="_m")
    for column in same[1:]:
        equal = joined.select(pl.col(column).eq_missing(pl.col(f"{column}_m")).all()).item()
        assert equal, column
    multi_site = code.join(ships, on="shipment_id").filter(
        pl.col("origin_country") != pl.col("origin_country_right")
    )
    assert multi_site.height == 45  # several manufacturing sites: first line vs highest-value line
    assert "weight_kg" not in ships.columns and "shipping_cost_usd" not in ships.columns
    counts = validate_tables({"shipments": ships}).counts["shipments"]
    assert (counts.valid, counts.quarantined) == (5_776, 10)  # delivered before created, as with the code
