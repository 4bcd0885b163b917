"""Contract rules: each has a failing example on a hand-built frame; properties of validation."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.contract.schema import TABLES, table_spec
from features.contract.validation import QUARANTINE_SCHEMA, validate_table
from features.ingest import validate_tables
from tests.conftest import example_rows


@pytest.mark.parametrize("table", list(TABLES))
def test_validate_table_contract_example_row_is_valid(table: str) -> None:
    result = validate_table(example_rows(table), table_spec(table))
    assert result.quarantine.height == 0, result.quarantine.to_dicts()
    assert result.valid.schema == table_spec(table).schema


SHIPMENT_CASES = [
    pytest.param({"weight_kg": ["abc"]}, "weight_kg", "type", id="weight-not-a-number"),
    pytest.param({"item_count": ["2.5"]}, "item_count", "type", id="item-count-not-integer"),
    pytest.param({"mode": ["teleport"]}, "mode", "vocabulary", id="unknown-mode"),
    pytest.param(
        {"created_at": ["2025-03-01 08:15:00"]}, "created_at", "timezone_missing", id="naive-timestamp"
    ),
    pytest.param({"created_at": ["01/03/2025"]}, "created_at", "type", id="not-iso-timestamp"),
    pytest.param({"carrier": [None]}, "carrier", "not_null", id="missing-carrier"),
    pytest.param(
        {"destination_country": ["XX"]}, "destination_country", "iso2_country", id="unknown-country"
    ),
    pytest.param(
        {"destination_country": ["USA"]}, "destination_country", "iso2_country", id="alpha3-country"
    ),
    pytest.param({"hs_code": ["8518"]}, "hs_code", "hs_code_6_digits", id="short-hs-code"),
    pytest.param({"hs_code": ["85183000"]}, "hs_code", "hs_code_6_digits", id="10-digit-hs-code"),
    pytest.param({"weight_kg": ["-0.5"]}, "weight_kg", "non_negative", id="negative-weight"),
    pytest.param({"declared_value_usd": ["-1"]}, "declared_value_usd", "non_negative", id="negative-value"),
    pytest.param({"shipping_cost_usd": ["NaN"]}, "shipping_cost_usd", "finite", id="nan-cost"),
    pytest.param({"item_count": ["0"]}, "item_count", "positive", id="zero-items"),
    pytest.param(
        {"delivered_at": ["2025-02-28T00:00:00Z"]},
        "delivered_at",
        "delivered_after_created",
        id="delivered-early",
    ),
    pytest.param(
        {"status": ["in_transit"]}, "delivered_at", "delivered_iff_status_delivered", id="open-but-delivered"
    ),
    pytest.param(
        {"delivered_at": [None]}, "delivered_at", "delivered_iff_status_delivered", id="delivered-no-time"
    ),
    pytest.param(
        {"promised_date": ["2025-02-27"]}, "promised_date", "promised_after_created", id="promise-in-past"
    ),
    pytest.param(
        {"mode": ["domestic_parcel"]}, "mode", "domestic_same_country", id="domestic-parcel-across-border"
    ),
]


@pytest.mark.parametrize(("overrides", "column", "rule"), SHIPMENT_CASES)
def test_validate_table_shipments_rule_quarantines_row(overrides: dict, column: str, rule: str) -> None:
    raw = pl.concat([example_rows("shipments"), example_rows("shipments", shipment_id=["BAD"], **overrides)])
    result = validate_table(raw, table_spec("shipments"))
    assert result.valid["shipment_id"].to_list() == ["SH00000001"]
    q = result.quarantine.row(0, named=True)
    assert (q["row_number"], q["column"], q["rule"]) == (2, column, rule)
    assert q["raw_value"] == overrides.get(column, [None])[0] or rule.startswith("delivered_iff")


def test_validate_table_duplicate_key_keeps_first_occurrence() -> None:
    raw = example_rows("shipments", 3, shipment_id=["A", "B", "A"], carrier=["first", "x", "second"])
    result = validate_table(raw, table_spec("shipments"))
    assert sorted(result.valid["shipment_id"]) == ["A", "B"]
    assert result.valid.filter(pl.col("shipment_id") == "A")["carrier"].item() == "first"
    assert result.quarantine.select("row_number", "rule").rows() == [(3, "duplicate_key")]


def test_validate_table_duplicate_of_invalid_row_is_kept() -> None:
    raw = example_rows("shipments", 2, shipment_id=["A", "A"], weight_kg=["-1", "1"])
    result = validate_table(raw, table_spec("shipments"))
    assert result.valid.height == 1
    assert result.quarantine.select("row_number", "rule").rows() == [(1, "non_negative")]


def test_validate_table_lists_every_broken_rule_and_raw_row() -> None:
    raw = example_rows("shipments", weight_kg=["-1"], destination_country=["ZZ"])
    q = validate_table(raw, table_spec("shipments")).quarantine.row(0, named=True)
    assert set(q["violations"]) == {"non_negative:weight_kg", "iso2_country:destination_country"}
    assert '"weight_kg":"-1"' in q["raw_row"]


def _events(**cols: list[str | None]) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    return example_rows("shipment_events", n, **cols)


def _parents() -> dict[str, pl.DataFrame]:
    ships = example_rows("shipments", 2, shipment_id=["S1", "S2"])
    return {"shipments": validate_table(ships, table_spec("shipments")).valid}


EVENT_CASES = [
    pytest.param(
        _events(
            shipment_id=["S1", "NOPE"],
            event=["picked_up", "picked_up"],
            event_at=["2025-03-02T00:00:00Z", "2025-03-02T00:00:00Z"],
        ),
        [(2, "foreign_key")],
        id="unknown-shipment",
    ),
    pytest.param(
        _events(
            shipment_id=["S1", "S1"],
            event=["picked_up", "arrived_origin_hub"],
            event_at=["2025-02-01T00:00:00Z", "2025-03-02T00:00:00Z"],
        ),
        [(1, "event_before_created")],
        id="scan-before-creation",
    ),
    pytest.param(
        _events(
            shipment_id=["S1"] * 4,
            event=["picked_up", "linehaul_departed", "delivered", "linehaul_arrived"],
            event_at=[
                "2025-03-02T00:00:00Z",
                "2025-03-03T00:00:00Z",
                "2025-03-05T00:00:00Z",
                "2025-03-06T00:00:00Z",
            ],
        ),
        [(4, "event_order")],
        id="scan-after-delivery",
    ),
    pytest.param(
        _events(
            shipment_id=["S1"] * 4,
            event=["picked_up", "customs_released", "linehaul_departed", "linehaul_arrived"],
            event_at=[
                "2025-03-02T00:00:00Z",
                "2025-03-03T00:00:00Z",
                "2025-03-04T00:00:00Z",
                "2025-03-06T00:00:00Z",
            ],
        ),
        [(2, "event_order")],
        id="early-customs-release-blamed-not-the-rest",
    ),
    pytest.param(
        _events(
            shipment_id=["S1"] * 3,
            event=["picked_up", "delivered", "delivered"],
            event_at=["2025-03-02T00:00:00Z", "2025-03-05T00:00:00Z", "2025-03-07T00:00:00Z"],
        ),
        [(3, "event_after_terminal")],
        id="delivered-twice",
    ),
    pytest.param(
        _events(
            shipment_id=["S1"] * 2,
            event=["picked_up", "picked_up"],
            event_at=["2025-03-02T00:00:00Z", "2025-03-02T00:00:00Z"],
        ),
        [(2, "duplicate_key")],
        id="duplicate-scan",
    ),
]


_LEG_SCANS = {
    "shipment_id": ["S1"] * 6,
    "event": ["picked_up", "linehaul_departed", "picked_up", "linehaul_arrived", "delivered", "delivered"],
    "event_at": [f"2025-03-0{d}T00:00:00Z" for d in range(2, 8)],
}
EVENT_CASES += [
    pytest.param(
        _events(**_LEG_SCANS, leg_id=["A", "A", "B", "A", "A", "B"]),
        [],
        id="parallel-legs-each-in-order",
    ),
    pytest.param(
        _events(**_LEG_SCANS, leg_id=[None] * 6),
        [(3, "event_order"), (6, "event_after_terminal")],
        id="same-scans-without-legs-are-one-chain",
    ),
]


@pytest.mark.parametrize(("events", "expected"), EVENT_CASES)
def test_validate_table_events_rules(events: pl.DataFrame, expected: list[tuple[int, str]]) -> None:
    result = validate_table(events, table_spec("shipment_events"), parents=_parents())
    assert result.quarantine.select("row_number", "rule").rows() == expected
    assert result.valid.height + result.quarantine.height == events.height


def test_validate_table_events_delivery_retries_are_a_possible_order() -> None:
    events = _events(
        shipment_id=["S1"] * 5,
        event=["picked_up", "out_for_delivery", "delivery_failed", "out_for_delivery", "delivered"],
        event_at=[f"2025-03-0{d}T00:00:00Z" for d in range(2, 7)],
    )
    result = validate_table(events, table_spec("shipment_events"), parents=_parents())
    assert result.quarantine.height == 0


OTHER_CASES = [
    pytest.param(
        "customs_declarations",
        {"released_at": ["2025-03-05T00:00:00Z"]},
        "released_after_declared",
        id="released-before-declared",
    ),
    pytest.param("customs_declarations", {"outcome": ["vanished"]}, "vocabulary", id="unknown-outcome"),
    pytest.param("customs_declarations", {"is_inspected": ["maybe"]}, "type", id="not-a-boolean"),
    pytest.param(
        "replenishments",
        {"received_at": ["2025-01-01T00:00:00Z"]},
        "received_after_shipped",
        id="received-before-shipped",
    ),
    pytest.param("replenishments", {"mode": ["postal"]}, "replenishment_mode", id="postal-replenishment"),
    pytest.param("replenishments", {"units": ["0"]}, "positive", id="zero-units"),
    pytest.param("warehouse_sales", {"units_sold": ["-2"]}, "non_negative", id="negative-sales"),
    pytest.param("warehouse_sales", {"is_stockout": ["true"]}, "stockout_on_hand", id="stockout-with-stock"),
    pytest.param("warehouse_sales", {"date": ["2025-02-30"]}, "type", id="impossible-date"),
    pytest.param("warehouses", {"capacity_units": ["-10"]}, "non_negative", id="negative-capacity"),
    pytest.param("lanes", {"contract_transit_days": ["-1"]}, "non_negative", id="negative-transit-days"),
    pytest.param("skus", {"hs_code": ["ABC123"]}, "hs_code_6_digits", id="letters-in-hs-code"),
]


@pytest.mark.parametrize(("table", "overrides", "rule"), OTHER_CASES)
def test_validate_table_other_tables_rule_quarantines_row(table: str, overrides: dict, rule: str) -> None:
    result = validate_table(example_rows(table, **overrides), table_spec(table))
    assert result.valid.height == 0
    assert result.quarantine["rule"].to_list() == [rule]


def test_validate_tables_foreign_keys_follow_quarantined_parents() -> None:
    ships = example_rows("shipments", 2, shipment_id=["S1", "S2"], weight_kg=["1", "-1"])
    events = _events(
        shipment_id=["S1", "S2"], event=["picked_up", "picked_up"], event_at=["2025-03-02T00:00:00Z"] * 2
    )
    customs = example_rows("customs_declarations", 3, shipment_id=["S1", None, "S2"])
    result = validate_tables({"shipments": ships, "shipment_events": events, "customs_declarations": customs})
    assert result.valid["shipment_events"]["shipment_id"].to_list() == ["S1"]
    assert result.valid["customs_declarations"].height == 2  # the declaration without a shipment is fine
    q = result.quarantine.filter(pl.col("rule") == "foreign_key")
    assert q.select("table", "raw_value").sort("table").rows() == [
        ("customs_declarations", "S2"),
        ("shipment_events", "S2"),
    ]


def test_validate_table_missing_required_column_raises_with_name_and_type() -> None:
    raw = example_rows("shipments").drop("promised_date")
    with pytest.raises(ValueError, match=r"promised_date \(Date\)"):
        validate_table(raw, table_spec("shipments"))


def test_validate_table_same_day_lane_quote_is_valid() -> None:
    result = validate_table(example_rows("lanes", contract_transit_days=["0"]), table_spec("lanes"))
    assert result.valid["contract_transit_days"].to_list() == [0.0]


def test_validate_table_cancelled_order_is_valid_and_domestic_parcel_within_one_country() -> None:
    raw = example_rows(
        "shipments",
        2,
        status=["cancelled", "delivered"],
        delivered_at=[None, "2025-03-10T14:02:00Z"],
        mode=["postal", "domestic_parcel"],
        origin_country=["CN", "US"],
    )
    result = validate_table(raw, table_spec("shipments"))
    assert result.quarantine.height == 0
    assert result.valid["status"].cast(pl.String).to_list() == ["cancelled", "delivered"]


@pytest.mark.parametrize("column", table_spec("shipments").omittable_columns)
def test_validate_table_omitted_business_column_stays_absent(column: str) -> None:
    result = validate_table(example_rows("shipments").drop(column), table_spec("shipments"))
    assert result.quarantine.height == 0
    assert column not in result.valid.columns
    assert result.valid.columns == [c for c in table_spec("shipments").schema.names() if c != column]


def test_validate_table_present_business_column_keeps_its_rules() -> None:
    raw = example_rows("shipments", 2, carrier=["DHL", None], hs_code=["851830", "8518"])
    result = validate_table(raw, table_spec("shipments"))
    assert result.valid["carrier"].to_list() == ["DHL"]
    assert result.quarantine["violations"].to_list() == [["not_null:carrier", "hs_code_6_digits:hs_code"]]


def test_validate_table_optional_column_absent_is_null() -> None:
    raw = example_rows("shipments").drop("seller_id", "sku_id")
    result = validate_table(raw, table_spec("shipments"))
    assert result.valid["seller_id"].to_list() == [None]


@pytest.mark.parametrize(
    ("raw_value", "expected"),
    [
        pytest.param("2025-03-01T08:15:00Z", "2025-03-01 08:15:00", id="zulu"),
        pytest.param("2025-03-01 16:15:00+08:00", "2025-03-01 08:15:00", id="offset-space"),
        pytest.param(
            "2025-03-01T03:15:00.5-05:00", "2025-03-01 08:15:00.500000", id="fraction-negative-offset"
        ),
        pytest.param("2025-03-30T02:30:00+02:00", "2025-03-30 00:30:00", id="dst-day-offset"),
    ],
)
def test_coerce_timestamp_offsets_become_utc(raw_value: str, expected: str) -> None:
    raw = example_rows(
        "shipments",
        created_at=[raw_value],
        promised_date=["2025-04-30"],
        delivered_at=["2025-04-01T00:00:00Z"],
    )
    valid = validate_table(raw, table_spec("shipments")).valid
    assert str(valid["created_at"].dt.replace_time_zone(None).item()) == expected


def test_coerce_assume_timezone_localises_naive_timestamps() -> None:
    raw = example_rows("shipments", created_at=["2025-03-01 16:15:00"])
    valid = validate_table(raw, table_spec("shipments"), assume_timezone="Asia/Shanghai").valid
    assert str(valid["created_at"].item()) == "2025-03-01 08:15:00+00:00"


def test_coerce_normalises_hs_code_and_country_text() -> None:
    raw = example_rows("shipments", hs_code=["8518.30"], destination_country=[" us "])
    valid = validate_table(raw, table_spec("shipments")).valid
    assert valid.select("hs_code", "destination_country").row(0) == ("851830", "US")


def test_coerce_typed_parquet_inputs() -> None:
    spec = table_spec("skus")
    raw = pl.DataFrame(
        {
            "sku_id": ["A", "B"],
            "category": ["toys", "toys"],
            "hs_code": [10121, 950300],
            "unit_cost_usd": [1, 2],
            "price_usd": [3.0, 4.0],
            "case_pack": [12.0, 12.5],
        }
    )
    result = validate_table(raw, spec)
    assert result.valid.select("sku_id", "hs_code", "case_pack").rows() == [("A", "010121", 12)]
    assert result.quarantine.select("column", "rule").rows() == [("case_pack", "type")]


# ---------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------
_bad_values = {
    "weight_kg": st.sampled_from(["1.5", "-1", "abc", "", "NaN", "0"]),
    "destination_country": st.sampled_from(["US", "DE", "XX", "us", ""]),
    "hs_code": st.sampled_from(["851830", "8518", "950300", "x"]),
    "shipment_id": st.sampled_from(["A", "B", "C", "D"]),
    "status": st.sampled_from(["delivered", "in_transit", "gone"]),
}


@st.composite
def shipment_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=1, max_value=12))
    cols = {k: [draw(v) or None for _ in range(n)] for k, v in _bad_values.items()}
    return example_rows("shipments", n, **cols)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shipment_frames())
def test_validate_table_rows_in_equals_valid_plus_quarantined(raw: pl.DataFrame) -> None:
    result = validate_table(raw, table_spec("shipments"))
    assert result.rows_in == raw.height == result.valid.height + result.quarantine.height
    assert result.quarantine.schema == QUARANTINE_SCHEMA
    assert result.quarantine["row_number"].n_unique() == result.quarantine.height


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shipment_frames())
def test_validate_table_is_idempotent(raw: pl.DataFrame) -> None:
    once = validate_table(raw, table_spec("shipments")).valid
    twice = validate_table(once, table_spec("shipments"))
    assert twice.quarantine.height == 0
    assert_frame_equal(twice.valid, once)
