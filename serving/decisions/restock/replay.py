"""Stage: decisions. Lost-sales replay of restock policies on a window of history, and service curves from it.

Pure (no files): the contract tables, a daily demand frame and a weekly forecaster in; the realised service
and costs of each policy out. The `calibrate-restock` flow replays our policy at several quantile levels on
the validated data (demand = recorded sales) to learn the service calibration; the benchmark
`bench/decisions_sim.py` replays it on the simulator's uncensored demand against classic baselines.

The replay, for `weeks` weekly reviews from `start`, on a sample of SKU x warehouse series:

* every policy sees the *same* daily demand, starting stock (the positions the day before `start`) and
  inbound pipeline (the replenishments open at `start`); sales are `min(demand, on hand)`, the rest is lost;
* the lead time of a new order is U(2, 7) handling days plus the door-to-door time of a replenishment
  actually shipped on the same warehouse x mode within +-14 days of the departure, picked by a common random
  number per (week, series), so every policy faces the same lead-time luck;
* costs: freight (fixed + per kg per warehouse x mode, `serving.decisions.lead_times.freight_rates`),
  holding (`holding_cost_usd_per_unit_week` on end-of-day stock) and stock-outs (lost units x (price - unit
  cost + 1 USD goodwill)). Cycle service level = share of series-weeks without a stock-out day.

On recorded sales (censored by stock-outs) the demand of stock-out days is understated, so the realised
service of a replay there is optimistic; the simulator's uncensored demand has no such bias.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.demand_features import build_demand_features
from features.demand_panel import build_weekly_panel
from models.demand_paths import sample_paths
from models.demand_tasks import DemandTaskConfig, fit_demand_model, needed_origins
from serving.decisions.lead_times import freight_rates, lead_time_samples, stock_positions
from serving.decisions.restock.calibration import BANDS
from serving.decisions.restock.plan import plan_restock
from serving.decisions.restock.policy import MODES, SERIES, RestockConfig, abc_classes, volume_band

__all__ = [
    "REPLAY_TABLES",
    "Forecaster",
    "PolicyReplay",
    "ReplayMetrics",
    "ReplayWindow",
    "ReplayWorld",
    "WeekInputs",
    "fit_forecaster",
    "order_by_plan",
    "sales_as_demand",
    "service_curves",
    "week_inputs",
]

log = logging.getLogger(__name__)

REPLAY_TABLES = ("warehouse_sales", "replenishments", "skus", "warehouses")
_TAIL = 200  # days of pipeline beyond the replay
_DAY_US = 86_400e6
_HANDLING_DAYS = 4.5  # the planner's expected order -> departure days (mean of U(2, 7))


@dataclass(frozen=True)
class ReplayWindow:
    """Which stretch of history is replayed, and how.

    Attributes:
        start: Monday of the first review.
        weeks: weekly reviews replayed.
        warmup: first weeks left out of the figures (the starting stock was decided by someone else).
        n_series: SKU x warehouse series sampled (those with demand in the window and a position).
        n_paths: demand sample paths per review.
        seed: series sample, lead-time luck and sample paths.
        modes: replenishment modes our policy may choose.
    """

    start: dt.date
    weeks: int = 26
    warmup: int = 6
    n_series: int = 250
    n_paths: int = 100
    seed: int = 0
    modes: tuple[str, ...] = MODES

    @property
    def label(self) -> str:
        """`<start> + <weeks> wk`."""
        return f"{self.start} + {self.weeks} wk"


@dataclass(frozen=True)
class Forecaster:
    """A weekly demand forecaster: `forecast(cutoff)` -> the forecast contract frame from that Monday on.

    Attributes:
        forecast: cutoff -> forecast rows (`warehouse_id, sku_id, horizon, week_start, demand_*`).
        label: what it is (for the figures).
        rho: week-to-week correlation of its sample paths (`models.demand_paths.sample_paths`).
    """

    forecast: Callable[[dt.date], pl.DataFrame]
    label: str
    rho: float | None


@dataclass(frozen=True)
class ReplayMetrics:
    """Realised service and cost of one policy after the warm-up (USD over the whole window)."""

    cycle_service_level: float
    csl_slow: float
    csl_medium: float
    csl_fast: float
    fill_rate: float
    holding_usd: float
    stockout_usd: float
    freight_usd: float
    total_cost_usd: float
    cost_per_series_week_usd: float


def sales_as_demand(sales: pl.DataFrame) -> pl.DataFrame:
    """Recorded daily sales as the replay's demand (`warehouse_id, sku_id, date, demand_units`).

    Sales are censored by stock-outs: the replay's service on them is optimistic (module docstring).
    """
    return sales.select(*SERIES, "date", pl.col("units_sold").alias("demand_units"))


def _open_lots(
    rep: pl.DataFrame, idx: pl.DataFrame, start: dt.date, days: int
) -> tuple[np.ndarray, list[tuple[int, int, int, float]], dict[tuple[str, str], float]]:
    """Inbound pipeline [day, series], the open lots with the planner's expected arrival, median leads."""
    t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    open_ = rep.filter((pl.col("shipped_at") < t0) & (pl.col("received_at") >= t0)).join(idx, on=SERIES)
    pipeline = np.zeros((days + _TAIL, idx.height), np.int64)
    day = ((open_["received_at"] - t0).dt.total_days()).clip(0, days + _TAIL - 1).to_numpy()
    np.add.at(pipeline, (day, open_["s"].to_numpy()), open_["units"].to_numpy())
    med = lead_time_samples(rep, start).group_by("warehouse_id", "mode").agg(pl.col("lead_days").median())
    median_lead = {(r[0], r[1]): float(r[2]) for r in med.iter_rows()}
    shipped = ((open_["shipped_at"] - t0).dt.total_microseconds() / _DAY_US).to_numpy()
    est = [
        sd + median_lead.get((w, str(m)), 30.0)
        for sd, w, m in zip(shipped, open_["warehouse_id"], open_["mode"].cast(pl.String), strict=True)
    ]
    # open lots: (series, arrival day, units, the planner's expected arrival day)
    lots = list(zip(open_["s"].to_list(), day.tolist(), open_["units"].to_list(), est, strict=True))
    return pipeline, lots, median_lead


def _lead_pool(rep: pl.DataFrame, start: dt.date) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per warehouse x mode: departure day (relative to `start`) and lead days of every received shipment."""
    t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    done = rep.filter(pl.col("received_at").is_not_null()).with_columns(
        ((pl.col("received_at") - pl.col("shipped_at")).dt.total_microseconds() / _DAY_US).alias("lead"),
        ((pl.col("shipped_at") - t0).dt.total_days()).alias("d"),
        pl.col("mode").cast(pl.String),
    )
    return {
        (w, m): (g["d"].to_numpy(), g["lead"].to_numpy())
        for (w, m), g in done.group_by("warehouse_id", "mode")
    }


class ReplayWorld:
    """Everything fixed in a replay: series, true demand, starting stock, pipeline, lead-time pools."""

    def __init__(self, tables: Mapping[str, pl.DataFrame], demand_daily: pl.DataFrame, window: ReplayWindow):
        start, weeks = window.start, window.weeks
        self.start, self.weeks, self.days = start, weeks, weeks * 7
        rng = np.random.default_rng(window.seed)
        end = start + dt.timedelta(days=self.days)
        in_window = demand_daily.filter((pl.col("date") >= start) & (pl.col("date") < end))
        pos = stock_positions(tables["warehouse_sales"], tables["replenishments"], start)
        live = in_window.group_by(SERIES).agg(pl.col("demand_units").sum().alias("d"))
        keys = live.filter(pl.col("d") > 0).join(pos, on=SERIES).sort(SERIES)
        if keys.is_empty():
            raise ValueError(f"replay from {start}: no series with demand in the window and a stock position")
        pick = np.sort(rng.choice(keys.height, size=min(window.n_series, keys.height), replace=False))
        self.keys = keys[pick].select(*SERIES, "on_hand_units")
        idx = self.keys.with_row_index("s").select(*SERIES, "s")
        dem = in_window.join(idx, on=SERIES).with_columns((pl.col("date") - start).dt.total_days().alias("d"))
        self.demand = np.zeros((self.days, self.keys.height), np.int64)
        self.demand[dem["d"].to_numpy(), dem["s"].to_numpy()] = dem["demand_units"].to_numpy()
        rep = tables["replenishments"]
        self.pipeline, self.lots, self.median_lead = _open_lots(rep, idx, start, self.days)
        self._set_costs(tables, end)
        self.lead_pool = _lead_pool(rep, start)
        self.u_lead = rng.random((weeks, self.keys.height))
        self.u_handling = rng.uniform(2.0, 7.0, (weeks, self.keys.height))

    def _set_costs(self, tables: Mapping[str, pl.DataFrame], end: dt.date) -> None:
        sku = self.keys.join(tables["skus"], on="sku_id", how="left", maintain_order="left").join(
            tables["warehouses"].select("warehouse_id", "holding_cost_usd_per_unit_week"),
            on="warehouse_id",
            how="left",
            maintain_order="left",
        )
        self.sku = sku
        self.hold_day = sku["holding_cost_usd_per_unit_week"].to_numpy() / 7.0
        self.short_cost = np.maximum(sku["price_usd"].to_numpy() - sku["unit_cost_usd"].to_numpy(), 0) + 1.0
        self.weight = sku["weight_kg"].fill_null(0.0).to_numpy()
        self.case = sku["case_pack"].fill_null(1).to_numpy().astype(np.int64)
        moq = sku["min_order_units"].fill_null(0).to_numpy()
        self.moq = np.ceil(moq / self.case).astype(np.int64) * self.case
        fr = freight_rates(tables["replenishments"], tables["skus"], end + dt.timedelta(days=_TAIL))
        self.freight = {
            (r[0], r[1]): (r[2], r[3])
            for r in fr.select("warehouse_id", "mode", "fixed_usd", "per_kg_usd").iter_rows()
        }
        self.wh = self.keys["warehouse_id"].to_list()

    def lead_days(self, week: int, s: int, mode: str) -> int:
        """Handling + the realised lead time of a world shipment of this warehouse x mode near departure."""
        handling = self.u_handling[week, s]
        dep = week * 7 + handling
        days, leads = self.lead_pool.get((self.wh[s], mode), (np.zeros(0), np.zeros(0)))
        near = leads[np.abs(days - dep) <= 14]
        if near.size == 0:
            near = leads if leads.size else np.array([30.0])
        q = np.quantile(near, self.u_lead[week, s])
        return int(np.ceil(handling + q))

    def freight_usd(self, s: int, mode: str, units: int) -> float:
        """Freight of one shipment of `units` of series `s` by `mode`."""
        rate = self.freight.get((self.wh[s], mode))
        if rate is None or units <= 0:
            return 0.0
        return float(rate[0] + rate[1] * units * self.weight[s])


class PolicyReplay:
    """The stock state of one policy in a `ReplayWorld`."""

    def __init__(self, w: ReplayWorld, name: str):
        self.w, self.name = w, name
        n_series = w.keys.height
        self.on_hand = w.keys["on_hand_units"].to_numpy().astype(np.int64).copy()
        self.arrivals = w.pipeline.copy()
        self.on_order = self.arrivals.sum(axis=0)
        self.sold = np.zeros((w.days, n_series), np.int64)
        self.end_stock = np.zeros((w.days, n_series), np.int64)
        self.freight = 0.0
        self.freight_by_week = np.zeros(w.weeks)
        self.modes: dict[str, int] = {}
        self.lots = list(w.lots)

    def day(self, d: int) -> None:
        """Receive what arrives on day `d`, then sell what demand and stock allow."""
        got = self.arrivals[d]
        self.on_hand += got
        self.on_order -= got
        sold = np.minimum(self.w.demand[d], self.on_hand)
        self.on_hand -= sold
        self.sold[d], self.end_stock[d] = sold, self.on_hand

    def order(self, week: int, qty: np.ndarray, modes: list[str]) -> None:
        """Place the orders of a review: `qty[s]` units of series `s` by `modes[s]`."""
        for s in (int(i) for i in np.flatnonzero(qty > 0)):
            lead = self.w.lead_days(week, s, modes[s])
            arrive = min(week * 7 + lead, self.arrivals.shape[0] - 1)
            self.arrivals[arrive, s] += qty[s]
            self.on_order[s] += qty[s]
            est = week * 7 + _HANDLING_DAYS + self.w.median_lead.get((self.w.wh[s], modes[s]), 30.0)
            self.lots.append((int(s), int(arrive), int(qty[s]), est))
            cost = self.w.freight_usd(s, modes[s], int(qty[s]))
            self.freight += cost
            self.freight_by_week[week] += cost
            self.modes[modes[s]] = self.modes.get(modes[s], 0) + 1

    def positions(self, keys: pl.DataFrame, today: int) -> pl.DataFrame:
        """On hand, on order and the open lots with the planner's expected days until arrival."""
        self.lots = [lot for lot in self.lots if lot[1] >= today]
        units: list[list[int]] = [[] for _ in range(keys.height)]
        due: list[list[float]] = [[] for _ in range(keys.height)]
        for s, _, q, est in self.lots:
            units[s].append(q)
            due[s].append(max(est - today, 1.0))
        return keys.with_columns(
            pl.Series("on_hand_units", self.on_hand),
            pl.Series("on_order_units", self.on_order),
            pl.Series("on_order_lots", units, dtype=pl.List(pl.Int64)),
            pl.Series("on_order_due_days", due, dtype=pl.List(pl.Float64)),
        )

    def metrics(self, warmup: int, config: RestockConfig | None = None) -> ReplayMetrics:
        """Service and cost after the first `warmup` weeks; CSL per volume band of realised weekly demand."""
        w = self.w
        a, b = warmup * 7, w.days
        dem, sold = w.demand[a:b], self.sold[a:b]
        lost = dem - sold
        weeks = (b - a) // 7
        out_week = np.asarray((lost[: weeks * 7].reshape(weeks, 7, -1) > 0).any(axis=1))
        holding = float((self.end_stock[a:b] * w.hold_day).sum())
        stockout = float((lost * w.short_cost).sum())
        freight = float(self.freight_by_week[warmup:].sum())
        bands = np.asarray(volume_band(dem.sum(axis=0) / max(weeks, 1), config or RestockConfig()))
        in_band = {band: np.asarray(bands == band) for band in BANDS}
        csl = {
            band: float(1 - out_week[:, m].mean()) if m.any() else float("nan") for band, m in in_band.items()
        }
        total = holding + stockout + freight
        return ReplayMetrics(
            cycle_service_level=float(1 - out_week.mean()),
            csl_slow=csl["slow"],
            csl_medium=csl["medium"],
            csl_fast=csl["fast"],
            fill_rate=float(sold.sum() / max(dem.sum(), 1)),
            holding_usd=holding,
            stockout_usd=stockout,
            freight_usd=freight,
            total_cost_usd=total,
            cost_per_series_week_usd=total / out_week.size,
        )


@dataclass(frozen=True)
class WeekInputs:
    """What every policy knows at one review: sample paths, lead times, freight and ABC classes."""

    paths: pl.DataFrame
    lead: pl.DataFrame
    freight: pl.DataFrame
    classes: pl.DataFrame


def week_inputs(
    world: ReplayWorld,
    tables: Mapping[str, pl.DataFrame],
    forecaster: Forecaster,
    week: int,
    window: ReplayWindow,
) -> WeekInputs:
    """Inputs of review `week`, from data strictly before its Monday."""
    d0 = world.start + dt.timedelta(weeks=week)
    keys = world.keys.select(SERIES)
    fc = forecaster.forecast(d0).join(keys, on=SERIES)
    return WeekInputs(
        paths=sample_paths(fc, n_paths=window.n_paths, seed=window.seed + week, rho=forecaster.rho),
        lead=lead_time_samples(tables["replenishments"], d0),
        freight=freight_rates(tables["replenishments"], tables["skus"], d0),
        classes=abc_classes(tables["warehouse_sales"], tables["skus"], d0, RestockConfig()),
    )


def order_by_plan(
    replay: PolicyReplay,
    tables: Mapping[str, pl.DataFrame],
    week: int,
    inputs: WeekInputs,
    config: RestockConfig,
) -> None:
    """Plan review `week` with `plan_restock` from the replay's own positions, and place its orders."""
    keys = replay.w.keys.select(SERIES)
    pos = replay.positions(keys, week * 7)
    plan = plan_restock(
        inputs.paths,
        pos,
        tables["skus"],
        tables["warehouses"],
        inputs.lead,
        inputs.freight,
        inputs.classes,
        config,
    )
    plan = keys.join(plan, on=SERIES, how="left", maintain_order="left")
    replay.order(week, plan["order_units"].fill_null(0).to_numpy(), plan["mode"].fill_null("sea").to_list())
    replay.order(
        week, plan["expedite_units"].fill_null(0).to_numpy(), plan["expedite_mode"].fill_null("air").to_list()
    )


def fit_forecaster(tables: Mapping[str, pl.DataFrame], start: dt.date) -> Forecaster:
    """The demand model (`models.demand_tasks`) fitted on sales strictly before `start`, as a forecaster."""
    cfg = DemandTaskConfig()
    t0 = time.perf_counter()
    panel = build_weekly_panel(tables["warehouse_sales"], tables["skus"])
    replay = [start + dt.timedelta(weeks=k) for k in range(60)]
    origins = sorted(set(needed_origins(start, cfg)) | set(replay))
    feats = build_demand_features(panel, tables["warehouses"], origins=origins, config=cfg.features)
    model = fit_demand_model(feats, start, cfg)
    log.info("demand model fitted before %s in %.0f s", start, time.perf_counter() - t0)

    def forecast(cutoff: dt.date) -> pl.DataFrame:
        rows = feats.filter(pl.col("origin_week") == cutoff)
        preds = model.predict(rows)
        return rows.select("warehouse_id", "sku_id", "horizon", "week_start").hstack(preds)

    rho = model.path_rho
    label = f"demand model fitted before {start}, path rho {rho if rho is None else round(rho, 2)}"
    return Forecaster(forecast, label, rho)


def _level_config(level: float, week: int, window: ReplayWindow) -> RestockConfig:
    """Our policy with one service target for every class, used as a plain quantile level."""
    return RestockConfig(seed=week, modes=window.modes, service_by_class={"A": level, "B": level, "C": level})


def service_curves(
    tables: Mapping[str, pl.DataFrame],
    demand_daily: pl.DataFrame,
    window: ReplayWindow,
    levels: Sequence[float],
    forecaster: Forecaster,
) -> dict[str, list[float]]:
    """Realised cycle service level per volume band of our policy at each quantile level (uncalibrated).

    Returns:
        band -> one CSL per level (NaN where the window has no series of the band).
    """
    world = ReplayWorld(tables, demand_daily, window)
    replays = [PolicyReplay(world, f"ours T={x:.2f}") for x in levels]
    for week in range(window.weeks):
        inputs = week_inputs(world, tables, forecaster, week, window)
        for level, replay in zip(levels, replays, strict=True):
            order_by_plan(replay, tables, week, inputs, _level_config(level, week, window))
        for replay in replays:
            for d in range(week * 7, week * 7 + 7):
                replay.day(d)
        log.info("service curves %s: week %d/%d", window.label, week + 1, window.weeks)
    metrics = [r.metrics(window.warmup) for r in replays]
    return {band: [getattr(m, f"csl_{band}") for m in metrics] for band in BANDS}
