"""Tests for features.reference.customs_policy: one home for de minimis thresholds and duty rates."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from features.reference.customs_policy import (
    POLICY_CHANGES,
    STANDING_REGIMES,
    de_minimis_table,
    duty_rates,
    standing_regime,
)
from features.sources.simulator.world import DESTINATIONS
from serving.decisions.routing import default_duty_rates


def test_de_minimis_table_has_standing_rule_then_dated_changes() -> None:
    table = de_minimis_table()
    assert table.height == len(STANDING_REGIMES) + sum(len(p.countries) for p in POLICY_CHANGES)
    assert table.equals(table.sort("country", "valid_from"))
    fr = table.filter(pl.col("country") == "FR").rows()
    assert fr == [("FR", dt.date(1970, 1, 1), 160.0), ("FR", dt.date(2026, 7, 1), 0.0)]


def test_simulator_and_routing_read_the_reference_policy() -> None:
    assert {d.country: (d.de_minimis_usd, d.duty_rate) for d in DESTINATIONS} == {
        r.country: (r.de_minimis_usd, r.duty_rate) for r in STANDING_REGIMES
    }
    assert default_duty_rates() == duty_rates()


def test_standing_regime_of_unknown_country_names_the_known_ones() -> None:
    assert standing_regime("BR").duty_rate == 0.6
    with pytest.raises(KeyError, match="known: US, CA"):
        standing_regime("ZZ")
