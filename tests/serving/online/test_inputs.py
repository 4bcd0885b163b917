"""Rows to score checked against the data contract: the ingest's parser and rules, row numbers and fixes."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.contract.rules import row_rules
from features.contract.validation import validate_table
from serving.online.inputs import (
    EVENTS_SPEC,
    INPUT_COLUMNS,
    SCORED_COLUMNS,
    SHIPMENTS_SPEC,
    MissingColumns,
    Rejects,
    check_rows,
    require_valid,
    scoring_rules,
)

# A good row: the contract's own examples (as they would appear in a CSV file).
GOOD = {c: SHIPMENTS_SPEC.column(c).example for c in INPUT_COLUMNS}

# One bad value per rule a scoring row can break: (column, value, rule).
BAD = [
    ("created_at", "2025-03-01 08:15:00", "timezone_missing"),
    ("created_at", "01/03/2025", "type"),
    ("mode", "teleport", "vocabulary"),
    ("carrier", None, "not_null"),
    ("destination_country", "USA", "iso2_country"),
    ("origin_country", "XX", "iso2_country"),
    ("hs_code", "85x", "hs_code_6_digits"),
    ("weight_kg", "-1", "non_negative"),
    ("declared_value_usd", "-5", "non_negative"),
    ("weight_kg", "NaN", "finite"),
    ("declared_value_usd", "inf", "finite"),
    ("item_count", "0", "positive"),
    ("promised_date", "2025-02-27", "promised_after_created"),
    ("weight_kg", "30000.5", "at_most"),
    ("item_count", "100001", "at_most"),
    ("promised_date", "2026-12-31", "promise_horizon"),
    ("created_at", "1999-12-31T00:00:00Z", "time_range"),
    ("origin_hub", "H" * 65, "text_length"),
]


def _rows(changes: list[tuple[str, str | None]]) -> pl.DataFrame:
    rows = [{**GOOD, "shipment_id": f"S{i}", column: value} for i, (column, value) in enumerate(changes)]
    return pl.DataFrame(rows, schema=dict.fromkeys(GOOD, pl.String))


def test_check_rows_types_good_rows_like_the_contract_in_input_order() -> None:
    raw = _rows([("weight_kg", "1.5"), ("destination_country", " us "), ("hs_code", "8518.30")]).reverse()
    checked = check_rows(raw)
    assert checked.rejects.is_empty() and checked.rows_in == 3
    assert checked.valid["shipment_id"].to_list() == ["S2", "S1", "S0"]
    assert checked.valid.schema == pl.Schema({c: SHIPMENTS_SPEC.schema[c] for c in raw.columns})
    assert checked.valid["destination_country"].to_list() == ["US"] * 3  # the ingest's normalisation
    assert checked.valid["hs_code"].to_list() == ["851830"] * 3


@pytest.mark.parametrize(("column", "value", "rule"), BAD, ids=[f"{r}-{c}" for c, _, r in BAD])
def test_check_rows_rejects_a_bad_value_naming_row_column_rule_and_fix(
    column: str, value: str | None, rule: str
) -> None:
    raw = _rows([("weight_kg", "1.0"), (column, value), ("weight_kg", "2.0")])
    checked = check_rows(raw, first_row=11)
    assert checked.valid["shipment_id"].to_list() == ["S0", "S2"]
    reject = checked.rejects.row(0, named=True)
    assert (reject["row_number"], reject["column"], reject["rule"]) == (12, column, rule)
    assert reject["raw_value"] == value and reject["fix"] and reject["detail"]


def test_every_rule_of_a_scoring_row_has_a_bad_example_here() -> None:
    rules = {
        r.rule
        for r in row_rules(SHIPMENTS_SPEC) + scoring_rules(SHIPMENTS_SPEC)
        if r.column in SCORED_COLUMNS
    }
    assert rules - {"not_null"} <= {rule for _, _, rule in BAD}


def test_check_rows_rejects_what_ingest_quarantines() -> None:
    contract_only = [
        b for b in BAD if b[2] in {r.rule for r in row_rules(SHIPMENTS_SPEC)} | {"type", "vocabulary"}
    ]
    raw = _rows([(c, v) for c, v, _ in contract_only] + [("weight_kg", "3.0")])
    ingest = validate_table(raw, SHIPMENTS_SPEC)
    ours = check_rows(raw)
    assert ours.rejects["row_number"].sort().to_list() == ingest.quarantine["row_number"].sort().to_list()
    assert (
        ours.rejects.sort("row_number")["rule"].to_list()
        == ingest.quarantine.sort("row_number")["rule"].to_list()
    )


def test_check_rows_reads_naive_times_in_the_given_zone() -> None:
    raw = _rows([("created_at", "2025-03-01 09:15:00")])
    checked = check_rows(raw, assume_timezone="Europe/Berlin")
    assert checked.valid["created_at"].to_list() == [dt.datetime(2025, 3, 1, 8, 15, tzinfo=dt.UTC)]


def test_check_rows_refuses_duplicate_ids_unless_told_not_to() -> None:
    raw = _rows([("weight_kg", "1.0"), ("weight_kg", "2.0")]).with_columns(pl.lit("S").alias("shipment_id"))
    assert check_rows(raw).rejects.select("row_number", "rule").row(0) == (2, "duplicate_key")
    assert check_rows(raw, unique_key=False).rejects.is_empty()


def test_check_rows_names_a_missing_required_column() -> None:
    with pytest.raises(MissingColumns, match=r"hs_code \(String, like '851830'\)"):
        check_rows(_rows([("weight_kg", "1.0")]).drop("hs_code"))
    assert "hs_code" in INPUT_COLUMNS


def test_require_valid_raises_rejects_with_a_readable_message() -> None:
    raw = _rows([("weight_kg", "-1")] * 7)
    with pytest.raises(Rejects, match=r"7 of 7 shipments row\(s\)") as info:
        require_valid(raw)
    text = str(info.value)
    assert "row 1, weight_kg = '-1': non_negative" in text and "fix: write a value like '0.42'" in text
    assert "... and 2 more" in text and info.value.rejects.height == 7


def test_events_are_checked_with_their_contract_rules() -> None:
    events = pl.DataFrame(
        {
            "shipment_id": ["S1", "S1"],
            "event": ["picked_up", "teleported"],
            "event_at": ["2025-03-01T09:00:00Z", "2025-03-02T09:00:00Z"],
            "country": ["CN", "CN"],
        }
    )
    checked = check_rows(events, EVENTS_SPEC)
    assert checked.rejects.select("row_number", "column", "rule").row(0) == (2, "event", "vocabulary")
    assert "picked_up" in checked.rejects["fix"][0]


def test_typed_input_gives_the_same_rows_as_text() -> None:
    text = _rows([("weight_kg", "1.0"), ("weight_kg", "2.0")])
    typed = check_rows(text).valid
    assert_frame_equal(check_rows(typed).valid, typed)
