"""Each vocabulary is declared once: its Literal, tuple and pl.Enum agree, and codes never move."""

from __future__ import annotations

from typing import get_args

import polars as pl
import pytest

from features.contract import vocabularies as v
from features.contract.schema import table_spec

VOCABULARIES = [
    pytest.param(v.ModeName, v.MODES, v.Mode, id="modes"),
    pytest.param(v.ShipmentStatusName, v.SHIPMENT_STATUSES, v.ShipmentStatus, id="statuses"),
    pytest.param(v.IncotermName, v.INCOTERMS, v.Incoterm, id="incoterms"),
    pytest.param(v.EventName, v.EVENT_TYPES, v.EventType, id="events"),
    pytest.param(v.CustomsOutcomeName, v.CUSTOMS_OUTCOMES, v.CustomsOutcome, id="outcomes"),
]


@pytest.mark.parametrize(("literal", "values", "enum"), VOCABULARIES)
def test_literal_tuple_and_enum_agree(literal: object, values: tuple[str, ...], enum: pl.Enum) -> None:
    assert get_args(literal) == values
    assert tuple(enum.categories.to_list()) == values
    assert len(set(values)) == len(values)


def test_event_rank_covers_every_event_in_order() -> None:
    assert tuple(v.EVENT_RANK) == v.EVENT_TYPES
    assert set(v.TERMINAL_EVENTS) == {e for e, r in v.EVENT_RANK.items() if r == max(v.EVENT_RANK.values())}


def test_new_values_are_appended_so_existing_codes_never_move() -> None:
    assert v.SHIPMENT_MODES[:4] == ("postal", "dedicated_line", "express", "overseas_warehouse")
    assert v.SHIPMENT_MODES[-1] == v.DOMESTIC_MODE
    assert v.SHIPMENT_STATUSES[:4] == ("in_transit", "delivered", "returned", "lost")
    assert v.MODES == (*v.SHIPMENT_MODES, *v.REPLENISHMENT_MODES)


def test_subsets_are_members_of_their_vocabulary() -> None:
    assert set(v.CROSS_BORDER_PARCEL_MODES) | {v.WAREHOUSE_MODE, v.DOMESTIC_MODE} == set(v.SHIPMENT_MODES)
    assert set(v.WAREHOUSE_INBOUND_MODES) <= set(v.REPLENISHMENT_MODES)
    assert set(v.UNDELIVERED_STATUSES) | set(v.NOT_SHIPPED_STATUSES) <= set(v.SHIPMENT_STATUSES)


def test_contract_columns_use_the_vocabularies() -> None:
    assert table_spec("shipments").schema["mode"] == v.Mode
    assert table_spec("shipments").schema["status"] == v.ShipmentStatus
    assert table_spec("shipment_events").schema["event"] == v.EventType
    assert table_spec("customs_declarations").schema["outcome"] == v.CustomsOutcome
