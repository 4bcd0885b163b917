"""Stage: decisions. Capacity and budget limits of a restock plan: lines cut in priority order.

Pure: a plan frame with unconstrained order and expedite units in; the same frame with the units that fit,
their freight, value and a note on every cut out. Reads and writes nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from serving.decisions.restock.costs import FreightRate
from serving.decisions.restock.policy import RestockConfig

__all__ = ["apply_limits"]


def _fit_lines(
    plan: pl.DataFrame, want: np.ndarray, rate: FreightRate, room: dict[str, float], budget: list[float]
) -> tuple[np.ndarray, list[str]]:
    """Fit order lines in priority order (class A first, then the largest stock-out cost avoided per unit)
    into the warehouses' remaining room and the remaining budget (both updated in place)."""
    case = plan["case_pack"].to_numpy().astype(np.int64)
    moq = np.ceil(plan["min_order_units"].to_numpy() / case).astype(np.int64) * case
    var_cost = (
        plan["unit_cost_usd"].to_numpy() + rate.per_kg * plan["weight_kg"].to_numpy()
    )  # purchase + freight
    avoided = plan["stockout_cost_usd"].to_numpy() / np.maximum(want, 1)
    priority = np.lexsort((-avoided, plan["abc_class"].to_numpy()))
    wh = plan["warehouse_id"].to_list()
    qty = want.copy()
    note = [""] * plan.height
    for i in priority:
        if want[i] <= 0:
            continue
        space = int(min(room[wh[i]], 1e15))
        fit = min(int(want[i]), space // case[i] * case[i])
        by_budget = False
        if np.isfinite(budget[0]):
            afford = int(max(budget[0] - rate.fixed[i], 0.0) // max(var_cost[i], 1e-9))
            if afford // case[i] * case[i] < fit:
                fit, by_budget = afford // case[i] * case[i], True
        if fit < moq[i]:
            fit = 0
        if fit < want[i]:
            why = [w for w, hit in (("capacity", space < want[i]), ("budget", by_budget)) if hit]
            note[i] = f"cut from {want[i]} by {' and '.join(why)}"
        room[wh[i]] -= fit
        if fit > 0:
            budget[0] -= fit * var_cost[i] + rate.fixed[i]
        qty[i] = fit
    return qty, note


def _room(plan: pl.DataFrame) -> dict[str, float]:
    """Units each warehouse can still take: capacity - expected stock when the regular order lands."""
    room: dict[str, float] = {}
    cols = ("warehouse_id", "capacity_units", "stock_at_arrival_units")
    for w, cap, stock in plan.select(cols).iter_rows():
        room[w] = room.get(w, float("inf") if cap is None else float(cap)) - stock
    return {w: max(v, 0.0) for w, v in room.items()}


def apply_limits(
    plan: pl.DataFrame, expedite_rate: FreightRate, regular_rate: FreightRate, config: RestockConfig
) -> pl.DataFrame:
    """Cut lines so capacity (per warehouse) and budget (overall) hold.

    Capacity: the expected stock when the regular order lands (`stock_at_arrival_units` = on hand + on
    order - mean demand over the regular lead time, at least 0) plus the new orders stays within
    `capacity_units`. Expedite lines are served first (they prevent the nearest stock-outs), then the
    regular ones.

    Returns:
        The plan with `order_units`, `expedite_units`, `freight_usd`, `limit_note`, `order_cases`,
        `order_value_usd` and `is_order`.
    """
    room = _room(plan)
    budget = [np.inf if config.budget_usd is None else float(config.budget_usd)]
    exp_want = plan["expedite_units_unconstrained"].to_numpy().astype(np.int64)
    exp_qty, exp_note = _fit_lines(plan, exp_want, expedite_rate, room, budget)
    reg_want = plan["order_units_unconstrained"].to_numpy().astype(np.int64)
    reg_qty, reg_note = _fit_lines(plan, reg_want, regular_rate, room, budget)
    weight = plan["weight_kg"].to_numpy()
    freight = regular_rate.cost(reg_qty, weight) + expedite_rate.cost(exp_qty, weight)
    notes = [
        "; ".join(x for x in (f"expedite {e}" if e else "", r) if x)
        for e, r in zip(exp_note, reg_note, strict=True)
    ]
    return plan.with_columns(
        pl.Series("order_units", reg_qty),
        pl.Series("expedite_units", exp_qty),
        pl.Series("freight_usd", freight).round(2),
        pl.Series("limit_note", notes, dtype=pl.String),
    ).with_columns(
        (pl.col("order_units") // pl.col("case_pack")).alias("order_cases"),
        ((pl.col("order_units") + pl.col("expedite_units")) * pl.col("unit_cost_usd"))
        .round(2)
        .alias("order_value_usd"),
        ((pl.col("order_units") + pl.col("expedite_units")) > 0).alias("is_order"),
    )
