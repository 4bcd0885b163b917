"""Request models derived from the data contract: names, vocabularies, required flags follow the contract."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

import polars as pl
import pytest
from pydantic import ValidationError

from features.contract.schema import EVENT_TYPES, MODES, table_spec
from serving.http.fields import request_model
from serving.http.schemas import EventIn, ShipmentIn, shipments_frame
from serving.online.inputs import NOT_SCORED, SCORED_COLUMNS, SHIPMENTS_SPEC, check_rows


def _required(model: type) -> set[str]:
    return {n for n, f in model.model_fields.items() if f.is_required()}  # type: ignore[attr-defined]


def test_shipment_fields_are_the_contract_columns_known_at_booking() -> None:
    contract = table_spec("shipments")
    assert tuple(ShipmentIn.model_fields) == SCORED_COLUMNS
    assert set(SCORED_COLUMNS) == {c.name for c in contract.columns} - set(NOT_SCORED)
    assert _required(ShipmentIn) == {
        c.name for c in contract.columns if c.required and not c.nullable and c.name not in NOT_SCORED
    }


def test_vocabularies_are_the_contract_enums() -> None:
    assert get_args(ShipmentIn.model_fields["mode"].annotation) == MODES
    assert get_args(EventIn.model_fields["event"].annotation) == EVENT_TYPES


def test_a_column_made_optional_in_the_contract_becomes_optional_in_the_api() -> None:
    relaxed = replace(
        SHIPMENTS_SPEC,
        columns=tuple(
            replace(c, required=False, nullable=True) if c.name == "hs_code" else c
            for c in SHIPMENTS_SPEC.columns
        ),
    )
    model = request_model("Relaxed", relaxed, SCORED_COLUMNS, doc="test")
    assert "hs_code" in _required(ShipmentIn) and "hs_code" not in _required(model)
    example = {
        k: v for k, v in model.model_config["json_schema_extra"]["examples"][0].items() if k != "hs_code"
    }
    assert model.model_validate(example).hs_code is None  # type: ignore[attr-defined]


def test_the_example_is_a_valid_request_row() -> None:
    example = ShipmentIn.model_config["json_schema_extra"]["examples"][0]
    checked = check_rows(shipments_frame([ShipmentIn.model_validate(example)]))
    assert checked.rejects.is_empty() and checked.valid.height == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("weight_kg", -0.1, id="non-negative"),
        pytest.param("item_count", 0, id="positive"),
        pytest.param("weight_kg", 30_001.0, id="upper-bound"),
        pytest.param("weight_kg", float("nan"), id="finite"),
        pytest.param("carrier", "x" * 65, id="text-length"),
        pytest.param("incoterm", "XYZ", id="vocabulary"),
    ],
)
def test_bounds_of_the_rules_are_checked_while_parsing(field: str, value: object) -> None:
    example = ShipmentIn.model_config["json_schema_extra"]["examples"][0]
    with pytest.raises(ValidationError, match=field):
        ShipmentIn.model_validate({**example, field: value})


def test_request_frame_has_the_contract_dtypes_but_text_vocabularies() -> None:
    example = ShipmentIn.model_config["json_schema_extra"]["examples"][0]
    frame = shipments_frame([ShipmentIn.model_validate(example)])
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC") and frame.schema["mode"] == pl.String
