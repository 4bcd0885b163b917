"""Stage: simulator (overseas-warehouse side). Daily stock and bulk replenishment of every SKU x warehouse.

Reads nothing from disk and writes nothing. `simulate_stock` takes the uncensored daily demand of every
series (built by `features.sources.simulator.demand`) and plays it against the stock on hand, day by day and
vectorised across all series: sales are censored by stock, and an imperfect weekly periodic-review planner
orders bulk replenishments that travel by sea, China-Europe rail or air. The planner forecasts from the
censored sales of the last weeks (so it lags and under-reacts), anticipates seasons and peaks only in part,
and plans with the average lead time, while real lead times include handling at origin (slowed by Chinese
New Year and Golden Week), line-haul congestion in the peak season and import customs (with inspections).
Stock-outs therefore happen at a realistic rate, more around peaks and after Chinese New Year.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.sources.simulator.inventory_warehouses import WarehouseSpec

__all__ = [
    "REPLENISHMENT_MODE_NAMES",
    "ReplenishmentConfig",
    "StockInputs",
    "StockResult",
    "replenishments_frame",
    "simulate_stock",
    "warehouses_frame",
]

logger = logging.getLogger(__name__)

# Index of each mode in the arrays below (the strings are the contract's `Mode` levels).
REPLENISHMENT_MODE_NAMES = ("sea", "rail", "air")
_SEA, _RAIL, _AIR = 0, 1, 2
_CUSTOMS_MEDIAN_DAYS = np.array([2.5, 2.0, 1.0])  # import clearance by mode (sea, rail, air)
_HORIZON_DAYS = 200  # receipts later than this after the last simulated day are dropped
# Freight: fixed USD per shipment and USD per kg, by mode (sea, rail, air).
_FREIGHT_FIXED, _FREIGHT_PER_KG = np.array([60.0, 50.0, 25.0]), np.array([1.0, 2.1, 6.5])


class ReplenishmentConfig(BaseModel):
    """The planner of the overseas warehouses: a weekly (s, S) review with a lagging, noisy forecast.

    Attributes:
        review_weekday: ISO weekday of the review, 0 = Monday.
        forecast_window_days: the planner's forecast is the mean sales of this many past days.
        stockout_correction: 0 = the planner divides censored sales by all days on sale (forecast biased low
            after stock-outs), 1 = by in-stock days only (unbiased).
        forecast_noise_cv: multiplicative error of each review's forecast (judgement, data issues).
        anticipation: exponent on the known seasonal/peak ratio between the coverage window and the recent
            past; 1 = full anticipation, 0 = none. Below 1, peaks run out more often.
        safety_stock_days: days of forecast demand held as safety stock (a smaller value, more stock-outs).
        emergency_air_prob: probability that a series about to run out is rescued by an air order.
        handling_days: range of days between the order and the departure at normal origin capacity.
        customs_inspection_rate: share of replenishments held for an import inspection (3-10 extra days).
        initial_cover_days: range of days of demand on hand when the warm-up starts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    review_weekday: int = Field(default=0, ge=0, le=6)
    forecast_window_days: int = Field(default=28, ge=7)
    stockout_correction: float = Field(default=0.5, ge=0, le=1)
    forecast_noise_cv: float = Field(default=0.25, ge=0)
    anticipation: float = Field(default=0.6, ge=0)
    safety_stock_days: float = Field(default=9.0, ge=0)
    emergency_air_prob: float = Field(default=0.5, ge=0, le=1)
    handling_days: tuple[float, float] = (2.0, 7.0)
    customs_inspection_rate: float = Field(default=0.05, ge=0, le=1)
    initial_cover_days: tuple[float, float] = (30.0, 80.0)


@dataclass(frozen=True)
class StockInputs:
    """Everything the stock simulation needs, as arrays over days `D` (and `D + horizon`) and series `S`.

    Attributes:
        demand: [D, S] uncensored daily demand (int64).
        active: [D, S] the series is on sale that day.
        launch_idx: [S] first day on sale (index into the days; may be negative or >= D).
        stop_order_idx: [S] first day the planner no longer orders (phase-out before discontinuation).
        prior_rate: [S] the planner's daily demand estimate before any sales history (new SKUs).
        profile: [D + horizon, G] seasonal/peak/holiday factor the planner knows, per group.
        group: [S] group (category x warehouse) of each series into `profile`.
        warehouse: [S] index of the series' warehouse.
        case_pack: [S] order multiple.
        min_order_units: [S] minimum order quantity.
        origin_capacity: [D + horizon] Chinese origin capacity (`daily_calendar`).
        month: [D + horizon] calendar month of each day (1-12).
        weekday: [D + horizon] ISO weekday (0 = Monday).
        unit_weight_kg: [S] weight of one unit (freight cost).
        origin_hubs: [S, 3] origin hub of a sea, rail and air replenishment of the series.
    """

    demand: np.ndarray
    active: np.ndarray
    launch_idx: np.ndarray
    stop_order_idx: np.ndarray
    prior_rate: np.ndarray
    profile: np.ndarray
    group: np.ndarray
    warehouse: np.ndarray
    case_pack: np.ndarray
    min_order_units: np.ndarray
    origin_capacity: np.ndarray
    month: np.ndarray
    weekday: np.ndarray
    unit_weight_kg: np.ndarray
    origin_hubs: np.ndarray


@dataclass(frozen=True)
class StockResult:
    """Output of `simulate_stock`: daily [D, S] arrays and one entry per replenishment order.

    The order arrays (`order_*`) are aligned: series index, units, mode index, day of departure, day of
    receipt (may be >= D: still open), line-haul days and customs days.
    """

    sales: np.ndarray
    on_hand_end: np.ndarray
    is_stockout: np.ndarray
    order_series: np.ndarray
    order_units: np.ndarray
    order_mode: np.ndarray
    order_shipped_idx: np.ndarray
    order_received_idx: np.ndarray
    order_customs_days: np.ndarray


def simulate_stock(
    inputs: StockInputs,
    warehouses: tuple[WarehouseSpec, ...],
    config: ReplenishmentConfig,
    rng: np.random.Generator,
) -> StockResult:
    """Play uncensored demand against stock on hand, with weekly replenishment orders.

    One Python loop over days; every step is vectorised across all series. Receipts arrive at the start of a
    day; sales are `min(demand, on hand)`; a day is a stock-out when demand exceeded the stock or nothing was
    on hand while on sale (so `on_hand_end` is 0 on every stock-out day).

    Args:
        inputs: demand, life cycle and ordering constraints of every series.
        warehouses: the warehouses indexed by `inputs.warehouse`.
        config: the planner's policy.
        rng: random generator (all draws happen in a fixed order: same seed, same result).

    Returns:
        Censored sales, end-of-day stock, stock-out flags and the replenishment orders.
    """
    planner = _Planner(inputs, _Lanes.from_specs(warehouses, config), config, rng)
    orders: list[tuple[np.ndarray, ...]] = []
    for day in range(inputs.demand.shape[0]):
        planner.sell(day)
        if inputs.weekday[day] == config.review_weekday:
            orders.append(planner.review(day))
    columns = [np.concatenate(c) for c in zip(*orders, strict=True)] if orders else [np.zeros(0)] * 6
    series, units, mode, shipped, received, customs = columns
    logger.info(
        "stock simulated: %d series x %d days, %d replenishments, stock-out rate %.3f",
        inputs.demand.shape[1],
        inputs.demand.shape[0],
        len(series),
        planner.stockout.sum() / max(inputs.active.sum(), 1),
    )
    return StockResult(
        planner.sales,
        planner.on_hand_end,
        planner.stockout,
        series.astype(np.int64),
        units.astype(np.int64),
        mode.astype(np.int64),
        shipped.astype(np.int64),
        received.astype(np.int64),
        customs.astype(np.float64),
    )


@dataclass(frozen=True)
class _Lanes:
    """Line-haul days per (mode, warehouse) and the mode mix of regular orders."""

    transit_days: np.ndarray  # [mode, W], nan where the mode does not serve the warehouse
    planned_lead_days: np.ndarray  # [mode, W] what the planner assumes: handling + transit + customs
    regular_cum_share: np.ndarray  # [W, mode] cumulative probabilities of sea, rail, air

    @classmethod
    def from_specs(cls, specs: tuple[WarehouseSpec, ...], config: ReplenishmentConfig) -> _Lanes:
        transit = np.array(
            [
                [w.sea_days for w in specs],
                [w.rail_days if w.rail_days is not None else np.nan for w in specs],
                [w.air_days for w in specs],
            ]
        )
        planned = transit + _CUSTOMS_MEDIAN_DAYS[:, None] + np.mean(config.handling_days)
        rail = np.array([w.rail_share if w.rail_days is not None else 0.0 for w in specs])
        air = np.array([w.air_share for w in specs])
        shares = np.stack([1.0 - rail - air, rail, air], axis=1)
        return cls(transit, planned, np.cumsum(shares, axis=1))


class _Planner:
    """Stock state of all series and the weekly review that replenishes it (mutable, one simulation)."""

    def __init__(
        self, inputs: StockInputs, lanes: _Lanes, config: ReplenishmentConfig, rng: np.random.Generator
    ) -> None:
        n_days, n_series = inputs.demand.shape
        self.inputs, self.lanes, self.config, self.rng = inputs, lanes, config, rng
        self.planned_lead = lanes.planned_lead_days[:, inputs.warehouse]  # [mode, S]
        self.profile_cum = np.vstack([np.zeros((1, inputs.profile.shape[1])), np.cumsum(inputs.profile, 0)])
        cover = rng.uniform(*config.initial_cover_days, n_series)
        self.on_hand = np.where(inputs.active[0], np.round(inputs.prior_rate * cover), 0).astype(np.int64)
        self.on_order = np.zeros(n_series, np.int64)
        self.arrivals = np.zeros((n_days + _HORIZON_DAYS, n_series), np.int64)
        self.sales = np.zeros((n_days, n_series), np.int64)
        self.on_hand_end = np.zeros((n_days, n_series), np.int64)
        self.stockout = np.zeros((n_days, n_series), bool)

    def sell(self, day: int) -> None:
        """Receive the day's arrivals, then sell what demand and stock allow."""
        received = self.arrivals[day]
        self.on_hand += received
        self.on_order -= received
        demand = self.inputs.demand[day]
        sold = np.minimum(demand, self.on_hand)
        self.stockout[day] = self.inputs.active[day] & ((demand > self.on_hand) | (self.on_hand == 0))
        self.on_hand -= sold
        self.sales[day] = sold
        self.on_hand_end[day] = self.on_hand

    def _forecast(self, day: int) -> tuple[np.ndarray, int]:
        """Daily rate from the censored sales of the last weeks, blended with the prior for new series."""
        inputs, config = self.inputs, self.config
        lo = max(0, day - config.forecast_window_days)
        days_on_sale = np.clip(day - inputs.launch_idx, 0, day - lo)
        in_stock = (inputs.active[lo:day] & ~self.stockout[lo:day]).sum(axis=0)
        correction = config.stockout_correction
        denominator = np.maximum(correction * in_stock + (1 - correction) * days_on_sale, 1.0)
        observed = self.sales[lo:day].sum(axis=0) / denominator
        weight = np.minimum(days_on_sale / config.forecast_window_days, 1.0)
        return weight * observed + (1 - weight) * inputs.prior_rate, lo

    def review(self, day: int) -> tuple[np.ndarray, ...]:
        """Weekly review: forecast, choose a mode, order up to the target, book the arrivals.

        Returns:
            The orders placed: series index, units, mode, departure day, receipt day, customs days.
        """
        inputs, config, rng = self.inputs, self.config, self.rng
        n_series = self.on_hand.size
        base_rate, lo = self._forecast(day)

        # Mode: the warehouse's regular mix, or an emergency air order when stock runs out before receipts.
        u = rng.random(n_series)
        mode = (u[:, None] > self.lanes.regular_cum_share[inputs.warehouse]).sum(axis=1).clip(0, 2)
        soon = self.on_hand + self.arrivals[day + 1 : day + 15].sum(axis=0)
        rescue = rng.random(n_series) < config.emergency_air_prob
        emergency = (soon < base_rate * 10) & (base_rate > 0) & rescue
        mode = np.where(emergency, _AIR, mode)
        lead = self.planned_lead[mode, np.arange(n_series)]

        # Anticipation of seasons and peaks: the known profile over the coverage window vs the recent past.
        cum, group = self.profile_cum, inputs.group
        horizon = cum.shape[0] - 1
        start = np.minimum(day + np.round(lead).astype(np.int64), horizon - 1)
        stop = np.minimum(start + round(7 + config.safety_stock_days), horizon)
        future = (cum[stop, group] - cum[start, group]) / (stop - start)
        past = (cum[day, group] - cum[lo, group]) / max(day - lo, 1)
        ratio = np.where(past > 0, future / np.where(past > 0, past, 1.0), 1.0) ** config.anticipation
        noise = rng.lognormal(-0.5 * config.forecast_noise_cv**2, config.forecast_noise_cv, n_series)
        rate = base_rate * ratio * noise

        position = np.where(emergency, soon, self.on_hand + self.on_order)
        target = rate * (lead + 7 + config.safety_stock_days)
        # New series are stocked about two weeks before launch; phased-out series are no longer ordered.
        eligible = (day < inputs.stop_order_idx) & (day + lead + 21 >= inputs.launch_idx)
        idx = np.flatnonzero(eligible & (rate > 0) & (position < rate * (lead + config.safety_stock_days)))
        case = inputs.case_pack[idx]
        units = np.maximum(np.ceil((target[idx] - position[idx]) / case) * case, inputs.min_order_units[idx])
        units = units.astype(np.int64)
        shipped, received, customs = self._lead_times(day, idx, mode[idx])
        keep = received < self.arrivals.shape[0]
        self.arrivals[received[keep], idx[keep]] += units[keep]
        self.on_order[idx[keep]] += units[keep]
        return idx, units, mode[idx], shipped, received, customs

    def _lead_times(
        self, day: int, idx: np.ndarray, mode: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Departure day, receipt day and customs days of new orders.

        Handling at origin stretches when Chinese capacity is low (New Year, Golden Week); the line-haul is
        congested in the peak season (sea August-October, air November-December, rail in winter) and after
        New Year; customs takes longer in December and when the shipment is inspected.
        """
        inputs, rng = self.inputs, self.rng
        n = idx.size
        capacity = inputs.origin_capacity
        handling = np.ceil(rng.uniform(*self.config.handling_days, n) / capacity[day])
        shipped = np.minimum(day + handling.astype(np.int64), capacity.size - 1)
        month = inputs.month[shipped]
        transit = self.lanes.transit_days[mode, inputs.warehouse[idx]] * rng.lognormal(0.0, 0.1, n)
        congestion = rng.gamma(2.0, 1.0, n) * np.select(
            [
                (mode == _SEA) & (month >= 8) & (month <= 10),
                (mode == _AIR) & (month >= 11),
                (mode == _RAIL) & ((month == 12) | (month <= 2)),
            ],
            [2.5, 1.0, 1.5],
            0.0,
        )
        congestion += (1.0 - capacity[shipped]) * rng.uniform(4.0, 12.0, n)
        inspected = rng.random(n) < self.config.customs_inspection_rate
        customs = _CUSTOMS_MEDIAN_DAYS[mode] * rng.lognormal(0.0, 0.35, n) * np.where(month == 12, 1.3, 1.0)
        customs = np.round(customs + inspected * rng.uniform(3.0, 10.0, n), 1)
        received = shipped + np.maximum(np.ceil(transit + congestion + customs), 1).astype(np.int64)
        return shipped, received, customs


def replenishments_frame(
    result: StockResult,
    inputs: StockInputs,
    keys: pl.DataFrame,
    day0: dt.date,
    first: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """The `replenishments` contract table: orders that left the origin by the last day and that were
    received on or after day `first` (or are still in transit, `received_at` null).

    Args:
        result: output of `simulate_stock`.
        inputs: the inputs of that simulation (weights, hubs, calendar).
        keys: `warehouse_id` and `sku_id` of every series.
        day0: the date of day index 0.
        first: index of the first reported day (the warm-up before it is dropped).
        rng: random generator (times of day, freight noise).

    Returns:
        Frame with the contract columns, sorted by `shipped_at` then `replenishment_id`.
    """
    last = inputs.demand.shape[0] - 1
    keep = (result.order_shipped_idx <= last) & (result.order_received_idx >= first)
    series, mode = result.order_series[keep], result.order_mode[keep]
    shipped, received = result.order_shipped_idx[keep], result.order_received_idx[keep]
    units = result.order_units[keep]
    n = series.size
    is_open = received > last
    month = inputs.month[shipped]
    surcharge = np.select(
        [(mode == _SEA) & (month >= 8) & (month <= 10), (mode == _AIR) & (month >= 11)], [1.3, 1.4], 1.0
    ) * np.where(inputs.origin_capacity[shipped] < 1, 1.15, 1.0)
    freight = (
        (_FREIGHT_FIXED[mode] + _FREIGHT_PER_KG[mode] * units * inputs.unit_weight_kg[series])
        * surcharge
        * rng.lognormal(0.0, 0.1, n)
    )
    epoch0 = (day0 - dt.date(1970, 1, 1)).days
    us_per_day = 86_400_000_000
    shipped_us = (epoch0 + shipped) * us_per_day + (rng.uniform(0, 24, n) * 3.6e9).astype(np.int64)
    received_us = (epoch0 + received) * us_per_day + (rng.uniform(6, 20, n) * 3.6e9).astype(np.int64)
    order = np.lexsort((series, shipped_us))
    timestamp = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        {
            "replenishment_id": [f"R{i + 1:07d}" for i in range(n)],
            "warehouse_id": keys["warehouse_id"].gather(series[order]),
            "sku_id": keys["sku_id"].gather(series[order]),
            "units": units[order],
            "mode": pl.Series(np.array(REPLENISHMENT_MODE_NAMES)[mode[order]], dtype=pl.String),
            "shipped_at": pl.Series(shipped_us[order]).cast(timestamp),
            "received_at": pl.Series(np.where(is_open, 0, received_us)[order]).cast(timestamp),
            "is_open": is_open[order],
            "origin_hub": pl.Series(inputs.origin_hubs[series, mode][order], dtype=pl.String),
            "customs_days": result.order_customs_days[keep][order],
            "freight_cost_usd": np.round(freight[order], 2),
        }
    )
    return frame.with_columns(
        pl.when(~pl.col("is_open")).then(pl.col("received_at", "customs_days")),
    ).drop("is_open")


def warehouses_frame(
    warehouses: tuple[WarehouseSpec, ...], result: StockResult, inputs: StockInputs, first: int
) -> pl.DataFrame:
    """The `warehouses` contract table; capacity is 1.4x the peak simulated stock, rounded up to 1,000."""
    n_wh = len(warehouses)
    onehot = np.zeros((inputs.warehouse.size, n_wh))
    onehot[np.arange(inputs.warehouse.size), inputs.warehouse] = 1.0
    peak_stock = (result.on_hand_end[first:] @ onehot).max(axis=0, initial=0.0)
    return pl.DataFrame(
        {
            "warehouse_id": [w.warehouse_id for w in warehouses],
            "country": [w.country for w in warehouses],
            "capacity_units": (np.ceil(np.maximum(peak_stock, 1.0) * 1.4 / 1000) * 1000).astype(np.int64),
            "region": [w.region for w in warehouses],
            "holding_cost_usd_per_unit_week": [w.holding_cost_usd_per_unit_week for w in warehouses],
        }
    ).sort("warehouse_id")
