"""Tests for features.reference.weeks: the ISO week label and its Monday are inverses."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.reference.weeks import iso_week_label, iso_week_monday, week_monday

_DAYS = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31))


def test_iso_week_known_values() -> None:
    assert iso_week_monday("2025-W48") == dt.date(2025, 11, 24)
    assert iso_week_label(dt.date(2025, 11, 30)) == "2025-W48"
    assert iso_week_label(dt.date(2021, 1, 1)) == "2020-W53"
    assert iso_week_monday("2020-W53") == dt.date(2020, 12, 28)


@given(_DAYS)
def test_label_then_monday_is_the_days_monday(day: dt.date) -> None:
    monday = iso_week_monday(iso_week_label(day))
    assert monday == week_monday(day)
    assert monday.weekday() == 0 and 0 <= (day - monday).days <= 6


@given(_DAYS)
def test_monday_then_label_round_trips(day: dt.date) -> None:
    label = iso_week_label(day)
    assert iso_week_label(iso_week_monday(label)) == label


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("2025-48", id="no-W"),
        pytest.param("2025-W60", id="week-60"),
        pytest.param("2025-W5", id="one-digit-week"),
        pytest.param("2021-W53", id="year-without-week-53"),
        pytest.param("", id="empty"),
    ],
)
def test_iso_week_monday_rejects_bad_text(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO year-week"):
        iso_week_monday(bad)
