"""Booking feature settings: which optional columns the features read, and lane keys without them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from features.booking_config import (
    OPTIONAL_INPUTS,
    BookingFeatureConfig,
    key_inputs,
    lane_keys,
    resolve_booking_config,
    without_key_inputs,
)
from features.contract.schema import table_spec


def test_optional_inputs_are_the_omittable_shipments_columns_the_features_read() -> None:
    business = "carrier weight_kg declared_value_usd hs_code item_count incoterm".split()
    assert set(OPTIONAL_INPUTS) == set(business)
    assert "shipping_cost_usd" in table_spec("shipments").omittable_columns  # known after booking: no feature


def test_resolve_fixes_the_inputs_present_and_lane_keys_drop_the_carrier() -> None:
    cfg = resolve_booking_config(BookingFeatureConfig(), ["shipment_id", "hs_code", "weight_kg"])
    assert cfg.inputs == ("weight_kg", "hs_code")
    assert lane_keys(cfg) == ("origin_hub", "destination_country", "mode")
    assert lane_keys(BookingFeatureConfig()) == ("origin_hub", "destination_country", "mode", "carrier")
    assert key_inputs(cfg) == ("carrier",)


def test_resolve_with_fixed_inputs_names_the_missing_column() -> None:
    trained = BookingFeatureConfig(inputs=("carrier", "weight_kg"))
    assert resolve_booking_config(trained, ["carrier", "weight_kg", "hs_code"]) is trained
    with pytest.raises(ValueError, match=r"shipments lack column\(s\) weight_kg that these features"):
        resolve_booking_config(trained, ["carrier"])


def test_without_key_inputs_drops_only_an_absent_key_column() -> None:
    cfg = BookingFeatureConfig()
    assert without_key_inputs(cfg, ["carrier"]) is cfg
    dropped = without_key_inputs(cfg, ["weight_kg"])
    assert dropped.inputs is not None and "carrier" not in dropped.inputs and "weight_kg" in dropped.inputs


def test_config_refuses_an_input_that_is_not_an_optional_column() -> None:
    with pytest.raises(ValidationError, match="not optional shipments columns"):
        BookingFeatureConfig(inputs=("mode",))
