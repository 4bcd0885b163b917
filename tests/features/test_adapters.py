"""Tests for features.sources: mapping rules on hand-built frames, and row accounting on the real files."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.contract.countries import ISO2_CODES
from features.contract.schema import TABLES
from features.sources import (
    ADAPTERS,
    REJECTED_SCHEMA,
    AdapterResult,
    adapt_kcs,
    adapt_online_retail,
    adapt_scms,
    read_source,
)
from features.sources.online_retail import category_expr
from features.sources.scms import TRUCK_MODE

UTC = "UTC"


def _assert_contract(result: AdapterResult) -> None:
    """Every table has the exact contract columns and dtypes (then only String `attr_*` columns)."""
    for name, frame in result.tables.items():
        spec = TABLES[name]
        contract = list(spec.schema.items())
        assert list(frame.schema.items())[: len(contract)] == contract, name
        extra = frame.columns[len(contract) :]
        assert all(c.startswith("attr_") and frame.schema[c] == pl.String() for c in extra), extra
        assert frame.select(spec.key).is_duplicated().sum() == 0, name
    assert result.rejected.schema == REJECTED_SCHEMA
    assert result.rejected.get_column("source_row").is_unique().all()
    notes = result.notes
    assert notes["rows_in"] == notes["rows_mapped"] + notes["rows_rejected"]
    assert notes["rows_rejected"] == result.rejected.height


# ---------------------------------------------------------------------------------------------------------
# SCMS
# ---------------------------------------------------------------------------------------------------------
_SCMS_DEFAULTS: dict[str, Any] = {
    "Country": "Nigeria",
    "Fulfill Via": "Direct Drop",
    "Vendor INCO Term": "EXW",
    "Shipment Mode": "Air",
    "PQ First Sent to Client Date": "Pre-PQ Process",
    "PO Sent to Vendor Date": "3/2/10",
    "Scheduled Delivery Date": date(2010, 5, 1),
    "Delivered to Client Date": date(2010, 5, 1),
    "Product Group": "ARV",
    "Vendor": "Aurobindo Pharma Limited",
    "Line Item Quantity": 10,
    "Line Item Value": 1000.0,
    "Manufacturing Site": "Aurobindo Unit III, India",
    "Weight (Kilograms)": "100",
    "Freight Cost (USD)": "500",
}


def _scms(*lines: dict[str, Any]) -> pl.DataFrame:
    """SCMS lines: each dict needs `ID` and `ASN/DN #`; other columns default to `_SCMS_DEFAULTS`."""
    rows = [{**_SCMS_DEFAULTS, **line} for line in lines]
    return pl.DataFrame(rows, schema_overrides={"ID": pl.Int64(), "Line Item Quantity": pl.Int64()})


def _one(result: AdapterResult, column: str) -> Any:
    return result.tables["shipments"].get_column(column).item()


def test_adapt_scms_pointer_shared_weight_counted_once() -> None:
    raw = _scms(
        {"ID": 10, "ASN/DN #": "ASN-1"},
        {
            "ID": 11,
            "ASN/DN #": "ASN-1",
            "Weight (Kilograms)": "See ASN-1 (ID#:10)",
            "Freight Cost (USD)": "See ASN-1 (ID#:10)",
            "Line Item Value": 250.0,
            "Line Item Quantity": 5,
        },
        {"ID": 12, "ASN/DN #": "ASN-2", "Weight (Kilograms)": "40", "Freight Cost (USD)": "80.5"},
    )
    result = adapt_scms(raw)
    expected = pl.DataFrame(
        {
            "shipment_id": ["ASN-1", "ASN-2"],
            "weight_kg": [100.0, 40.0],
            "shipping_cost_usd": [500.0, 80.5],
            "declared_value_usd": [1250.0, 1000.0],
            "item_count": [15, 10],
        },
        schema_overrides={"item_count": pl.Int32()},
    )
    assert_frame_equal(result.tables["shipments"].select(expected.columns), expected)
    assert result.notes["weight_pointer_lines"] == 1
    assert result.notes["rows_mapped"] == 3
    assert result.imputed.height == 0
    _assert_contract(result)


def test_adapt_scms_unknown_weight_and_included_freight_are_imputed_and_logged() -> None:
    raw = _scms(
        {
            "ID": 1,
            "ASN/DN #": "ASN-1",
            "Weight (Kilograms)": "Weight Captured Separately",
            "Freight Cost (USD)": "Freight Included in Commodity Cost",
            "Line Item Value": 1000.0,
        }
    )
    result = adapt_scms(raw)
    assert _one(result, "weight_kg") == pytest.approx(1000.0 * 0.0139)
    assert _one(result, "shipping_cost_usd") == 0.0
    assert result.imputed.select("column", "rule").sort("column").rows() == [
        ("shipping_cost_usd", "freight_included_zero"),
        ("weight_kg", "weight_from_value_ratio"),
    ]
    assert result.notes["weight_from_value_ratio"] == 1


def test_adapt_scms_freight_invoiced_separately_from_weight_rate() -> None:
    raw = _scms(
        {
            "ID": 1,
            "ASN/DN #": "ASN-1",
            "Weight (Kilograms)": "10",
            "Freight Cost (USD)": "Invoiced Separately",
            "Shipment Mode": "Ocean",
        }
    )
    result = adapt_scms(raw)
    assert _one(result, "shipping_cost_usd") == pytest.approx(10 * 1.68)
    assert _one(result, "mode") == "sea"


@pytest.mark.parametrize(
    ("fulfill", "po", "pq", "expected"),
    [
        pytest.param("Direct Drop", "3/2/10", "1/15/10", date(2010, 3, 2), id="direct-drop-po-date"),
        pytest.param("Direct Drop", "Date Not Captured", "1/15/10", date(2010, 1, 15), id="direct-drop-pq"),
        pytest.param("From RDC", "N/A - From RDC", "11/13/09", date(2009, 11, 13), id="rdc-pq-date"),
        pytest.param("From RDC", "N/A - From RDC", "Pre-PQ Process", None, id="rdc-no-date-rejected"),
    ],
)
def test_adapt_scms_created_at(fulfill: str, po: str, pq: str, expected: date | None) -> None:
    raw = _scms(
        {
            "ID": 1,
            "ASN/DN #": "DN-1",
            "Fulfill Via": fulfill,
            "PO Sent to Vendor Date": po,
            "PQ First Sent to Client Date": pq,
        }
    )
    result = adapt_scms(raw)
    if expected is None:
        assert result.tables["shipments"].height == 0
        assert result.rejected.select("source_row", "rule").rows() == [(1, "no_order_date")]
    else:
        created = result.tables["shipments"].get_column("created_at")
        assert created.dtype == pl.Datetime("us", UTC)
        assert created.dt.date().item() == expected
        assert created.dt.hour().item() == 0


@pytest.mark.parametrize(
    ("raw_mode", "truck_mode", "expected", "rule"),
    [
        pytest.param("Air", None, "air", None, id="air"),
        pytest.param("Air Charter", None, "air", None, id="air-charter"),
        pytest.param("Ocean", None, "sea", None, id="ocean"),
        pytest.param("Truck", None, None, "mode_not_in_contract", id="truck-rejected-when-no-mode-given"),
        pytest.param("Truck", TRUCK_MODE, "road", None, id="truck-is-road-by-default"),
        pytest.param("Truck", "rail", "rail", None, id="truck-mapped-on-request"),
        pytest.param("N/A", None, None, "mode_missing", id="na"),
    ],
)
def test_adapt_scms_mode(
    raw_mode: str, truck_mode: str | None, expected: str | None, rule: str | None
) -> None:
    raw = _scms({"ID": 1, "ASN/DN #": "ASN-1", "Shipment Mode": raw_mode})
    result = adapt_scms(raw, truck_mode=truck_mode)
    if expected is None:
        assert result.rejected.get_column("rule").to_list() == [rule]
    else:
        assert _one(result, "mode") == expected


def test_adapt_scms_truck_mode_must_be_a_contract_mode() -> None:
    with pytest.raises(ValueError, match="truck_mode"):
        adapt_scms(_scms({"ID": 1, "ASN/DN #": "ASN-1"}), truck_mode="truck")


def test_adapt_scms_fulfilment_origin_carrier_incoterm() -> None:
    raw = _scms(
        {"ID": 1, "ASN/DN #": "ASN-1", "Vendor INCO Term": "EXW"},
        {
            "ID": 2,
            "ASN/DN #": "ASN-2",
            "Vendor INCO Term": "DDP",
            "Vendor": "CIPLA LIMITED",
            "Manufacturing Site": "Cipla, Goa, India",
        },
        {
            "ID": 3,
            "ASN/DN #": "DN-3",
            "Fulfill Via": "From RDC",
            "Vendor INCO Term": "N/A - From RDC",
            "Vendor": "SCMS from RDC",
            "PO Sent to Vendor Date": "N/A - From RDC",
            "PQ First Sent to Client Date": "1/5/10",
            "Manufacturing Site": "Trinity Biotech, Plc",
            "Product Group": "HRDT",
            "Country": "Côte d'Ivoire",
        },
        {"ID": 4, "ASN/DN #": "ASN-4", "Manufacturing Site": "Not Applicable"},
    )
    result = adapt_scms(raw)
    got = (
        result.tables["shipments"]
        .sort("shipment_id")
        .select(
            "shipment_id",
            "origin_country",
            "origin_hub",
            "destination_country",
            "carrier",
            "incoterm",
            "hs_code",
            "seller_id",
            "warehouse_id",
        )
    )
    expected = pl.DataFrame(
        {
            "shipment_id": ["ASN-1", "ASN-2", "DN-3"],
            "origin_country": ["IN", "IN", "IE"],
            "origin_hub": ["AUROBINDO-U3", "CIPLA-GOA", "RDC"],
            "destination_country": ["NG", "NG", "CI"],
            "carrier": ["SCMS", "CIPLA LIMITED", "SCMS-RDC"],
            "incoterm": ["EXW", "DDP", "DAP"],
            "hs_code": ["300490", "300490", "382200"],
            "seller_id": ["Aurobindo Pharma Limited", "CIPLA LIMITED", "SCMS from RDC"],
            "warehouse_id": [None, None, "RDC"],
        },
        schema_overrides={"incoterm": TABLES["shipments"].schema["incoterm"]},
    )
    assert_frame_equal(got, expected)
    assert result.rejected.select("source_row", "rule", "raw_value").rows() == [
        (4, "origin_unknown", "Not Applicable")
    ]
    _assert_contract(result)


def test_adapt_scms_origin_is_the_highest_value_line_with_a_known_site() -> None:
    raw = _scms(
        {"ID": 1, "ASN/DN #": "ASN-1", "Manufacturing Site": "Cipla, Goa, India", "Line Item Value": 10.0},
        {"ID": 2, "ASN/DN #": "ASN-1", "Manufacturing Site": "Roche Basel", "Line Item Value": 90.0},
        {"ID": 3, "ASN/DN #": "ASN-1", "Manufacturing Site": "Not Applicable", "Line Item Value": 500.0},
    )
    result = adapt_scms(raw)
    assert (_one(result, "origin_country"), _one(result, "origin_hub")) == ("CH", "ROCHE-BASEL")
    assert result.notes["multi_site_shipments"] == 1


def test_adapt_scms_keeps_delivery_before_order_for_the_validator() -> None:
    raw = _scms(
        {
            "ID": 1,
            "ASN/DN #": "ASN-1",
            "PO Sent to Vendor Date": "6/1/10",
            "Delivered to Client Date": date(2010, 5, 1),
        }
    )
    result = adapt_scms(raw)
    assert result.tables["shipments"].height == 1
    assert result.notes["delivered_before_created"] == 1


def test_adapt_scms_rejects_every_line_of_a_rejected_shipment() -> None:
    raw = _scms(
        {"ID": 7, "ASN/DN #": "ASN-1"},
        {"ID": 8, "ASN/DN #": "ASN-2", "Shipment Mode": "N/A"},
        {"ID": 9, "ASN/DN #": "ASN-2", "Shipment Mode": "N/A"},
    )
    result = adapt_scms(raw)
    expected = pl.DataFrame(
        {
            "source_row": [2, 3],
            "column": ["Shipment Mode"] * 2,
            "rule": ["mode_missing"] * 2,
            "raw_value": ["N/A"] * 2,
            "detail": ["Shipment Mode is N/A"] * 2,
        },
        schema=REJECTED_SCHEMA,
    )
    assert_frame_equal(result.rejected, expected)
    assert (result.notes["shipments_rejected"], result.notes["rows_mapped"]) == (1, 1)
    _assert_contract(result)


# ---------------------------------------------------------------------------------------------------------
# Online Retail
# ---------------------------------------------------------------------------------------------------------
def _retail(rows: list[tuple[str, str, str | None, int, datetime, float, int | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "InvoiceNo": pl.String(),
            "StockCode": pl.String(),
            "Description": pl.String(),
            "Quantity": pl.Int32(),
            "InvoiceDate": pl.Datetime("us"),
            "UnitPrice": pl.Float64(),
            "CustomerID": pl.Int32(),
            "Country": pl.String(),
        },
        orient="row",
    )


D1 = datetime(2011, 3, 1, 9, 0)
D1_LATER = datetime(2011, 3, 1, 15, 0)
D2 = datetime(2011, 3, 8, 10, 0)


def test_adapt_online_retail_aggregates_day_market_sku_in_usd() -> None:
    raw = _retail(
        [
            ("500001", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, D1, 2.0, 1, "United Kingdom"),
            ("500002", "85123a", "WHITE HANGING HEART T-LIGHT HOLDER", 2, D1_LATER, 4.0, 2, "United Kingdom"),
            ("500003", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 3, D1, 3.0, 3, "EIRE"),
        ]
    )
    result = adapt_online_retail(raw)
    expected = pl.DataFrame(
        {
            "date": [date(2011, 3, 1)] * 2,
            "warehouse_id": ["WH-GB", "WH-IE"],
            "sku_id": ["85123A"] * 2,
            "units_sold": [8, 3],
            "on_hand_end": [None, None],
            "is_stockout": [False, False],
            "price_usd": [(6 * 2.0 + 2 * 4.0) / 8 * 1.6, 3.0 * 1.6],
            "is_promo": [None, None],
        },
        schema=TABLES["warehouse_sales"].schema,
    )
    assert_frame_equal(result.tables["warehouse_sales"], expected)
    assert result.notes["stock_codes_upper_cased_lines"] == 1
    assert result.tables["warehouses"].select("warehouse_id", "country").rows() == [
        ("WH-GB", "GB"),
        ("WH-IE", "IE"),
    ]
    _assert_contract(result)


@pytest.mark.parametrize(
    ("code", "description"),
    [
        pytest.param("POST", "POSTAGE", id="postage"),
        pytest.param("m", "Manual", id="manual-lowercase"),
        pytest.param("gift_0001_20", "Dotcomgiftshop Gift Voucher", id="voucher"),
        pytest.param("AMAZONFEE", "AMAZON FEE", id="fee"),
    ],
)
def test_adapt_online_retail_rejects_non_product_codes(code: str, description: str) -> None:
    raw = _retail([("500001", code, description, 1, D1, 18.0, 1, "France")])
    result = adapt_online_retail(raw)
    assert result.tables["warehouse_sales"].height == 0
    assert result.rejected.select("source_row", "column", "rule").rows() == [
        (1, "StockCode", "non_product_code")
    ]


def test_adapt_online_retail_cancellations_reported_not_subtracted() -> None:
    raw = _retail(
        [
            ("500001", "22423", "REGENCY CAKESTAND 3 TIER", 10, D1, 10.0, 7, "Germany"),  # cancelled same day
            ("C500002", "22423", "REGENCY CAKESTAND 3 TIER", -10, D1_LATER, 10.0, 7, "Germany"),
            ("500003", "22423", "REGENCY CAKESTAND 3 TIER", 4, D1, 10.0, 8, "Germany"),  # kept
            (
                "500004",
                "22423",
                "REGENCY CAKESTAND 3 TIER",
                5,
                D1,
                10.0,
                9,
                "Germany",
            ),  # cancelled a week later
            ("C500005", "22423", "REGENCY CAKESTAND 3 TIER", -5, D2, 10.0, 9, "Germany"),
        ]
    )
    result = adapt_online_retail(raw)
    assert result.tables["warehouse_sales"].select("date", "units_sold").rows() == [(date(2011, 3, 1), 9)]
    assert result.rejected.select("source_row", "rule").rows() == [
        (1, "cancelled_same_day"),
        (2, "cancellation"),
        (5, "cancellation"),
    ]
    assert result.notes["cancelled_units_not_subtracted"] == 15
    _assert_contract(result)


def test_adapt_online_retail_rejects_adjustments_free_lines_and_non_countries() -> None:
    raw = _retail(
        [
            ("500001", "21733", None, -20, D1, 0.0, None, "United Kingdom"),
            ("500002", "21733", "RED HANGING HEART", 5, D1, 0.0, 1, "United Kingdom"),
            ("500003", "21733", "RED HANGING HEART", 5, D1, 2.5, 1, "Unspecified"),
            ("500004", "21733", "RED HANGING HEART", 5, D1, 2.5, 1, "European Community"),
            ("500005", "21733", "RED HANGING HEART", 5, D1, 2.5, 1, "Channel Islands"),
        ]
    )
    result = adapt_online_retail(raw)
    assert result.rejected.select("source_row", "rule").rows() == [
        (1, "non_positive_quantity"),
        (2, "non_positive_price"),
        (3, "country_unknown"),
        (4, "country_unknown"),
    ]
    assert result.tables["warehouses"].get_column("warehouse_id").to_list() == ["WH-JE"]


def test_adapt_online_retail_skus_reference_table() -> None:
    raw = _retail(
        [
            ("500001", "85099B", "JUMBO BAG RED RETROSPOT", 10, D1, 1.0, 1, "France"),
            ("500002", "85099B", "JUMBO BAG RED RETROSPOT", 10, D2, 3.0, 1, "France"),
            ("500003", "85099B", "JUMBO BAG RED RETROSPOT", 10, D2, 2.0, 2, "France"),
        ]
    )
    skus = adapt_online_retail(raw).tables["skus"]
    assert skus.select("sku_id", "category", "hs_code", "unit_cost_usd", "price_usd").rows() == [
        ("85099B", "bags", "420292", pytest.approx(1.6), pytest.approx(3.2))
    ]


@pytest.mark.parametrize(
    ("description", "category"),
    [
        pytest.param("PAPER CHAIN KIT 50'S CHRISTMAS", "christmas", id="christmas-before-stationery"),
        pytest.param("SET OF 3 CAKE TINS PANTRY DESIGN", "kitchen_dining", id="kitchen"),
        pytest.param("WOODEN PICTURE FRAME WHITE FINISH", "home_decor", id="decor"),
        pytest.param("ASSORTED COLOUR BIRD ORNAMENT", "garden", id="bird-is-garden-before-decor"),
        pytest.param("WHITE HANGING HEART T-LIGHT HOLDER", "lighting_candles", id="lighting-before-decor"),
        pytest.param("SOMBRERO", "other", id="no-keyword"),
        pytest.param(None, "other", id="null"),
    ],
)
def test_category_expr(description: str | None, category: str) -> None:
    frame = pl.DataFrame({"d": [description]}, schema={"d": pl.String()})
    assert frame.select(category_expr(pl.col("d"))).item() == category


# ---------------------------------------------------------------------------------------------------------
# KCS
# ---------------------------------------------------------------------------------------------------------
def _kcs(n: int = 3, **overrides: list[Any]) -> pl.DataFrame:
    base: dict[str, list[Any]] = {
        "Declaration ID": [f"9000000{i}" for i in range(n)],
        "Date": [date(2020, 1, 2)] * n,
        "Office ID": ["30"] * n,
        "Process Type": ["B"] * n,
        "Import Type": ["11"] * n,
        "Import Use": ["21"] * n,
        "Payment Type": ["11"] * n,
        "Mode of Transport": ["10"] * n,
        "Declarant ID": ["DEC1"] * n,
        "Importer ID": ["IMP1"] * n,
        "Seller ID": ["S1"] * n,
        "Courier ID": [None] * n,
        "HS6 Code": ["851762"] * n,
        "Country of Departure": ["CN"] * n,
        "Country of Origin": ["CN"] * n,
        "Tax Rate": [8.0] * n,
        "Tax Type": ["A"] * n,
        "Country of Origin Indicator": ["Y"] * n,
        "Net Mass": [1.5] * n,
        "Item Price": [118000.0] * n,
        "Fraud": [0] * n,
        "Critical Fraud": [0] * n,
        "split": ["train"] * n,
    }
    base.update(overrides)
    return pl.DataFrame(
        base, schema_overrides={"Fraud": pl.Int8(), "Critical Fraud": pl.Int8(), "Courier ID": pl.String()}
    )


def test_adapt_kcs_labels_value_and_origin() -> None:
    raw = _kcs(Fraud=[0, 1, 1], **{"Critical Fraud": [0, 1, 2], "Country of Origin": ["CN", "ZZ", "Korea"]})
    result = adapt_kcs(raw)
    got = result.tables["customs_declarations"].select(
        "declaration_id",
        "declared_at",
        "destination_country",
        "declared_value_usd",
        "is_inspected",
        "outcome",
        "origin_country",
        "is_fraud",
        "fraud_severity",
        "attr_split",
        "attr_transport_mode",
    )
    expected = pl.DataFrame(
        {
            "declaration_id": ["90000000", "90000001", "90000002"],
            "declared_at": [datetime(2020, 1, 2)] * 3,
            "destination_country": ["KR"] * 3,
            "declared_value_usd": [100.0] * 3,
            "is_inspected": [True] * 3,
            "outcome": ["released", "duty_reassessed", "duty_reassessed"],
            "origin_country": ["CN", None, None],
            "is_fraud": [False, True, True],
            "fraud_severity": [0, 1, 2],
            "attr_split": ["train"] * 3,
            "attr_transport_mode": ["10"] * 3,
        },
        schema_overrides={
            "declared_at": pl.Datetime("us"),
            "fraud_severity": pl.Int8(),
            "outcome": TABLES["customs_declarations"].schema["outcome"],
        },
    ).with_columns(pl.col("declared_at").dt.replace_time_zone(UTC))
    assert_frame_equal(got, expected)
    assert result.notes["origin_country_invalid_to_null"] == 2
    _assert_contract(result)


def test_adapt_kcs_rejects_duplicate_id_and_bad_hs_code() -> None:
    raw = _kcs(**{"Declaration ID": ["1", "1", "2"], "HS6 Code": ["851762", "851762", "8517"]}).drop("split")
    result = adapt_kcs(raw)
    assert result.rejected.select("source_row", "rule").rows() == [
        (2, "duplicate_declaration_id"),
        (3, "invalid_hs_code"),
    ]
    assert result.tables["customs_declarations"].get_column("attr_split").to_list() == [None]
    _assert_contract(result)


# ---------------------------------------------------------------------------------------------------------
# Reader and registry
# ---------------------------------------------------------------------------------------------------------
def test_read_source_kcs_folder_adds_split_in_publisher_order(tmp_path: Path) -> None:
    _kcs(1).drop("split").write_parquet(tmp_path / "customs_declarations_test.parquet")
    _kcs(2).drop("split").write_parquet(tmp_path / "customs_declarations_train.parquet")
    frame = read_source("kcs", tmp_path)
    assert frame.get_column("split").to_list() == ["train", "train", "test"]


def test_read_source_file_or_folder_and_unknown_name(tmp_path: Path) -> None:
    raw = _scms({"ID": 1, "ASN/DN #": "ASN-1"})
    raw.write_parquet(tmp_path / "scms.parquet")
    assert_frame_equal(read_source("scms", tmp_path), raw)
    assert_frame_equal(read_source("scms", tmp_path / "scms.parquet"), raw)
    with pytest.raises(ValueError, match="unknown source"):
        read_source("nope", tmp_path)  # type: ignore[arg-type]


def test_adapters_registry() -> None:
    assert ADAPTERS == {"scms": adapt_scms, "online-retail": adapt_online_retail, "kcs": adapt_kcs}


# ---------------------------------------------------------------------------------------------------------
# Real data (../shared/data)
# ---------------------------------------------------------------------------------------------------------
def _shared_data() -> Path:
    env = os.environ.get("TRANSITCAST_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _real(name: str, folder: str) -> tuple[pl.DataFrame, AdapterResult]:
    src = _shared_data() / folder
    if not src.exists():
        pytest.skip(f"{src} not found (set TRANSITCAST_SHARED_DATA)")
    raw = read_source(name, src)  # type: ignore[arg-type]
    return raw, ADAPTERS[name](raw)


@pytest.fixture(scope="module")
def real_scms() -> tuple[pl.DataFrame, AdapterResult]:
    return _real("scms", "scms_shipment_pricing")


@pytest.fixture(scope="module")
def real_retail() -> tuple[pl.DataFrame, AdapterResult]:
    return _real("online-retail", "online_retail_uci")


@pytest.fixture(scope="module")
def real_kcs() -> tuple[pl.DataFrame, AdapterResult]:
    return _real("kcs", "customs_kcs_synthetic")


def _assert_valid_values(frame: pl.DataFrame) -> None:
    for c in frame.columns:
        if (c.endswith("_country") or c == "country") and not c.startswith("attr_"):
            assert set(frame.get_column(c).drop_nulls().unique()) <= ISO2_CODES, c
        if c == "hs_code":
            assert frame.get_column(c).str.contains(r"^\d{6}$").all()
        if c.endswith(("_kg", "_usd")) or c in ("units_sold", "item_count"):
            assert (frame.get_column(c).drop_nulls() >= 0).all(), c


@pytest.mark.realdata
def test_real_scms_accounting_and_contract(real_scms: tuple[pl.DataFrame, AdapterResult]) -> None:
    raw, result = real_scms
    notes = result.notes
    assert (notes["rows_in"], notes["shipments_in"]) == (10_324, 7_030)
    assert notes["shipments_mapped"] + notes["shipments_rejected"] == 7_030
    assert notes["weight_pointer_lines"] == notes["freight_pointer_lines"] == 2_445
    assert notes["weight_pointer_unresolved"] == 0
    _assert_contract(result)
    shipments = result.tables["shipments"]
    _assert_valid_values(shipments)
    mapped_ids = set(shipments.get_column("shipment_id"))
    rejected_ids = set(raw.get_column("ASN/DN #").gather(result.rejected.get_column("source_row") - 1))
    assert not mapped_ids & rejected_ids
    assert len(mapped_ids | rejected_ids) == 7_030
    # Truck is road freight; no shipment is relabelled to a mode it did not travel by.
    assert notes.get("rejected_shipments:mode_not_in_contract", 0) == 0
    assert shipments.get_column("mode").is_in(["air", "sea", "road"]).all()
    assert shipments.filter(pl.col("mode") == "road").height > 1_000
    # Direct Drop vs From RDC stays separable.
    assert shipments.filter(pl.col("warehouse_id") == "RDC").get_column("origin_hub").eq("RDC").all()


@pytest.mark.realdata
def test_real_online_retail_accounting_and_contract(real_retail: tuple[pl.DataFrame, AdapterResult]) -> None:
    _, result = real_retail
    assert result.notes["rows_in"] == 541_909
    _assert_contract(result)
    sales, skus, warehouses = (result.tables[t] for t in ("warehouse_sales", "skus", "warehouses"))
    for frame in (sales, skus, warehouses):
        _assert_valid_values(frame)
    assert set(sales.get_column("sku_id")) == set(skus.get_column("sku_id"))
    assert set(sales.get_column("warehouse_id")) == set(warehouses.get_column("warehouse_id"))
    assert sales.get_column("units_sold").sum() == result.notes["units_sold"]
    assert (sales.get_column("units_sold") > 0).all()
    # The two 74,215- and 80,995-unit orders were cancelled minutes later: they are not demand.
    assert sales.get_column("units_sold").max() < 10_000
    assert result.notes["warehouses"] == 36


@pytest.mark.realdata
def test_real_kcs_accounting_and_labels(real_kcs: tuple[pl.DataFrame, AdapterResult]) -> None:
    _, result = real_kcs
    assert (result.notes["rows_in"], result.notes["rows_rejected"]) == (54_000, 0)
    _assert_contract(result)
    decl = result.tables["customs_declarations"]
    _assert_valid_values(decl)
    assert decl.get_column("is_fraud").mean() == pytest.approx(0.216, abs=0.005)
    assert decl.get_column("attr_split").value_counts().sort("attr_split").rows() == [
        ("test", 8_481),
        ("train", 37_385),
        ("valid", 8_134),
    ]
    assert ((decl.get_column("fraud_severity") > 0) == decl.get_column("is_fraud")).all()
