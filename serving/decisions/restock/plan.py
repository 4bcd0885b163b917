"""Stage: decisions. Weekly restock plan: periodic-review order-up-to per SKU x warehouse.

Pure: demand sample paths (`models.demand_paths.sample_paths`), stock positions, lead-time samples and
freight rates (`serving.decisions.lead_times`), the `skus` and `warehouses` tables and ABC classes in; one
plan row per SKU x warehouse out (order lines and lines without an order, so the report can show cover and
risk everywhere). Reads and writes nothing.

`plan_restock` runs named steps: `join_series` + `series_inputs` (inputs.py: checked, aligned arrays),
`draw_mode_leads` + `mode_option` per mode (costs.py), `choose_modes` (regular mode and expedite),
`order_lines` (dual sourcing), `_plan_frame`, `apply_limits` (limits.py) and `_with_reason`.

The policy, per series and per candidate mode (sea, rail, air: each mode the warehouse has history for):

1. **Demand over the cover window.** Cover = lead time + review period. For each sample path `p` a lead time
   `L_p` is drawn from the mode's recent lead times (plus `handling_days`, order -> departure), so the demand
   over the window, `D_p = sum_h w_h(L_p) x units_{p,h}` with `w_h = clip(cover_weeks - (h - 1), 0, 1)`
   (the rule of `models.demand_paths.lead_time_demand`), carries both demand and lead-time uncertainty and the
   week-to-week dependence of the paths. Weekly quantiles are never summed.
2. **Order-up-to level** `S` = the `service_quantile` quantile of `D_p`, rounded up: the service target
   (per ABC class) itself, or, with a calibration (`RestockConfig.quantile_map`, per volume band), the
   quantile level that realised that target in a lost-sales replay on an earlier window.
   Safety stock = `S - mean(D_p)`.
3. **Order** = the `service_quantile` quantile of `D_p - position_p` when positive (= `S - (on hand + on
   order)` when everything on order arrives within the window), rounded up to the case pack and at least the
   minimum order quantity; 0 otherwise. `position_p` = on hand + the on-order lots due within path p's lead
   time + review period, when the positions carry lots with due days (`stock_positions(..., lead_samples)`).
4. **Cost of the mode** for this order over one cycle: freight (fixed + per kg) + in-transit holding
   (capital cost of the goods during the mean lead time) + on-hand holding (expected leftover at the end of
   the cycle plus half the review-period demand, for one review period, at the warehouse's holding cost) +
   expected stock-out cost (expected units short at the end of the cycle x lost margin + penalty). The
   regular mode is the cheapest per kg (sea); when it would arrive too late (P(stock-out before it can
   arrive) > 1 - target) the mode with the lowest total is chosen (ties: the faster one).
5. **Limits.** Per warehouse, the expected stock when the regular order lands (on hand + on order - mean
   demand over the regular lead time) + new orders never exceeds `capacity_units`. Over all warehouses,
   the purchase value + freight of new orders never exceeds `budget_usd` when set. Lines are served in
   priority order (expedites, then class A first, then the largest expected stock-out cost avoided per
   unit); a line that does not fit is cut to the largest case multiple that fits and is at least the MOQ,
   or dropped. Its reason says so.

Each line carries its reason: cover (lead time + review), target (quantile, class), on hand, on order, mode
(and the cost of the alternatives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from serving.decisions.restock.costs import (
    ModeLeads,
    ModeOption,
    draw_mode_leads,
    mode_option,
    round_order,
    select,
)
from serving.decisions.restock.inputs import SeriesInputs, join_series, series_inputs
from serving.decisions.restock.limits import apply_limits
from serving.decisions.restock.policy import SERIES, RestockConfig

__all__ = ["ModeChoice", "OrderLines", "choose_modes", "order_lines", "plan_restock"]


@dataclass(frozen=True)
class ModeChoice:
    """The mode of each series [S].

    Attributes:
        modes: the candidate modes with history, in config order (indices below refer to it).
        regular: index of the regular mode (the cheapest per kg the warehouse has).
        best: index of the mode the order goes by (`regular` unless a faster one is cheaper and allowed).
        pick: the regular mode's option per series.
        fast: the chosen mode's option per series.
        mode_costs: "sea 107; rail 99; air 72" (expected cycle cost of each available mode).
    """

    modes: list[str]
    regular: np.ndarray
    best: np.ndarray
    pick: ModeOption
    fast: ModeOption
    mode_costs: list[str]


@dataclass(frozen=True)
class OrderLines:
    """Unconstrained order lines per series [S]: the regular order and the expedite by a faster mode.

    Attributes:
        regular_units: units by the regular mode.
        regular_freight_usd: their freight.
        expedite_units: units by the faster mode (0 when none).
        expedite_mode: the faster mode, or None.
    """

    regular_units: np.ndarray
    regular_freight_usd: np.ndarray
    expedite_units: np.ndarray
    expedite_mode: list[str | None]


def _mode_options(
    inputs: SeriesInputs, lead_samples: pl.DataFrame, freight: pl.DataFrame, config: RestockConfig
) -> dict[str, ModeOption]:
    """The option of every candidate mode some warehouse has history and a rate for."""
    keys = inputs.base.select(SERIES)
    n_paths = inputs.demand.shape[1]
    options: dict[str, ModeOption] = {}
    for k, mode in enumerate(config.modes):
        leads: ModeLeads | None = draw_mode_leads(
            keys, lead_samples, freight, mode, n_paths, config.seed + k, config.handling_days
        )
        if leads is not None:
            options[mode] = mode_option(inputs, leads, mode, config)
    if not options:
        raise ValueError("no lead-time history for any candidate mode; cannot plan")
    return options


def choose_modes(options: dict[str, ModeOption], alpha: np.ndarray, config: RestockConfig) -> ModeChoice:
    """The regular mode is the cheapest per kg. A faster mode is considered when the regular one would
    arrive too late (P(stock-out before it can arrive) above 1 - target) or always with
    `expedite_only=False`; then the order goes by the cheapest mode in total expected cost (ties: faster)."""
    modes = list(options)
    opts = [options[m] for m in modes]
    n_s = alpha.size
    totals = np.stack([o.total for o in opts], axis=1)
    speed = np.stack([np.nan_to_num(o.lead_mean, nan=np.inf) for o in opts], axis=1)
    qtys = np.stack([o.qty for o in opts], axis=1)
    rate = np.stack([np.where(o.ok, o.per_kg, np.inf) for o in opts], axis=1)
    regular = rate.argmin(axis=1)
    pick = select(opts, regular)
    open_choice = ~np.full(n_s, config.expedite_only) | (pick.early_risk > 1.0 - alpha)
    cheapest_total = np.lexsort((speed.T, totals.T), axis=0)[0]
    best = np.where((qtys.max(axis=1) > 0) & open_choice, cheapest_total, regular)
    costs = [
        "; ".join(
            f"{m} {o.total[i]:.0f}" for m, o in zip(modes, opts, strict=True) if np.isfinite(o.total[i])
        )
        for i in range(n_s)
    ]
    return ModeChoice(modes, regular, best, pick, select(opts, best), costs)


def order_lines(choice: ModeChoice, inputs: SeriesInputs) -> OrderLines:
    """Dual sourcing: the faster mode ships what is needed before the regular mode could arrive; the regular
    mode still ships the rest of the need over its own (longer) window, so the pipeline keeps flowing."""
    faster = choice.best != choice.regular
    expedite = np.where(faster, choice.fast.qty, 0).astype(np.int64)
    rest = round_order(choice.pick.need - expedite, inputs.case, inputs.moq)
    regular = np.where(faster, rest, choice.pick.qty).astype(np.int64)
    modes = [choice.modes[j] if j != r else None for j, r in zip(choice.best, choice.regular, strict=True)]
    return OrderLines(regular, choice.pick.rate.cost(regular, inputs.weight), expedite, modes)


def _plan_frame(inputs: SeriesInputs, choice: ModeChoice, lines: OrderLines) -> pl.DataFrame:
    """The plan rows before limits: mode, lead, cover, order-up-to, unconstrained lines, costs and risk."""
    pick, fast = choice.pick, choice.fast
    plan = inputs.base.with_columns(
        pl.Series("mode", [choice.modes[j] for j in choice.regular]),
        pl.Series("lead_days_mean", pick.lead_mean).round(1),
        pl.Series("lead_days_p90", pick.lead_p90).round(1),
        pl.Series("cover_weeks", pick.cover_weeks).round(2),
        pl.Series("demand_cover_mean", pick.demand_cover_mean).round(1),
        pl.Series("order_up_to_units", pick.order_up_to.astype(np.int64)),
        pl.Series("order_units_unconstrained", lines.regular_units),
        pl.Series("freight_usd", lines.regular_freight_usd).round(2),
        pl.Series("expedite_mode", lines.expedite_mode, dtype=pl.String),
        pl.Series("expedite_units_unconstrained", lines.expedite_units),
        pl.Series("transit_holding_usd", fast.transit).round(2),
        pl.Series("holding_usd", fast.holding).round(2),
        pl.Series("stockout_cost_usd", fast.stockout).round(2),
        pl.Series("expected_cost_usd", fast.total).round(2),
        pl.Series("p_stockout", fast.p_stockout).round(3),
        pl.Series("p_stockout_before_regular", pick.early_risk).round(3),
        pl.Series("expected_short_units", fast.short).round(2),
        pl.Series("mode_costs", choice.mode_costs),
        pl.Series("weekly_demand_mean", inputs.weekly_mean),
        pl.Series("service_quantile", inputs.alpha).round(3),
    ).with_columns(
        (pl.col("order_up_to_units") - pl.col("demand_cover_mean")).round(1).alias("safety_stock_units"),
        (pl.col("on_hand_units") + pl.col("on_order_units")).alias("inventory_position"),
        pl.Series("demand_over_lead_mean", pick.lead_demand_mean).round(1),
        (pl.col("on_hand_units") / pl.col("weekly_demand_mean").clip(1e-9, None))
        .round(1)
        .alias("weeks_of_cover"),
    )
    arrival = (pl.col("inventory_position") - pl.col("demand_over_lead_mean")).clip(0, None).ceil()
    return plan.with_columns(arrival.cast(pl.Int64).alias("stock_at_arrival_units"))


def plan_restock(
    paths: pl.DataFrame,
    positions: pl.DataFrame,
    skus: pl.DataFrame,
    warehouses: pl.DataFrame,
    lead_samples: pl.DataFrame,
    freight: pl.DataFrame,
    classes: pl.DataFrame | None,
    config: RestockConfig,
) -> pl.DataFrame:
    """The restock plan: one row per SKU x warehouse present in both `paths` and `positions`.

    Args:
        paths: demand sample paths from the plan week on (`warehouse_id, sku_id, path_id, horizon, units`,
            horizon 1 = the week starting on the plan date).
        positions: `warehouse_id, sku_id, on_hand_units, on_order_units`
            (`serving.decisions.lead_times.stock_positions`), optionally `on_order_lots` (list of units) and
            `on_order_due_days` (list of days until each lot is expected): with them, a lot counts on a
            path only if it is due within that path's lead time + review period (so a fast air order is not
            cancelled by sea stock arriving after it is needed); without them all of `on_order_units` counts.
        skus: the contract table (`unit_cost_usd`, `price_usd`, `weight_kg`, `case_pack`, `min_order_units`).
        warehouses: the contract table (`capacity_units`, `holding_cost_usd_per_unit_week`).
        lead_samples: `warehouse_id, mode, lead_days` (`serving.decisions.lead_times.lead_time_samples`).
        freight: `warehouse_id, mode, fixed_usd, per_kg_usd` (`serving.decisions.lead_times.freight_rates`).
        classes: `warehouse_id, sku_id, abc_class` (`abc_classes`); None or missing series: class C.
        config: policy settings.

    Returns:
        One row per series: class, service target, chosen mode, lead days, cover, demand over cover (mean,
        target quantile), safety stock, on hand, on order, order-up-to, order units and cases, costs,
        P(stock-out) and expected fill over the cycle, weeks of cover, `is_order` and `reason`.

    Raises:
        ValueError: on missing columns, a series without a SKU row, or a cover longer than the paths.
    """
    base = join_series(paths, positions, skus, warehouses, classes, config)
    inputs = series_inputs(paths, base, config)
    choice = choose_modes(_mode_options(inputs, lead_samples, freight, config), inputs.alpha, config)
    lines = order_lines(choice, inputs)
    plan = apply_limits(_plan_frame(inputs, choice, lines), choice.fast.rate, choice.pick.rate, config)
    return _with_reason(plan)


def _with_reason(plan: pl.DataFrame) -> pl.DataFrame:
    reason = pl.format(
        "cover {} wk (lead {} d, p90 {} d, + review); target {} = P{} of demand over cover "
        "(class {} service {}%, mean {}); on hand {} + on order {} = {}; {}",
        pl.col("cover_weeks"),
        pl.col("lead_days_mean"),
        pl.col("lead_days_p90"),
        pl.col("order_up_to_units"),
        (pl.col("service_quantile") * 100).round(0).cast(pl.Int64),
        pl.col("abc_class"),
        (pl.col("service_target") * 100).round(0).cast(pl.Int64),
        pl.col("demand_cover_mean"),
        pl.col("on_hand_units"),
        pl.col("on_order_units"),
        pl.col("inventory_position"),
        pl.when(pl.col("order_units") > 0)
        .then(pl.format("order {} ({} cases of {}) by {}", "order_units", "order_cases", "case_pack", "mode"))
        .when(pl.col("expedite_units") > 0)
        .then(pl.format("no {} order (the expedite covers the need)", "mode"))
        .otherwise(pl.lit("no order (position covers the target)")),
    )  # fmt: skip
    expedite = pl.format(
        "; expedite {} by {}: P(stock-out before {} arrives) {}% (expected cost USD: {})",
        "expedite_units", "expedite_mode", "mode", (pl.col("p_stockout_before_regular") * 100).round(0),
        "mode_costs",
    )  # fmt: skip
    reason = pl.when(pl.col("expedite_units") > 0).then(pl.concat_str(reason, expedite)).otherwise(reason)
    cut = pl.concat_str(reason, pl.lit("; "), "limit_note")
    reason = pl.when(pl.col("limit_note") != "").then(cut).otherwise(reason)
    return plan.with_columns(reason.alias("reason")).sort("warehouse_id", "sku_id")
