"""Restock plan: hand-computed order-up-to cases, uncertainty, limits, mode choice, point-in-time inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.decisions.lead_times import freight_rates, lead_time_samples, stock_positions
from serving.decisions.restock import RestockConfig, abc_classes, plan_restock

H = 8


def _paths(weekly: list[list[float]], wh: str = "W1", sku: str = "S1") -> pl.DataFrame:
    """One series; `weekly[p]` is path p's weekly demand (a single value is repeated over all weeks)."""
    rows = []
    for p, w in enumerate(weekly):
        values = w if len(w) == H else w * H
        rows += [(wh, sku, p, h + 1, float(values[h])) for h in range(H)]
    return pl.DataFrame(rows, schema=["warehouse_id", "sku_id", "path_id", "horizon", "units"], orient="row")


def _inputs(
    on_hand: int = 12, on_order: int = 0, case: int = 4, moq: int = 0, capacity: int = 10_000
) -> dict[str, pl.DataFrame]:
    return {
        "positions": pl.DataFrame({"warehouse_id": ["W1"], "sku_id": ["S1"], "on_hand_units": [on_hand],
                                   "on_order_units": [on_order]}),
        "skus": pl.DataFrame({"sku_id": ["S1"], "unit_cost_usd": [5.0], "price_usd": [15.0],
                              "weight_kg": [0.5], "case_pack": [case], "min_order_units": [moq]}),
        "warehouses": pl.DataFrame({"warehouse_id": ["W1"], "capacity_units": [capacity],
                                    "holding_cost_usd_per_unit_week": [0.05]}),
    }  # fmt: skip


def _lanes(
    sea: list[float], air: list[float] | None = None, wh: str = "W1"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [(wh, "sea", x) for x in sea] + [(wh, "air", x) for x in (air or [])]
    lead = pl.DataFrame(rows, schema=["warehouse_id", "mode", "lead_days"], orient="row")
    fr = pl.DataFrame({"warehouse_id": [wh, wh], "mode": ["sea", "air"], "fixed_usd": [60.0, 25.0],
                       "per_kg_usd": [1.0, 6.5]})  # fmt: skip
    return lead, fr


CFG = RestockConfig(handling_days=0.0, modes=("sea",), service_by_class={"A": 0.95, "B": 0.9, "C": 0.75})


def _plan(paths: pl.DataFrame, inputs: dict[str, pl.DataFrame], lead: pl.DataFrame, fr: pl.DataFrame,
          cfg: RestockConfig = CFG) -> pl.DataFrame:  # fmt: skip
    return plan_restock(paths, inputs["positions"], inputs["skus"], inputs["warehouses"], lead, fr, None, cfg)


@pytest.mark.parametrize(
    ("lead_days", "on_hand", "case", "moq", "target", "order"),
    [
        pytest.param(14.0, 12, 4, 0, 30, 20, id="3-weeks-cover-18-short-rounded-to-case"),
        pytest.param(14.0, 12, 4, 24, 30, 24, id="moq-binds"),
        pytest.param(14.0, 40, 4, 0, 30, 0, id="position-covers-target"),
        pytest.param(10.5, 0, 1, 0, 25, 25, id="fractional-last-week"),
    ],
)
def test_order_up_to_hand_computed(lead_days: float, on_hand: int, case: int, moq: int, target: int,
                                   order: int) -> None:  # fmt: skip
    # 10 units every week on every path, lead time constant, review 7 days: demand over cover is exact.
    lead, fr = _lanes([lead_days] * 5)
    plan = _plan(_paths([[10.0]] * 3), _inputs(on_hand=on_hand, case=case, moq=moq), lead, fr)
    row = plan.row(0, named=True)
    assert row["order_up_to_units"] == target
    assert row["order_units"] == order
    assert row["safety_stock_units"] == pytest.approx(0.0, abs=1e-9)
    assert row["mode"] == "sea" and row["is_order"] == (order > 0)
    if order:
        assert row["freight_usd"] == pytest.approx(60.0 + 1.0 * 0.5 * order)
        assert f"order {order}" in row["reason"] and "on hand" in row["reason"]


def test_order_up_to_is_the_service_quantile_of_path_totals() -> None:
    # 4 paths of 0, 10, 20, 30 per week; cover 1 week (lead 0); class C target 0.75:
    # quantile(0, 10, 20, 30; 0.75) = 22.5 -> 23; on order 5 -> order 18.
    lead, fr = _lanes([0.0])
    plan = _plan(_paths([[0.0], [10.0], [20.0], [30.0]]), _inputs(on_hand=0, on_order=5, case=1), lead, fr)
    assert plan["order_up_to_units"][0] == 23
    assert plan["order_units"][0] == 18
    assert plan["safety_stock_units"][0] == pytest.approx(23 - 15.0)


CLASS_A = pl.DataFrame({"warehouse_id": ["W1"], "sku_id": ["S1"], "abc_class": ["A"]})


def _safety(weekly: list[list[float]], leads: list[float]) -> float:
    lead, fr = _lanes(leads)
    i = _inputs(on_hand=0)
    plan = plan_restock(_paths(weekly), i["positions"], i["skus"], i["warehouses"], lead, fr, CLASS_A, CFG)
    return plan["safety_stock_units"][0]


Z = np.clip(np.random.default_rng(1).standard_normal(60), -3.0, 3.0)


@settings(max_examples=10, deadline=None)
@given(mean=st.floats(1.0, 50.0), spread=st.floats(0.0, 0.3), extra=st.floats(0.0, 0.03))
def test_more_demand_uncertainty_never_lowers_safety_stock(mean: float, spread: float, extra: float) -> None:
    """Same mean demand, a wider spread across paths, same lead time (class A, 95%)."""
    z = Z - Z.mean()
    base = _safety([[mean * (1 + spread * zi)] for zi in z], [14.0])
    wider = _safety([[mean * (1 + (spread + extra) * zi)] for zi in z], [14.0])
    assert wider > base - 1.0  # the order-up-to level is rounded up to a whole unit


@settings(max_examples=10, deadline=None)
@given(mean=st.floats(1.0, 50.0), spread=st.floats(0.0, 6.0), extra=st.floats(0.0, 6.0))
def test_more_lead_time_uncertainty_never_lowers_safety_stock(
    mean: float, spread: float, extra: float
) -> None:
    """Same demand on every path, lead times 14 +- spread vs 14 +- (spread + extra)."""
    base = _safety([[mean]] * 60, [14.0 - spread, 14.0, 14.0 + spread])
    wider = _safety([[mean]] * 60, [14.0 - spread - extra, 14.0, 14.0 + spread + extra])
    assert wider > base - 1.0


def _many(n: int, seed: int) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    skus = [f"S{i}" for i in range(n)]
    paths = pl.concat(
        [_paths([[float(x)] for x in rng.gamma(2.0, 10.0 * (i + 1) / n + 1, 20)], "W1", s)
         for i, s in enumerate(skus)]
    )  # fmt: skip
    return {
        "paths": paths,
        "positions": pl.DataFrame({"warehouse_id": ["W1"] * n, "sku_id": skus,
                                   "on_hand_units": rng.integers(0, 40, n), "on_order_units": [0] * n}),
        "skus": pl.DataFrame({"sku_id": skus, "unit_cost_usd": rng.uniform(1, 20, n), "price_usd": [30.0] * n,
                              "weight_kg": rng.uniform(0.1, 2, n), "case_pack": rng.integers(1, 13, n),
                              "min_order_units": rng.integers(0, 30, n)}),
        "classes": pl.DataFrame({"warehouse_id": ["W1"] * n, "sku_id": skus,
                                 "abc_class": rng.choice(["A", "B", "C"], n)}),
    }  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 12), seed=st.integers(0, 1000), capacity=st.integers(0, 2000),
       budget=st.one_of(st.none(), st.floats(0, 5000)))  # fmt: skip
def test_capacity_and_budget_are_never_exceeded(
    n: int, seed: int, capacity: int, budget: float | None
) -> None:
    data = _many(n, seed)
    lead, fr = _lanes([14.0, 20.0, 30.0], [6.0, 8.0])
    whs = pl.DataFrame({"warehouse_id": ["W1"], "capacity_units": [capacity],
                        "holding_cost_usd_per_unit_week": [0.05]})  # fmt: skip
    cfg = RestockConfig(handling_days=2.0, modes=("sea", "air"), budget_usd=budget)
    plan = plan_restock(data["paths"], data["positions"], data["skus"], whs, lead, fr, data["classes"], cfg)
    existing = int(plan["stock_at_arrival_units"].sum())
    assert existing <= data["positions"]["on_hand_units"].sum()  # demand until arrival only lowers it
    assert (plan["order_units"] + plan["expedite_units"]).sum() <= max(capacity - existing, 0)
    spend = (plan["order_value_usd"] + plan["freight_usd"]).sum()
    if budget is not None:
        assert spend <= budget + 0.05
    for col in ("order_units", "expedite_units"):
        assert (plan[col] % plan["case_pack"] == 0).all()
        placed = plan.filter(pl.col(col) > 0)
        assert (placed[col] >= placed["min_order_units"]).all()
        assert (plan[col] <= plan[f"{col.removesuffix('_units')}_units_unconstrained"]).all()
    cut = plan.filter(
        (pl.col("order_units") < pl.col("order_units_unconstrained"))
        | (pl.col("expedite_units") < pl.col("expedite_units_unconstrained"))
    )
    assert cut["reason"].str.contains("cut from").all()


def test_mode_choice_big_order_by_sea_small_urgent_by_air() -> None:
    lead, fr = _lanes([35.0] * 10, [7.0] * 10)
    cfg = CFG.model_copy(update={"modes": ("sea", "air"), "handling_days": 0.0})
    big = _plan(_paths([[200.0]] * 5), _inputs(on_hand=0, case=1), lead, fr, cfg)
    assert big["mode"][0] == "sea" and big["expedite_units"][0] == 0
    # almost nothing needed and a high fixed sea fee: air wins
    fr_small = fr.with_columns(pl.when(pl.col("mode") == "sea").then(500.0).otherwise(pl.col("fixed_usd"))
                               .alias("fixed_usd"))  # fmt: skip
    small = _plan(_paths([[1.0]] * 5), _inputs(on_hand=0, case=1), lead, fr_small, cfg)
    assert small["expedite_mode"][0] == "air" and small["expedite_units"][0] > 0
    assert "expedite" in small["reason"][0] and "sea" in small["mode_costs"][0]
    # with enough stock to last until sea arrives there is no reason to fly
    calm = _plan(_paths([[1.0]] * 5), _inputs(on_hand=6, case=1), lead, fr_small, cfg)
    assert calm["expedite_units"][0] == 0 and calm["expedite_mode"][0] is None


def test_plan_errors_are_clear() -> None:
    lead, fr = _lanes([14.0])
    with pytest.raises(ValueError, match="not in skus"):
        inputs = _inputs()
        inputs["skus"] = inputs["skus"].with_columns(pl.lit("S9").alias("sku_id"))
        _plan(_paths([[1.0]]), inputs, lead, fr)
    with pytest.raises(ValueError, match="exceeds the 8 weeks"):
        _plan(_paths([[1.0]]), _inputs(), _lanes([70.0])[0], fr)


T = dt.datetime


def test_stock_positions_and_lead_times_are_point_in_time() -> None:
    utc = dt.UTC
    rep = pl.DataFrame({
        "replenishment_id": ["R1", "R2", "R3"], "warehouse_id": ["W1"] * 3, "sku_id": ["S1"] * 3,
        "units": [10, 20, 30], "mode": ["sea", "sea", "air"],
        "shipped_at": [T(2025, 1, 1, tzinfo=utc), T(2025, 1, 20, tzinfo=utc), T(2025, 2, 5, tzinfo=utc)],
        "received_at": [T(2025, 1, 31, tzinfo=utc), T(2025, 2, 20, tzinfo=utc), None],
        "freight_cost_usd": [70.0, 80.0, 100.0],
    })  # fmt: skip
    sales = pl.DataFrame({"date": [dt.date(2025, 2, 8), dt.date(2025, 2, 9), dt.date(2025, 2, 10)],
                          "warehouse_id": ["W1"] * 3, "sku_id": ["S1"] * 3, "units_sold": [1, 1, 1],
                          "on_hand_end": [7, 6, 5]})  # fmt: skip
    as_of = dt.date(2025, 2, 10)
    pos = stock_positions(sales, rep, as_of)
    assert pos.select("on_hand_units", "on_order_units").row(0) == (6, 50)  # R2 and R3 open
    lt = lead_time_samples(rep, as_of)
    assert lt["lead_days"].to_list() == [30.0]  # only R1 was received before the plan date
    skus = pl.DataFrame({"sku_id": ["S1"], "weight_kg": [1.0]})
    assert freight_rates(rep, skus, as_of)["n_obs"].to_list() == [1]


def test_abc_classes_by_revenue() -> None:
    sales = pl.DataFrame({"date": [dt.date(2025, 1, 5)] * 4, "warehouse_id": ["W1"] * 4,
                          "sku_id": ["a", "b", "c", "d"], "units_sold": [80, 10, 6, 4],
                          "price_usd": [1.0] * 4})  # fmt: skip
    skus = pl.DataFrame({"sku_id": ["a", "b", "c", "d"], "price_usd": [1.0] * 4})
    out = abc_classes(sales, skus, dt.date(2025, 1, 10), RestockConfig())
    assert dict(zip(out["sku_id"], out["abc_class"], strict=True)) == {"a": "A", "b": "B", "c": "B", "d": "C"}


def test_on_order_due_after_the_window_does_not_cover_the_need() -> None:
    # 10/week, lead 7 d (+ review 7 d) = 2 weeks cover -> need 20. 30 units on order:
    # due in 3 days they cover it (no order); due in 40 days they arrive too late (order 20).
    lead, fr = _lanes([7.0] * 5)
    inputs = _inputs(on_hand=0, on_order=30, case=1)
    soon = inputs | {
        "positions": inputs["positions"].with_columns(
            pl.Series("on_order_lots", [[30]]), pl.Series("on_order_due_days", [[3.0]])
        )
    }
    late = inputs | {
        "positions": inputs["positions"].with_columns(
            pl.Series("on_order_lots", [[30]]), pl.Series("on_order_due_days", [[40.0]])
        )
    }
    assert _plan(_paths([[10.0]] * 3), soon, lead, fr)["order_units"][0] == 0
    assert _plan(_paths([[10.0]] * 3), late, lead, fr)["order_units"][0] == 20
    assert (
        _plan(_paths([[10.0]] * 3), inputs, lead, fr)["order_units"][0] == 0
    )  # no lots: all on order counts


def test_stock_positions_expected_due_days_of_open_lots() -> None:
    utc = dt.UTC
    rep = pl.DataFrame({
        "replenishment_id": ["R1", "R2"], "warehouse_id": ["W1"] * 2, "sku_id": ["S1"] * 2, "units": [10, 20],
        "mode": ["sea", "sea"],
        "shipped_at": [T(2025, 1, 1, tzinfo=utc), T(2025, 2, 1, tzinfo=utc)],
        "received_at": [T(2025, 1, 31, tzinfo=utc), None],
    })  # fmt: skip
    sales = pl.DataFrame({"date": [dt.date(2025, 2, 9)], "warehouse_id": ["W1"], "sku_id": ["S1"],
                          "units_sold": [1], "on_hand_end": [4]})  # fmt: skip
    as_of = dt.date(2025, 2, 10)
    lead = lead_time_samples(rep, as_of)  # one sea lead time of 30 days
    pos = stock_positions(sales, rep, as_of, lead).row(0, named=True)
    # R2 left 9 days before the plan date: expected in 30 - 9 = 21 days
    assert pos["on_order_lots"] == [20] and pos["on_order_due_days"] == pytest.approx([21.0])
    late = stock_positions(sales, rep, dt.date(2025, 3, 20), lead_time_samples(rep, dt.date(2025, 3, 20)))
    assert late.row(0, named=True)["on_order_due_days"] == [1.0]  # overdue lots are expected tomorrow
