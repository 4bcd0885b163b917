"""Tests for features.reference.calendar: which holidays and peaks apply to a shipment's countries."""

from __future__ import annotations

import pytest

from features.reference.calendar import (
    ECOMMERCE_PEAKS,
    observes_christmas,
    observes_lunar_new_year,
    peak_applies,
)


@pytest.mark.parametrize(
    ("country", "expected"),
    [("CN", True), ("VN", True), ("KR", True), ("SG", True), ("BR", False), ("US", False), (None, False)],
)
def test_observes_lunar_new_year_comes_from_the_countrys_holidays(
    country: str | None, expected: bool
) -> None:
    assert observes_lunar_new_year(country) is expected


@pytest.mark.parametrize(
    ("origin", "destination", "expected"),
    [
        pytest.param("CN", "US", {"singles_day", "black_friday_cyber_monday", "christmas"}, id="cn-us"),
        pytest.param("BR", "BR", {"black_friday_cyber_monday", "christmas"}, id="brazil-domestic"),
        pytest.param("CN", "SA", {"singles_day", "black_friday_cyber_monday"}, id="no-christmas-in-sa"),
        pytest.param("DE", "CN", {"singles_day", "black_friday_cyber_monday"}, id="into-china"),
    ],
)
def test_peak_applies_follows_origin_and_destination(
    origin: str, destination: str, expected: set[str]
) -> None:
    assert {p for p in ECOMMERCE_PEAKS if peak_applies(p, origin, destination)} == expected
    assert observes_christmas(destination) is ("christmas" in expected)


def test_peak_applies_rejects_an_unknown_peak() -> None:
    with pytest.raises(ValueError, match="unknown e-commerce peak 'diwali'"):
        peak_applies("diwali", "IN", "IN")
