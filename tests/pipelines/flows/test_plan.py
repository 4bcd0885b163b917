"""The weekly-plan flow's pieces below the flow: the report's sales history and the plan week."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipelines.flows._tables import weekly_history
from pipelines.flows.plan import plan_date_of

PLAN = dt.date(2025, 6, 2)  # a Monday


def _sales(days: list[dt.date], units: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": days,
            "warehouse_id": ["W1"] * len(days),
            "sku_id": ["S1"] * len(days),
            "units_sold": units,
            "is_stockout": [False] * len(days),
        }
    )


def test_weekly_history_is_the_zero_filled_panel_before_the_plan_date() -> None:
    days = [PLAN - dt.timedelta(days=20), PLAN - dt.timedelta(days=19), PLAN - dt.timedelta(days=1), PLAN]
    history = weekly_history(_sales(days, [2, 3, 4, 100]), PLAN)
    assert history.columns == ["warehouse_id", "sku_id", "week_start", "units"]
    weeks = [PLAN - dt.timedelta(weeks=k) for k in (3, 2, 1)]
    assert history.sort("week_start")["week_start"].to_list() == weeks
    assert history.sort("week_start")["units"].to_list() == [5.0, 0.0, 4.0]  # the empty week is a zero


def test_weekly_history_keeps_26_weeks_and_is_empty_without_recent_sales() -> None:
    old = _sales([PLAN - dt.timedelta(weeks=40)], [1])
    assert weekly_history(old, PLAN).is_empty()
    long = _sales([PLAN - dt.timedelta(weeks=k) for k in range(1, 40)], [1] * 39)
    assert weekly_history(long, PLAN).height == 26


def test_plan_date_is_the_week_monday_or_the_week_after_the_last_sale() -> None:
    sales = _sales([dt.date(2025, 5, 28)], [1])  # a Wednesday
    assert plan_date_of(None, sales) == PLAN
    assert plan_date_of("2025-W23", sales) == PLAN
    with pytest.raises(ValueError, match="2025-W48"):
        plan_date_of("June", sales)
