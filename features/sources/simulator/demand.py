"""Stage: simulator (overseas-warehouse side). SKUs, warehouses, daily demand, stock and replenishments.

Reads nothing from disk and writes nothing. `simulate_demand` draws a catalogue of SKUs listed in the six
overseas warehouses, their true daily demand, and plays it against the stock simulated by
`features.sources.simulator.inventory`. It returns the raw contract tables `skus`, `warehouses`,
`warehouse_sales` (sales censored by stock) and `replenishments`, and the oracle (evaluation only):
`demand_weekly`, the true uncensored weekly demand distribution of every series with its realisation, and
`demand_daily`.

The generative model, per SKU x warehouse series `s` and day `d`:

    mean[d, s] = base[s] * trend * life cycle (launch ramp, phase-out) * calendar[category, warehouse, d]
                 * price effect (price changes, promotions through the price elasticity) * level[week, s]
    demand[d, s] ~ Poisson(mean[d, s] * shock[week, s]),  shock ~ Gamma(size[s], 1 / size[s])

The calendar factor (`features.sources.simulator.demand_calendar`, categories in `demand_categories`) holds
the yearly seasonality by category and hemisphere, the weekday profile, the e-commerce peaks of
`features.reference.calendar.daily_calendar` per country, the post-Christmas dip and the destination's public
holidays; `level` is a slow AR(1) random walk. Because the gamma shock is shared by the days of an ISO week,
each day is negative binomial and each week's total is exactly NegBin(mean = sum of daily means, size), from
which the oracle quantiles are computed.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import special

from features.contract.schema import TABLES
from features.sources.simulator.demand_calendar import DayGrid, DemandCalendar
from features.sources.simulator.demand_categories import CATEGORIES
from features.sources.simulator.inventory import (
    ReplenishmentConfig,
    StockInputs,
    replenishments_frame,
    simulate_stock,
    warehouses_frame,
)
from features.sources.simulator.inventory_warehouses import DEFAULT_WAREHOUSES, WarehouseSpec

__all__ = [
    "DEMAND_DAILY_SCHEMA",
    "DEMAND_WEEKLY_SCHEMA",
    "DemandConfig",
    "ReplenishmentConfig",
    "WarehouseSpec",
    "simulate_demand",
]

logger = logging.getLogger(__name__)


_CASE_PACKS: Final = np.array([1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 30, 40, 50, 60, 80, 100, 120, 150, 200])
# Origin hub of a replenishment by supplier region (east: Zhejiang/Shanghai, south: Guangdong) and mode.
_HUBS: Final = np.array([["NGB", "YIW", "SHA"], ["SZX", "SZX", "CAN"]])  # [east/south, sea/rail/air]

DEMAND_WEEKLY_SCHEMA: Final = pl.Schema(
    {
        "week_start": pl.Date(),
        "warehouse_id": pl.String(),
        "sku_id": pl.String(),
        "n_days": pl.Int32(),
        "demand_mean": pl.Float64(),
        "demand_q50": pl.Float64(),
        "demand_q80": pl.Float64(),
        "demand_q90": pl.Float64(),
        "demand_q95": pl.Float64(),
        "demand_units": pl.Int64(),
    }
)
DEMAND_DAILY_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "warehouse_id": pl.String(),
        "sku_id": pl.String(),
        "demand_mean": pl.Float64(),
        "demand_units": pl.Int64(),
    }
)
_QUANTILES: Final = (0.5, 0.8, 0.9, 0.95)


class DemandConfig(BaseModel):
    """The overseas-warehouse world: catalogue, demand model and the replenishment planner.

    Attributes:
        n_skus: SKUs in the catalogue (`SKU0001` ...).
        warehouses: the overseas warehouses (ids are shared with the shipment simulator).
        median_daily_units: median daily demand of a SKU in the largest market.
        demand_sigma: log-sd of the base demand across SKUs (a long tail of slow movers).
        fast_mover_share: share of SKUs with 6x the base demand ("hero" products).
        dispersion_size: median negative-binomial size of weekly demand (smaller = more over-dispersed).
        trend_sd: sd of the yearly log-trend across SKUs.
        level_sd: sd of the weekly innovation of the AR(1) demand level.
        new_sku_share: share of SKUs launched during the period (cold start with a ramp-up).
        discontinued_share: share of SKUs phased out and delisted during the period.
        promos_per_year: promotion windows per series and year (3 times more likely to start in peaks).
        price_changes_per_year: list-price changes per SKU and year.
        warmup_days: days simulated before `start` (and discarded) so stock and orders are in steady state.
        replenishment: the warehouse planner's policy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_skus: int = Field(default=200, ge=1, le=9999)
    warehouses: tuple[WarehouseSpec, ...] = DEFAULT_WAREHOUSES
    median_daily_units: float = Field(default=0.8, gt=0)
    demand_sigma: float = Field(default=1.2, ge=0)
    fast_mover_share: float = Field(default=0.04, ge=0, le=1)
    dispersion_size: float = Field(default=3.0, gt=0)
    trend_sd: float = Field(default=0.25, ge=0)
    level_sd: float = Field(default=0.06, ge=0)
    new_sku_share: float = Field(default=0.15, ge=0, le=1)
    discontinued_share: float = Field(default=0.08, ge=0, le=1)
    promos_per_year: float = Field(default=4.0, ge=0)
    price_changes_per_year: float = Field(default=1.0, ge=0)
    warmup_days: int = Field(default=182, ge=28)
    replenishment: ReplenishmentConfig = ReplenishmentConfig()

    @field_validator("warehouses")
    @classmethod
    def _unique_warehouses(cls, value: tuple[WarehouseSpec, ...]) -> tuple[WarehouseSpec, ...]:
        ids = [w.warehouse_id for w in value]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"warehouse ids must be unique and non-empty, got {ids}")
        return value


def simulate_demand(
    config: DemandConfig,
    start: dt.date,
    end: dt.date,
    rng: np.random.Generator,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Simulate the overseas-warehouse side between `start` and `end` (inclusive).

    Args:
        config: catalogue, demand and planner settings.
        start: first day of the sales history.
        end: last day ("now"); replenishments still in transit have a null `received_at`.
        rng: random generator; the same seed gives identical tables.

    Returns:
        The raw contract tables `{"skus", "warehouses", "warehouse_sales", "replenishments"}` and the oracle
        `{"demand_weekly", "demand_daily"}` (schemas `DEMAND_WEEKLY_SCHEMA`, `DEMAND_DAILY_SCHEMA`).

    Raises:
        ValueError: if `end` is before `start`.

    Example:
        >>> import datetime as dt, numpy as np
        >>> tables, oracle = simulate_demand(DemandConfig(n_skus=5), dt.date(2025, 1, 6), dt.date(2025, 3, 2),
        ...                                  np.random.default_rng(0))
        >>> sorted(tables), sorted(oracle)
        (['replenishments', 'skus', 'warehouse_sales', 'warehouses'], ['demand_daily', 'demand_weekly'])
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    grid = DayGrid.build(start - dt.timedelta(days=config.warmup_days), start, end)
    cat = DemandCalendar.build(grid, config.warehouses)
    skus = _draw_skus(config, grid, rng)
    series = _draw_series(config, skus, rng)
    mean, is_promo, price = _demand_mean(config, skus, series, grid, cat, rng)
    demand = _draw_demand(mean, series["size"], grid, rng)
    days = np.arange(grid.n_days)[:, None]
    active = (days >= series["launch"]) & (days < series["eol"])
    inputs = StockInputs(
        demand=demand,
        active=active,
        launch_idx=series["launch"],
        stop_order_idx=series["phase_out"],
        prior_rate=series["prior_rate"],
        profile=cat.profile,
        group=series["group"],
        warehouse=series["warehouse"],
        case_pack=skus["case_pack"][series["sku"]],
        min_order_units=skus["moq"][series["sku"]],
        origin_capacity=cat.origin_capacity,
        month=cat.month,
        weekday=cat.weekday,
        unit_weight_kg=skus["weight"][series["sku"]],
        origin_hubs=_HUBS[skus["south"][series["sku"]].astype(int)],
    )
    stock = simulate_stock(inputs, config.warehouses, config.replenishment, rng)
    keys = _series_keys(config, series)
    sales = _series_frame(
        keys,
        grid,
        active,
        TABLES["warehouse_sales"].schema,
        units_sold=stock.sales,
        on_hand_end=stock.on_hand_end,
        is_stockout=stock.is_stockout,
        price_usd=price,
        is_promo=is_promo,
    )
    tables = {
        "skus": _skus_frame(skus, grid),
        "warehouses": warehouses_frame(config.warehouses, stock, inputs, grid.first),
        "warehouse_sales": sales,
        "replenishments": replenishments_frame(stock, inputs, keys, grid.day0, grid.first, rng),
    }
    oracle = {
        "demand_weekly": _weekly_oracle(keys, series["size"], grid, active, mean, demand),
        "demand_daily": _series_frame(
            keys, grid, active, DEMAND_DAILY_SCHEMA, demand_mean=mean, demand_units=demand
        ),
    }
    for name in ("skus", "warehouses", "warehouse_sales", "replenishments"):
        tables[name] = tables[name].select(TABLES[name].schema.names()).cast(TABLES[name].schema)
    logger.info(
        "demand simulated: %d SKUs, %d series, %d sales rows",
        config.n_skus,
        series["sku"].size,
        tables["warehouse_sales"].height,
    )
    return tables, oracle


def _draw_skus(config: DemandConfig, grid: DayGrid, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Catalogue: category, HS code, prices, weights, packing, life cycle and base demand of every SKU."""
    n = config.n_skus
    names = list(CATEGORIES)
    shares = np.array([CATEGORIES[c].share for c in names])
    category = rng.choice(len(names), n, p=shares / shares.sum())
    hs = np.array([rng.choice(CATEGORIES[names[c]].hs_codes) for c in category])  # n is small: a catalogue
    price_med = np.array([CATEGORIES[c].price_usd for c in names])[category]
    price = np.maximum(np.ceil(price_med * rng.lognormal(0, 0.5, n)) - 0.01, 1.99)
    raw_weight = np.array([CATEGORIES[c].weight_kg for c in names])[category] * rng.lognormal(0, 0.6, n)
    weight = np.round(np.maximum(raw_weight, 0.02), 3)
    per_case = np.clip(6.0 / weight * rng.lognormal(0, 0.3, n), 1, 200)
    case_pack = _CASE_PACKS[np.abs(np.log(_CASE_PACKS[None, :] / per_case[:, None])).argmin(axis=1)]
    moq = case_pack * rng.choice([1, 2, 3, 5], n, p=[0.5, 0.3, 0.15, 0.05])

    out_days = grid.n_days - grid.first
    is_new = rng.random(n) < config.new_sku_share
    new_launch = grid.first + rng.integers(min(14, out_days - 1), max(out_days - 30, 15), n)
    launch = np.where(is_new, new_launch, grid.first - rng.integers(30, 1500, n))
    discontinued = ~is_new & (rng.random(n) < config.discontinued_share)
    eol_day = grid.first + rng.integers(min(120, out_days - 1), max(out_days - 14, 121), n)
    eol = np.where(discontinued, eol_day, grid.n_days + 10_000)
    phase_out = np.where(discontinued, eol - rng.integers(42, 120, n), eol)
    base = config.median_daily_units * rng.lognormal(0, config.demand_sigma, n)
    base *= np.where(rng.random(n) < config.fast_mover_share, 6.0, 1.0)
    elasticity = np.minimum(
        np.array([CATEGORIES[c].elasticity for c in names])[category] + rng.normal(0, 0.3, n), -0.3
    )
    return {
        "category": category,
        "hs_code": hs,
        "price": price,
        "unit_cost": np.round(price * rng.uniform(0.22, 0.45, n), 2),
        "weight": weight,
        "case_pack": case_pack.astype(np.int64),
        "moq": moq.astype(np.int64),
        "launch": launch,
        "eol": eol,
        "phase_out": phase_out,
        "base": base,
        "trend": rng.normal(0.0, config.trend_sd, n),
        "elasticity": elasticity,
        "is_new": is_new,
        "south": rng.random(n) < 0.6,
    }


def _draw_series(
    config: DemandConfig, skus: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Listings (SKU x warehouse series), ordered by warehouse id then SKU id, with their own parameters."""
    specs = config.warehouses
    n_sku, n_wh = config.n_skus, len(specs)
    scale = np.array([w.market_scale for w in specs])
    listed = rng.random((n_wh, n_sku)) < np.array([w.listing_share for w in specs])[:, None]
    primary = rng.choice(n_wh, n_sku, p=scale / scale.sum())
    listed[primary, np.arange(n_sku)] = True
    order = np.argsort([w.warehouse_id for w in specs], kind="stable")
    wh, sku = np.nonzero(listed[order])
    wh = order[wh]
    n = sku.size
    rollout = np.where(skus["is_new"][sku] & (wh != primary[sku]), rng.integers(0, 120, n), 0)
    base = skus["base"][sku] * scale[wh] * rng.lognormal(0, 0.5, n)
    weekly = 7 * base
    size = config.dispersion_size * rng.lognormal(0, 0.4, n) * np.clip(weekly / 5.0, 1.0, 8.0) ** 0.5
    return {
        "sku": sku,
        "warehouse": wh,
        "group": skus["category"][sku] * n_wh + wh,
        "launch": skus["launch"][sku] + rollout,
        "eol": skus["eol"][sku],
        "phase_out": skus["phase_out"][sku],
        "base": base,
        "size": size,
        "trend": skus["trend"][sku] + rng.normal(0, 0.1, n),
        "ramp_days": rng.uniform(7, 45, n),
        "decline_days": rng.uniform(20, 60, n),
        "prior_rate": base * rng.lognormal(-0.2, 0.5, n),
    }


def _demand_mean(
    config: DemandConfig,
    skus: dict[str, np.ndarray],
    series: dict[str, np.ndarray],
    grid: DayGrid,
    cal: DemandCalendar,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True daily mean demand [D, S] (0 when not on sale), promotion flags and the local selling price."""
    n_days, n = grid.n_days, series["sku"].size
    days = np.arange(n_days)[:, None]
    launch, eol, phase_out = series["launch"], series["eol"], series["phase_out"]
    since = days - launch
    life = np.where(since >= 0, -np.expm1(-(since + 1) / series["ramp_days"]), 0.0)
    life *= np.where(days >= phase_out, np.exp(-(days - phase_out) / series["decline_days"]), 1.0)
    life *= days < eol
    years = (days - grid.first) / 365.25

    # AR(1) level per ISO week, stationary from the first week.
    n_weeks = int(grid.week[-1]) + 1
    phi = 0.9
    level = np.empty((n_weeks, n))
    level[0] = rng.normal(0, config.level_sd / np.sqrt(1 - phi**2), n)
    innovations = rng.normal(0, config.level_sd, (n_weeks, n))
    for w in range(1, n_weeks):
        level[w] = phi * level[w - 1] + innovations[w]

    # Price changes per SKU, promotions per series (start more often in peaks, 3-14 days, 10-35 % off).
    n_sku = skus["price"].size
    jumps = (rng.random((n_days, n_sku)) < config.price_changes_per_year / 365.25) * rng.normal(
        0.01, 0.08, (n_days, n_sku)
    )
    log_price = np.cumsum(jumps, axis=0)[:, series["sku"]]
    p_start = config.promos_per_year / 365.25 * cal.promo_start[:n_days] / cal.promo_start.mean()
    start_day, start_series = np.nonzero(rng.random((n_days, n)) < p_start[:, None])
    duration = rng.integers(3, 15, start_day.size)
    depth_of = np.round(rng.uniform(0.10, 0.35, start_day.size) * 20) / 20
    depth = np.zeros((n_days, n))
    for k in range(14):
        m = (duration > k) & (start_day + k < n_days)
        depth[start_day[m] + k, start_series[m]] = depth_of[m]
    depth *= life > 0
    log_rel_price = log_price + np.log1p(-depth)

    mean = life
    mean *= series["base"] * np.exp(series["trend"] * years)
    mean *= cal.profile[:n_days][:, series["group"]]
    mean *= np.exp(level[grid.week] + skus["elasticity"][series["sku"]] * log_rel_price)
    mean *= np.where(depth > 0, 1.15, 1.0)  # promotion visibility beyond the price effect
    price_factor = np.array([w.price_factor for w in config.warehouses])[series["warehouse"]]
    price = np.round(skus["price"][series["sku"]] * price_factor * np.exp(log_rel_price), 2)
    return mean, depth > 0, price


def _draw_demand(mean: np.ndarray, size: np.ndarray, grid: DayGrid, rng: np.random.Generator) -> np.ndarray:
    """Daily demand: Poisson around the mean times a gamma shock shared by the days of an ISO week."""
    n_weeks = int(grid.week[-1]) + 1
    shock = rng.gamma(size, 1.0 / size, (n_weeks, size.size))
    return rng.poisson(mean * shock[grid.week]).astype(np.int64)


def _series_keys(config: DemandConfig, series: dict[str, np.ndarray]) -> pl.DataFrame:
    """`warehouse_id` and `sku_id` of every series, in series order."""
    wh_ids = pl.Series([w.warehouse_id for w in config.warehouses], dtype=pl.String)
    sku_ids = pl.Series([f"SKU{i + 1:04d}" for i in range(config.n_skus)], dtype=pl.String)
    return pl.DataFrame(
        {"warehouse_id": wh_ids.gather(series["warehouse"]), "sku_id": sku_ids.gather(series["sku"])}
    )


def _series_frame(
    keys: pl.DataFrame, grid: DayGrid, active: np.ndarray, schema: pl.Schema, **columns: np.ndarray
) -> pl.DataFrame:
    """One row per series and output day on sale, sorted by warehouse, SKU and date."""
    out = slice(grid.first, grid.n_days)
    mask = active[out].T
    s_idx, d_idx = np.nonzero(mask)
    data = {
        "date": pl.Series(grid.epoch_days(d_idx + grid.first), dtype=pl.Int32).cast(pl.Date),
        "warehouse_id": keys["warehouse_id"].gather(s_idx),
        "sku_id": keys["sku_id"].gather(s_idx),
    }
    data |= {name: pl.Series(name, values[out].T[mask]) for name, values in columns.items()}
    return pl.DataFrame(data).cast(schema)


def _weekly_oracle(
    keys: pl.DataFrame,
    size: np.ndarray,
    grid: DayGrid,
    active: np.ndarray,
    mean: np.ndarray,
    demand: np.ndarray,
) -> pl.DataFrame:
    """True weekly demand distribution (negative binomial) and its realisation, per series and ISO week."""
    out = slice(grid.first, grid.n_days)
    week = grid.week[out]
    bounds = np.flatnonzero(np.diff(week, prepend=-1))
    weekly_mean = np.add.reduceat(mean[out], bounds, axis=0).T
    weekly_units = np.add.reduceat(demand[out], bounds, axis=0).T
    n_days = np.add.reduceat(active[out].astype(np.int32), bounds, axis=0).T
    keep = n_days > 0
    s_idx, w_idx = np.nonzero(keep)
    m = weekly_mean[keep]
    q = _nb_quantiles(m, size[s_idx], _QUANTILES)
    monday = (grid.week_monday - dt.date(1970, 1, 1)).days + 7 * week[bounds][w_idx]
    return pl.DataFrame(
        {
            "week_start": pl.Series(monday, dtype=pl.Int32).cast(pl.Date),
            "warehouse_id": keys["warehouse_id"].gather(s_idx),
            "sku_id": keys["sku_id"].gather(s_idx),
            "n_days": n_days[keep],
            "demand_mean": m,
            **{f"demand_q{round(p * 100)}": q[i] for i, p in enumerate(_QUANTILES)},
            "demand_units": weekly_units[keep],
        }
    ).cast(DEMAND_WEEKLY_SCHEMA)


def _nb_quantiles(mean: np.ndarray, size: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Quantiles [len(probs), n] of NegBin(mean, size): smallest m with P(X <= m) >= p.

    Walks the probability mass upward from `mean - sd` (the median is never below it), vectorised over
    the rows still short of the highest quantile.
    """
    out = np.zeros((len(probs), mean.size))
    todo = np.flatnonzero(mean > 0)
    mu, k = mean[todo], size[todo]
    p = k / (k + mu)
    m = np.floor(np.maximum(mu - np.sqrt(mu + mu**2 / k) - 1, 0))
    cdf = np.where(m > 0, special.betainc(k, np.maximum(m, 1), p), 0.0)  # P(X <= m - 1)
    pmf = np.exp(
        special.gammaln(m + k)
        - special.gammaln(k)
        - special.gammaln(m + 1)
        + k * np.log(p)
        + m * np.log1p(-p)
    )
    found = np.full((len(probs), todo.size), -1.0)
    rows = np.arange(todo.size)
    while rows.size:
        cdf = cdf + pmf
        for i, prob in enumerate(probs):
            hit = (found[i, rows] < 0) & (cdf >= prob - 1e-12)
            found[i, rows[hit]] = m[hit]
        pmf = pmf * (m + k[rows]) / (m + 1) * (1 - p[rows])
        m = m + 1
        left = found[-1, rows] < 0
        rows, cdf, pmf, m = rows[left], cdf[left], pmf[left], m[left]
    out[:, todo] = found
    return out


def _skus_frame(skus: dict[str, np.ndarray], grid: DayGrid) -> pl.DataFrame:
    names = list(CATEGORIES)
    n = skus["price"].size
    return pl.DataFrame(
        {
            "sku_id": [f"SKU{i + 1:04d}" for i in range(n)],
            "category": pl.Series([names[c] for c in skus["category"]], dtype=pl.String),
            "hs_code": pl.Series(skus["hs_code"].tolist(), dtype=pl.String),
            "unit_cost_usd": skus["unit_cost"],
            "price_usd": skus["price"],
            "weight_kg": skus["weight"],
            "case_pack": skus["case_pack"],
            "min_order_units": skus["moq"],
            "launch_date": pl.Series(grid.epoch_days(skus["launch"]), dtype=pl.Int32).cast(pl.Date),
        }
    )
