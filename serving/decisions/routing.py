"""Stage: decisions. Routing per order: rank the ways to ship it by expected cost under an on-time constraint.

Pure: orders, contracted lanes, warehouse stock and a scorer (the Predictor, or a fake in tests) in, one row
per order x option out. Reads and writes nothing.

Options of an order:

* ship from China: every lane of `lanes` from the order's `origin_hub` to its `destination_country` whose mode
  is a parcel mode (postal, dedicated_line, express), one option per mode x carrier;
* fulfil from an overseas warehouse: every `overseas_warehouse` lane whose `origin_hub` (the warehouse id)
  serves the order's `destination_country`, when `stock` shows at least the order's units of its `sku_id`
  in that warehouse.

Each option is scored as a shipment (contract `shipments` columns, `shipment_id = "<order_id>|<option_id>"`)
by `scorer`, which must return one row per input row, in order, with `eta_days_q50/q80/q95` and optionally
`p_late`. Then:

* `freight_usd` = lane `base_rate_usd` + `per_kg_rate_usd` x `weight_kg`;
* `duties_usd` = destination duty rate x declared value when the value is over the de minimis threshold in
  force on the order day and the order ships from China (a warehouse order was imported in bulk; its duties
  are in the landed unit cost, the same for every option, so they do not move the ranking);
* `p_late` = 1 - the CDF of the ETA distribution (`serving.decisions.eta_distribution`, the one promise
  dates are quantiles of) at the days between `created_at` and the end of `promised_date`, or, with
  `p_late_source="model"`, the scorer's `p_late` (delay model) when present;
* `expected_cost_usd` = freight + duties + `p_late` x `late_penalty_usd`;
* `is_feasible` = `p_on_time >= on_time_target` (the chance constraint);
* `rank` 1.. : feasible options first, then by expected cost (ties: faster q50, then option id). If no option
  is feasible, the one with the highest P(on time) is rank 1 (ties by expected cost) and the `reason` says
  the constraint could not be met.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.customs_rules import add_de_minimis
from serving.decisions.eta_distribution import days_to_end_of_date_expr, p_late_expr

__all__ = [
    "ORDER_COLUMNS",
    "RoutingConfig",
    "default_duty_rates",
    "rank_routes",
    "recommend_routes",
    "route_options",
]

ORDER_COLUMNS: Final[dict[str, str]] = {
    "order_id": "String, required: unique order id",
    "created_at": "Datetime UTC, required: checkout / booking moment",
    "origin_hub": "String, required: Chinese export hub the seller ships from (SZX, CAN, ...)",
    "destination_country": "String, required: ISO-2 destination",
    "weight_kg": "Float64, required: chargeable weight of the parcel",
    "declared_value_usd": "Float64, required: customs value",
    "promised_date": "Date, required: the delivery date promised to the buyer",
    "sku_id": "String, optional: SKU ordered (needed for warehouse fulfilment)",
    "units": "Int64, optional (default item_count or 1): units of the SKU the warehouse must have",
    "destination_region, hs_code, item_count, incoterm, seller_id, origin_country": "optional, passed to the "
    "scorer (defaults: null, null, 1, DDP, null, CN)",
}
_PARCEL_MODES: Final = ("postal", "dedicated_line", "express")
_REQUIRED: Final = (
    "order_id",
    "created_at",
    "origin_hub",
    "destination_country",
    "weight_kg",
    "declared_value_usd",
    "promised_date",
)


class RoutingConfig(BaseModel):
    """What the routing recommendation optimises.

    Attributes:
        on_time_target: chance constraint, P(delivered by the promise) >= this.
        late_penalty_usd: cost of one late delivery (refunds, support, lost repeat purchase).
        p_late_source: "eta" (default) derives P(late) from the ETA quantiles; "model" uses the scorer's
            delay probability when it returns one. In the routing replay (docs/decisions.md) the delay model
            was overconfident for promises unlike the ones it was trained on; the ETA route was calibrated.
        include_warehouse: consider fulfilment from overseas warehouses with stock.
        duty_rates: ISO-2 -> duty rate on a formal entry (default: the reference world's rates).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_time_target: float = Field(default=0.9, gt=0, lt=1)
    late_penalty_usd: float = Field(default=15.0, ge=0)
    p_late_source: Literal["model", "eta"] = "eta"
    include_warehouse: bool = True
    duty_rates: dict[str, float] | None = None


def default_duty_rates() -> dict[str, float]:
    """Duty rate per destination country of the reference world (`features.sources.simulator.world.DESTINATIONS`)."""
    from features.sources.simulator.world import DESTINATIONS

    return {d.country: d.duty_rate for d in DESTINATIONS}


def _check_orders(orders: pl.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in orders.columns]
    if missing:
        raise ValueError(f"orders need columns {missing}; see serving.decisions.routing.ORDER_COLUMNS")
    for col in ("order_id", "origin_hub", "destination_country", "weight_kg", "declared_value_usd"):
        bad = orders.with_row_index("_row").filter(pl.col(col).is_null())
        if bad.height:
            raise ValueError(f"orders row {bad['_row'][0]}: {col} is null (required)")
    bad = orders.with_row_index("_row").filter(pl.col("weight_kg") <= 0)
    if bad.height:
        raise ValueError(f"orders row {bad['_row'][0]}: weight_kg must be > 0, got {bad['weight_kg'][0]}")
    if orders["order_id"].n_unique() != orders.height:
        raise ValueError("orders: order_id must be unique")


def _with_defaults(orders: pl.DataFrame) -> pl.DataFrame:
    defaults: dict[str, pl.Expr] = {
        "sku_id": pl.lit(None, pl.String),
        "item_count": pl.lit(1, pl.Int32),
        "incoterm": pl.lit("DDP"),
        "hs_code": pl.lit(None, pl.String),
        "destination_region": pl.lit(None, pl.String),
        "seller_id": pl.lit(None, pl.String),
        "origin_country": pl.lit("CN"),
    }
    out = orders.with_columns(v.alias(k) for k, v in defaults.items() if k not in orders.columns)
    if "units" not in out.columns:
        out = out.with_columns(pl.col("item_count").fill_null(1).cast(pl.Int64).alias("units"))
    return out


def route_options(
    orders: pl.DataFrame,
    lanes: pl.DataFrame,
    stock: pl.DataFrame | None = None,
    config: RoutingConfig | None = None,
) -> pl.DataFrame:
    """Candidate options of every order, with their freight and duties, as scorer-ready shipment rows.

    Args:
        orders: one row per order (columns in `ORDER_COLUMNS`).
        lanes: the contract `lanes` table.
        stock: `warehouse_id, sku_id, on_hand_units` (units available now), or None for no warehouse option.
        config: routing settings (duty rates, warehouse on/off).

    Returns:
        One row per order x option: the order's columns, `option_id`, `source` ("china" or "warehouse"),
        `mode`, `carrier`, `origin_hub`, `warehouse_id`, `freight_usd`, `duties_usd`, `shipment_id`,
        `shipping_cost_usd`. Orders without any option are absent.
    """
    config = config or RoutingConfig()
    _check_orders(orders)
    base = _with_defaults(orders).drop("mode", "carrier", "warehouse_id", strict=False)
    lane_cols = ["origin_hub", "destination_country", "mode", "carrier", "base_rate_usd", "per_kg_rate_usd"]
    china_lanes = lanes.filter(pl.col("mode").cast(pl.String).is_in(_PARCEL_MODES)).select(lane_cols)
    china = base.join(china_lanes, on=["origin_hub", "destination_country"], how="inner").with_columns(
        pl.lit("china").alias("source"), pl.lit(None, pl.String).alias("warehouse_id")
    )
    parts = [china]
    if config.include_warehouse and stock is not None and "sku_id" in orders.columns:
        wh_lanes = lanes.filter(pl.col("mode").cast(pl.String) == "overseas_warehouse").select(
            pl.col("origin_hub").alias("warehouse_id"), *lane_cols[1:]
        )
        avail = stock.select("warehouse_id", "sku_id", pl.col("on_hand_units").cast(pl.Int64))
        wh = (
            base.drop("origin_hub", "origin_country")
            .join(wh_lanes, on="destination_country", how="inner")
            .join(avail, on=["warehouse_id", "sku_id"], how="inner")
            .filter(pl.col("on_hand_units") >= pl.col("units"))
            .drop("on_hand_units")
            .with_columns(
                pl.col("warehouse_id").alias("origin_hub"),
                pl.col("warehouse_id").str.extract(r"^WH-([A-Z]{2})-").alias("origin_country"),
                pl.lit("warehouse").alias("source"),
            )
        )
        parts.append(wh.select(china.columns))
    options = pl.concat(parts, how="vertical_relaxed")
    rates = config.duty_rates if config.duty_rates is not None else default_duty_rates()
    duty_rate = pl.col("destination_country").replace_strict(rates, default=0.0, return_dtype=pl.Float64)
    options = add_de_minimis(options).with_columns(
        (pl.col("base_rate_usd") + pl.col("per_kg_rate_usd") * pl.col("weight_kg"))
        .round(2)
        .alias("freight_usd"),
        pl.when((pl.col("source") == "china") & pl.col("is_over_de_minimis").fill_null(False))
        .then(duty_rate * pl.col("declared_value_usd"))
        .otherwise(0.0)
        .round(2)
        .alias("duties_usd"),
        pl.concat_str(
            pl.col("mode").cast(pl.String), pl.col("carrier"), pl.col("origin_hub"), separator=":"
        ).alias("option_id"),
    )
    return (
        options.with_columns(
            pl.concat_str("order_id", "option_id", separator="|").alias("shipment_id"),
            pl.col("freight_usd").alias("shipping_cost_usd"),
        )
        .drop("base_rate_usd", "per_kg_rate_usd", "de_minimis_headroom_usd")
        .sort("order_id", "option_id")
    )


def _reason(config: RoutingConfig, any_feasible: pl.Expr) -> pl.Expr:
    """Why each option ranks where it does: its numbers, or that it (or every option) misses the target."""
    return (
        pl.when(pl.col("is_feasible"))
        .then(
            pl.format(
                "P(on time) {}% >= {}%; expected cost {} USD = freight {} + duties {} + P(late) x {}",
                (pl.col("p_on_time") * 100).round(1),
                pl.lit(round(config.on_time_target * 100, 1)),
                pl.col("expected_cost_usd").round(2),
                pl.col("freight_usd").round(2),
                pl.col("duties_usd").round(2),
                pl.lit(config.late_penalty_usd),
            )
        )
        .when(any_feasible)
        .then(pl.format("infeasible: P(on time) {}% < target", (pl.col("p_on_time") * 100).round(1)))
        .otherwise(
            pl.format(
                "no option meets the {}% target; the most reliable first (P(on time) {}%)",
                pl.lit(round(config.on_time_target * 100, 1)),
                (pl.col("p_on_time") * 100).round(1),
            )
        )
    )


def rank_routes(scored: pl.DataFrame, config: RoutingConfig) -> pl.DataFrame:
    """Expected cost, chance constraint and rank of scored options.

    Args:
        scored: `route_options` rows with the scorer's `eta_days_q50/q80/q95` (and optionally `p_late`).
        config: on-time target, late penalty and P(late) source.

    Returns:
        The rows with `p_late`, `p_on_time`, `days_to_promise`, `late_cost_usd`, `expected_cost_usd`,
        `is_feasible`, `rank`, `is_recommended` and `reason`, sorted by order and rank.
    """
    out = scored.with_columns(days_to_end_of_date_expr("promised_date").alias("days_to_promise"))
    p_eta = p_late_expr(pl.col("days_to_promise"))
    if config.p_late_source == "model" and "p_late" in out.columns:
        p_late = pl.coalesce(pl.col("p_late").cast(pl.Float64), p_eta)
    else:
        p_late = p_eta
    out = out.with_columns(p_late.clip(0.0, 1.0).alias("p_late")).with_columns(
        (1.0 - pl.col("p_late")).alias("p_on_time"),
        (pl.col("p_late") * config.late_penalty_usd).alias("late_cost_usd"),
    )
    out = out.with_columns(
        (pl.col("freight_usd") + pl.col("duties_usd") + pl.col("late_cost_usd")).alias("expected_cost_usd"),
        # An option without a usable ETA (null or NaN quantiles) is never feasible and never ranked first.
        ((pl.col("p_on_time") >= config.on_time_target) & pl.col("p_on_time").is_not_nan())
        .fill_null(False)
        .alias("is_feasible"),
    )
    # Feasible options by expected cost; an order without any feasible option gets the most reliable one
    # first (the chance constraint is then missed by as little as possible), ties by cost.
    any_feasible = pl.col("is_feasible").any().over("order_id")
    infeasible_key = pl.when(any_feasible).then(pl.lit(0.0)).otherwise(-pl.col("p_on_time").fill_nan(None))
    out = out.sort(
        "order_id",
        pl.col("is_feasible").not_(),
        infeasible_key,
        "expected_cost_usd",
        "eta_days_q50",
        "option_id",
        nulls_last=True,
    ).with_columns(pl.int_range(1, pl.len() + 1).over("order_id").cast(pl.Int32).alias("rank"))
    return out.with_columns(
        (pl.col("rank") == 1).alias("is_recommended"), _reason(config, any_feasible).alias("reason")
    )


def recommend_routes(
    orders: pl.DataFrame,
    scorer: Callable[[pl.DataFrame], pl.DataFrame],
    lanes: pl.DataFrame,
    stock: pl.DataFrame | None,
    config: RoutingConfig,
) -> pl.DataFrame:
    """Every option of every order, scored, costed and ranked.

    Args:
        orders: one row per order, columns in `ORDER_COLUMNS`.
        scorer: shipment rows (contract `shipments` columns) -> one row per input row, in order, with
            `eta_days_q50/q80/q95` and optionally `p_late` (e.g. `Predictor.predict_shipments`).
        lanes: the contract `lanes` table.
        stock: `warehouse_id, sku_id, on_hand_units`, or None (no warehouse fulfilment).
        config: routing settings.

    Returns:
        One row per order x option (see module docstring): order_id, option_id, source, mode, carrier,
        origin_hub, warehouse_id, freight_usd, duties_usd, eta_days_q50/q80/q95, days_to_promise, p_late,
        p_on_time, late_cost_usd, expected_cost_usd, is_feasible, rank, is_recommended, reason.

    Raises:
        ValueError: on missing/invalid order columns, or a scorer returning the wrong number of rows or no
            ETA quantile columns.
    """
    options = route_options(orders, lanes, stock, config)
    if options.is_empty():
        return rank_routes(
            options.with_columns(*(pl.lit(None, pl.Float64).alias(f"eta_days_q{q}") for q in (50, 80, 95))),
            config,
        )
    scores = scorer(options)
    if scores.height != options.height:
        raise ValueError(f"scorer returned {scores.height} rows for {options.height} options")
    needed = ["eta_days_q50", "eta_days_q80", "eta_days_q95"]
    missing = [c for c in needed if c not in scores.columns]
    if missing:
        raise ValueError(f"scorer output lacks {missing}")
    keep = [*needed, *(c for c in ("p_late", "p_inspection", "model_version") if c in scores.columns)]
    scored = pl.concat([options.drop(keep, strict=False), scores.select(keep)], how="horizontal")
    ranked = rank_routes(scored, config)
    front = [
        "order_id", "rank", "is_recommended", "option_id", "source", "mode", "carrier", "origin_hub",
        "warehouse_id", "freight_usd", "duties_usd", "eta_days_q50", "eta_days_q80", "eta_days_q95",
        "days_to_promise", "p_late", "p_on_time", "late_cost_usd", "expected_cost_usd", "is_feasible",
        "reason",
    ]  # fmt: skip
    return ranked.select(*front, *(c for c in ranked.columns if c not in front))
