# ruff: noqa: E501  (the expected reasons are long strings, pinned verbatim)
"""Regression: the restock plan of a small hand-made world is exactly what the code before the split produced.

The expected frames were computed by `plan_restock` at commit 876abcc (before it was split into named steps)
on the inputs below: two warehouses, five series, three modes (no air at W2), on-order lots due before and
after the cover window, a capacity that cuts W2, a budget and a calibration map. Every column, value and
dtype must stay the same.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from serving.decisions.restock import RestockConfig, plan_restock

SERIES = [
    ("W1", "S1", 12.0, 3),
    ("W1", "S2", 2.0, 40),
    ("W1", "S3", 0.4, 0),
    ("W2", "S1", 30.0, 0),
    ("W2", "S2", 6.0, 5),
]  # warehouse, sku, base weekly demand, on hand


def regression_inputs() -> tuple[pl.DataFrame, ...]:
    """paths, positions, skus, warehouses, lead samples, freight, classes."""
    rows = [
        (wh, sku, p, h, float(round(base * (0.6 + 0.2 * p) * (1.0 + 0.1 * (h % 3)), 1)))
        for wh, sku, base, _ in SERIES
        for p in range(5)
        for h in range(1, 9)
    ]
    paths = pl.DataFrame(rows, schema=["warehouse_id", "sku_id", "path_id", "horizon", "units"], orient="row")
    positions = pl.DataFrame(
        {
            "warehouse_id": [s[0] for s in SERIES],
            "sku_id": [s[1] for s in SERIES],
            "on_hand_units": [s[3] for s in SERIES],
            "on_order_units": [24, 0, 0, 60, 0],
            "on_order_lots": [[24], [], [], [20, 40], []],
            "on_order_due_days": [[10.0], [], [], [3.0, 40.0], []],
        }
    )
    skus = pl.DataFrame(
        {
            "sku_id": ["S1", "S2", "S3"],
            "unit_cost_usd": [4.0, 9.0, 20.0],
            "price_usd": [12.0, 25.0, 45.0],
            "weight_kg": [0.3, 1.2, 2.0],
            "case_pack": [6, 4, 1],
            "min_order_units": [12, 0, 2],
        }
    )
    warehouses = pl.DataFrame(
        {
            "warehouse_id": ["W1", "W2"],
            "capacity_units": [10_000, 150],
            "holding_cost_usd_per_unit_week": [0.05, None],
        }
    )
    lead = pl.DataFrame(
        [("W1", "sea", x) for x in (30.0, 34.0, 41.0)]
        + [("W1", "rail", x) for x in (18.0, 22.0)]
        + [("W1", "air", x) for x in (5.0, 7.0, 9.0)]
        + [("W2", "sea", x) for x in (26.0, 33.0)]
        + [("W2", "rail", x) for x in (16.0, 19.0, 25.0)],
        schema=["warehouse_id", "mode", "lead_days"],
        orient="row",
    )
    freight = pl.DataFrame(
        {
            "warehouse_id": ["W1", "W1", "W1", "W2", "W2"],
            "mode": ["sea", "rail", "air", "sea", "rail"],
            "fixed_usd": [80.0, 50.0, 20.0, 70.0, 45.0],
            "per_kg_usd": [0.8, 2.5, 7.0, 0.9, 2.2],
        }
    )
    classes = pl.DataFrame(
        {"warehouse_id": ["W1", "W1", "W2"], "sku_id": ["S1", "S2", "S1"], "abc_class": ["A", "B", "A"]}
    )
    return paths, positions, skus, warehouses, lead, freight, classes


SCENARIOS: dict[str, tuple[RestockConfig, bool, bool]] = {  # config, lots, classes
    "calibrated_with_budget": (
        RestockConfig(
            handling_days=3.0, seed=3, budget_usd=900.0, quantile_map={"medium": ((0.8, 0.95), (0.6, 0.9))}
        ),
        True,
        True,
    ),
    "default_with_lots": (RestockConfig(handling_days=3.0, seed=3), True, True),
    "open_mode_choice_no_lots": (
        RestockConfig(handling_days=4.5, seed=1, expedite_only=False, modes=("sea", "rail", "air")),
        False,
        False,
    ),
}


SCHEMA: dict[str, pl.DataType] = {  # the plan's columns, in order
    "warehouse_id": pl.String,
    "sku_id": pl.String,
    "on_hand_units": pl.Int64,
    "on_order_units": pl.Int64,
    "on_order_lots": pl.List(pl.Int64),
    "on_order_due_days": pl.List(pl.Float64),
    "unit_cost_usd": pl.Float64,
    "price_usd": pl.Float64,
    "weight_kg": pl.Float64,
    "case_pack": pl.Int64,
    "min_order_units": pl.Int64,
    "capacity_units": pl.Int64,
    "holding_usd_week": pl.Float64,
    "abc_class": pl.String,
    "service_target": pl.Float64,
    "mode": pl.String,
    "lead_days_mean": pl.Float64,
    "lead_days_p90": pl.Float64,
    "cover_weeks": pl.Float64,
    "demand_cover_mean": pl.Float64,
    "order_up_to_units": pl.Int64,
    "order_units_unconstrained": pl.Int64,
    "freight_usd": pl.Float64,
    "expedite_mode": pl.String,
    "expedite_units_unconstrained": pl.Int64,
    "transit_holding_usd": pl.Float64,
    "holding_usd": pl.Float64,
    "stockout_cost_usd": pl.Float64,
    "expected_cost_usd": pl.Float64,
    "p_stockout": pl.Float64,
    "p_stockout_before_regular": pl.Float64,
    "expected_short_units": pl.Float64,
    "mode_costs": pl.String,
    "weekly_demand_mean": pl.Float64,
    "service_quantile": pl.Float64,
    "safety_stock_units": pl.Float64,
    "inventory_position": pl.Int64,
    "demand_over_lead_mean": pl.Float64,
    "weeks_of_cover": pl.Float64,
    "stock_at_arrival_units": pl.Int64,
    "order_units": pl.Int64,
    "expedite_units": pl.Int64,
    "limit_note": pl.String,
    "order_cases": pl.Int64,
    "order_value_usd": pl.Float64,
    "is_order": pl.Boolean,
    "reason": pl.String,
}


EXPECTED_CALIBRATED: dict[str, Any] = {
    "warehouse_id": ["W1", "W1", "W1", "W2", "W2"],
    "sku_id": ["S1", "S2", "S3", "S1", "S2"],
    "on_hand_units": [3, 40, 0, 0, 5],
    "on_order_units": [24, 0, 0, 60, 0],
    "on_order_lots": [[24], [], [], [20, 40], []],
    "on_order_due_days": [[10.0], [], [], [3.0, 40.0], []],
    "unit_cost_usd": [4.0, 9.0, 20.0, 4.0, 9.0],
    "price_usd": [12.0, 25.0, 45.0, 12.0, 25.0],
    "weight_kg": [0.3, 1.2, 2.0, 0.3, 1.2],
    "case_pack": [6, 4, 1, 6, 4],
    "min_order_units": [12, 0, 2, 12, 0],
    "capacity_units": [10000, 10000, 10000, 150, 150],
    "holding_usd_week": [0.05, 0.05, 0.05, 0.06, 0.06],
    "abc_class": ["A", "B", "C", "A", "C"],
    "service_target": [0.97, 0.93, 0.85, 0.97, 0.85],
    "mode": ["sea", "sea", "sea", "sea", "sea"],
    "lead_days_mean": [35.2, 38.2, 35.4, 31.8, 31.8],
    "lead_days_p90": [39.6, 44.0, 37.0, 36.0, 36.0],
    "cover_weeks": [6.03, 6.46, 6.06, 5.54, 5.54],
    "demand_cover_mean": [78.3, 13.8, 2.7, 183.2, 37.1],
    "order_up_to_units": [105, 17, 4, 238, 47],
    "order_units_unconstrained": [54, 0, 2, 222, 44],
    "freight_usd": [163.36, 0.0, 48.0, 86.2, 0.0],
    "expedite_mode": ["air", None, "air", None, None],
    "expedite_units_unconstrained": [24, 0, 2, 0, 0],
    "transit_holding_usd": [0.43, 0.0, 0.15, 11.64, 5.19],
    "holding_usd": [1.19, 1.36, 0.06, 5.48, 0.91],
    "stockout_cost_usd": [0.0, 0.0, 0.0, 0.0, 0.0],
    "expected_cost_usd": [72.02, 1.36, 48.21, 147.05, 123.62],
    "p_stockout": [0.0, 0.0, 0.0, 0.0, 0.0],
    "p_stockout_before_regular": [1.0, 0.0, 1.0, 1.0, 1.0],
    "expected_short_units": [0.0, 0.0, 0.0, 0.0, 0.0],
    "mode_costs": [
        "sea 107; rail 99; air 72",
        "sea 1; rail 2; air 2",
        "sea 88; rail 66; air 48",
        "sea 147; rail 171",
        "sea 124; rail 170",
    ],
    "weekly_demand_mean": [13.2, 2.2, 0.445, 33.0, 6.6],
    "service_quantile": [0.97, 0.86, 0.85, 0.97, 0.7],
    "safety_stock_units": [26.7, 3.2, 1.3, 54.8, 9.9],
    "inventory_position": [27, 40, 0, 60, 5],
    "demand_over_lead_mean": [65.5, 11.7, 2.3, 149.8, 30.5],
    "weeks_of_cover": [0.2, 18.2, 0.0, 0.0, 0.8],
    "stock_at_arrival_units": [0, 29, 0, 0, 0],
    "order_units": [54, 0, 0, 60, 0],
    "expedite_units": [24, 0, 2, 0, 0],
    "limit_note": [
        "",
        "",
        "cut from 2 by budget",
        "cut from 222 by capacity and budget",
        "cut from 44 by budget",
    ],
    "order_cases": [9, 0, 0, 10, 0],
    "order_value_usd": [312.0, 0.0, 40.0, 240.0, 0.0],
    "is_order": [True, False, True, True, False],
    "reason": [
        "cover 6.03 wk (lead 35.2 d, p90 39.6 d, + review); target 105 = P97 of demand over cover (class A service 97%, mean 78.3); on hand 3 + on order 24 = 27; order 54 (9 cases of 6) by sea; expedite 24 by air: P(stock-out before sea arrives) 100.0% (expected cost USD: sea 107; rail 99; air 72)",
        "cover 6.46 wk (lead 38.2 d, p90 44.0 d, + review); target 17 = P86 of demand over cover (class B service 93%, mean 13.8); on hand 40 + on order 0 = 40; no order (position covers the target)",
        "cover 6.06 wk (lead 35.4 d, p90 37.0 d, + review); target 4 = P85 of demand over cover (class C service 85%, mean 2.7); on hand 0 + on order 0 = 0; no sea order (the expedite covers the need); expedite 2 by air: P(stock-out before sea arrives) 100.0% (expected cost USD: sea 88; rail 66; air 48); cut from 2 by budget",
        "cover 5.54 wk (lead 31.8 d, p90 36.0 d, + review); target 238 = P97 of demand over cover (class A service 97%, mean 183.2); on hand 0 + on order 60 = 60; order 60 (10 cases of 6) by sea; cut from 222 by capacity and budget",
        "cover 5.54 wk (lead 31.8 d, p90 36.0 d, + review); target 47 = P70 of demand over cover (class C service 85%, mean 37.1); on hand 5 + on order 0 = 5; no order (position covers the target); cut from 44 by budget",
    ],
}


EXPECTED: dict[str, tuple[dict[str, Any], dict[str, pl.DataType]]] = {
    "calibrated_with_budget": (EXPECTED_CALIBRATED, SCHEMA),
    "default_with_lots": (  # as calibrated_with_budget, but for the columns the map and the budget move
        EXPECTED_CALIBRATED
        | {
            "order_up_to_units": [105, 18, 4, 238, 49],
            "freight_usd": [163.36, 0.0, 131.2, 110.5, 0.0],
            "mode_costs": [
                "sea 107; rail 99; air 72",
                "sea 1; rail 2; air 2",
                "sea 88; rail 66; air 48",
                "sea 147; rail 171",
                "sea 124; rail 165",
            ],
            "service_quantile": [0.97, 0.93, 0.85, 0.97, 0.85],
            "safety_stock_units": [26.7, 4.2, 1.3, 54.8, 11.9],
            "order_units": [54, 0, 2, 150, 0],
            "limit_note": ["", "", "", "cut from 222 by capacity", "cut from 44 by capacity"],
            "order_cases": [9, 0, 2, 25, 0],
            "order_value_usd": [312.0, 0.0, 80.0, 600.0, 0.0],
            "reason": [
                "cover 6.03 wk (lead 35.2 d, p90 39.6 d, + review); target 105 = P97 of demand over cover (class A service 97%, mean 78.3); on hand 3 + on order 24 = 27; order 54 (9 cases of 6) by sea; expedite 24 by air: P(stock-out before sea arrives) 100.0% (expected cost USD: sea 107; rail 99; air 72)",
                "cover 6.46 wk (lead 38.2 d, p90 44.0 d, + review); target 18 = P93 of demand over cover (class B service 93%, mean 13.8); on hand 40 + on order 0 = 40; no order (position covers the target)",
                "cover 6.06 wk (lead 35.4 d, p90 37.0 d, + review); target 4 = P85 of demand over cover (class C service 85%, mean 2.7); on hand 0 + on order 0 = 0; order 2 (2 cases of 1) by sea; expedite 2 by air: P(stock-out before sea arrives) 100.0% (expected cost USD: sea 88; rail 66; air 48)",
                "cover 5.54 wk (lead 31.8 d, p90 36.0 d, + review); target 238 = P97 of demand over cover (class A service 97%, mean 183.2); on hand 0 + on order 60 = 60; order 150 (25 cases of 6) by sea; cut from 222 by capacity",
                "cover 5.54 wk (lead 31.8 d, p90 36.0 d, + review); target 49 = P85 of demand over cover (class C service 85%, mean 37.1); on hand 5 + on order 0 = 5; no order (position covers the target); cut from 44 by capacity",
            ],
        },
        SCHEMA,
    ),
    "open_mode_choice_no_lots": (  # without lots, classes and expedite_only: columns unchanged taken over
        {
            "warehouse_id": EXPECTED_CALIBRATED["warehouse_id"],
            "sku_id": EXPECTED_CALIBRATED["sku_id"],
            "on_hand_units": EXPECTED_CALIBRATED["on_hand_units"],
            "on_order_units": EXPECTED_CALIBRATED["on_order_units"],
            "unit_cost_usd": EXPECTED_CALIBRATED["unit_cost_usd"],
            "price_usd": EXPECTED_CALIBRATED["price_usd"],
            "weight_kg": EXPECTED_CALIBRATED["weight_kg"],
            "case_pack": EXPECTED_CALIBRATED["case_pack"],
            "min_order_units": EXPECTED_CALIBRATED["min_order_units"],
            "capacity_units": EXPECTED_CALIBRATED["capacity_units"],
            "holding_usd_week": EXPECTED_CALIBRATED["holding_usd_week"],
            "abc_class": ["C", "C", "C", "C", "C"],
            "service_target": [0.85, 0.85, 0.85, 0.85, 0.85],
            "mode": EXPECTED_CALIBRATED["mode"],
            "lead_days_mean": [40.5, 38.9, 39.7, 33.3, 37.5],
            "lead_days_p90": [45.5, 45.5, 45.5, 37.5, 37.5],
            "cover_weeks": [6.79, 6.56, 6.67, 5.76, 6.36],
            "demand_cover_mean": [89.8, 14.3, 3.0, 189.9, 42.0],
            "order_up_to_units": [114, 18, 4, 229, 54],
            "order_units_unconstrained": [72, 0, 2, 174, 52],
            "freight_usd": [155.08, 0.0, 131.2, 110.5, 0.0],
            "expedite_mode": EXPECTED_CALIBRATED["expedite_mode"],
            "expedite_units_unconstrained": [18, 0, 2, 0, 0],
            "transit_holding_usd": [0.31, 0.0, 0.18, 9.55, 7.23],
            "holding_usd": [0.94, 1.34, 0.05, 3.83, 1.12],
            "stockout_cost_usd": [0.0, 0.0, 0.0, 29.16, 5.73],
            "expected_cost_usd": [59.05, 1.34, 48.23, 159.52, 140.24],
            "p_stockout": [0.0, 0.0, 0.0, 0.2, 0.2],
            "p_stockout_before_regular": EXPECTED_CALIBRATED["p_stockout_before_regular"],
            "expected_short_units": [0.0, 0.0, 0.0, 3.24, 0.34],
            "mode_costs": [
                "sea 114; rail 95; air 59",
                "sea 1; rail 2; air 2",
                "sea 88; rail 66; air 48",
                "sea 160; rail 173",
                "sea 140; rail 171",
            ],
            "weekly_demand_mean": EXPECTED_CALIBRATED["weekly_demand_mean"],
            "service_quantile": [0.85, 0.85, 0.85, 0.85, 0.85],
            "safety_stock_units": [24.2, 3.7, 1.0, 39.1, 12.0],
            "inventory_position": EXPECTED_CALIBRATED["inventory_position"],
            "demand_over_lead_mean": [76.8, 12.2, 2.5, 157.0, 35.7],
            "weeks_of_cover": EXPECTED_CALIBRATED["weeks_of_cover"],
            "stock_at_arrival_units": [0, 28, 0, 0, 0],
            "order_units": [72, 0, 2, 150, 0],
            "expedite_units": [18, 0, 2, 0, 0],
            "limit_note": ["", "", "", "cut from 174 by capacity", "cut from 52 by capacity"],
            "order_cases": [12, 0, 2, 25, 0],
            "order_value_usd": [360.0, 0.0, 80.0, 600.0, 0.0],
            "is_order": EXPECTED_CALIBRATED["is_order"],
            "reason": [
                "cover 6.79 wk (lead 40.5 d, p90 45.5 d, + review); target 114 = P85 of demand over cover (class C service 85%, mean 89.8); on hand 3 + on order 24 = 27; order 72 (12 cases of 6) by sea; expedite 18 by air: P(stock-out before sea arrives) 100.0% (expected cost USD: sea 114; rail 95; air 59)",
                "cover 6.56 wk (lead 38.9 d, p90 45.5 d, + review); target 18 = P85 of demand over cover (class C service 85%, mean 14.3); on hand 40 + on order 0 = 40; no order (position covers the target)",
                "cover 6.67 wk (lead 39.7 d, p90 45.5 d, + review); target 4 = P85 of demand over cover (class C service 85%, mean 3.0); on hand 0 + on order 0 = 0; order 2 (2 cases of 1) by sea; expedite 2 by air: P(stock-out before sea arrives) 100.0% (expected cost USD: sea 88; rail 66; air 48)",
                "cover 5.76 wk (lead 33.3 d, p90 37.5 d, + review); target 229 = P85 of demand over cover (class C service 85%, mean 189.9); on hand 0 + on order 60 = 60; order 150 (25 cases of 6) by sea; cut from 174 by capacity",
                "cover 6.36 wk (lead 37.5 d, p90 37.5 d, + review); target 54 = P85 of demand over cover (class C service 85%, mean 42.0); on hand 5 + on order 0 = 5; no order (position covers the target); cut from 52 by capacity",
            ],
        },
        {k: v for k, v in SCHEMA.items() if k not in ("on_order_lots", "on_order_due_days")},
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_plan_is_identical_to_the_plan_before_the_split(name: str) -> None:
    paths, positions, skus, warehouses, lead, freight, classes = regression_inputs()
    config, lots, with_classes = SCENARIOS[name]
    if not lots:
        positions = positions.drop("on_order_lots", "on_order_due_days")
    plan = plan_restock(
        paths, positions, skus, warehouses, lead, freight, classes if with_classes else None, config
    )
    values, schema = EXPECTED[name]
    assert_frame_equal(plan, pl.DataFrame(values, schema=schema), check_exact=True)
