"""Bench: decisions evaluated by simulation (restock policy and routing vs classic baselines, same run).

Run with `transitcast bench decisions_sim` (defaults: ~3-5 minutes on 2 cores); figures go to
`bench/results/decisions_sim.jsonl` and the table in docs/benchmarks.md; docs/decisions.md explains them.

Restock replay (the simulated world in `data/`, truth in `data/raw/oracle/demand_daily.parquet`)
  * A sample of SKU x warehouse series is replayed day by day for `--weeks` weeks from `--start`, every
    policy on the *same* uncensored daily demand (the oracle's `demand_units`), from the same starting stock
    (the world's `on_hand_end` the day before) and the same inbound pipeline (the world's open replenishments).
    Sales are `min(demand, on hand)`; the rest is lost. Reviews are weekly (Mondays).
  * Lead times of new orders come from the simulator's own outcomes: handling U(2, 7) days (its
    `ReplenishmentConfig.handling_days`) plus the door-to-door time (customs included) of a replenishment the
    world actually shipped on the same warehouse x mode within +-14 days of the departure, picked by a
    common random number per (week, series) so every policy faces the same lead-time luck (Chinese New Year,
    peak congestion and inspections are in those draws).
  * Costs: freight (fixed + per kg per warehouse x mode, fitted on the world's replenishments), holding
    (`holding_cost_usd_per_unit_week` on end-of-day stock) and stock-outs (lost units x (price - unit cost +
    1 USD goodwill)). Cycle service level = share of series-weeks without a stock-out day; fill rate = units
    sold / units demanded. The first `--warmup` weeks are excluded from the figures (the starting stock was
    decided by the world's planner).
  * Policies: `ours` = `serving.decisions.restock.plan_restock` (sample paths from the demand forecast, sampled lead
    times from the replenishment history as of the review, mode by expected cost), with the demand model of
    issue 4 trained once before `--start` (or the oracle's true weekly quantiles with `--forecast oracle`);
    `classic` = order up to mu (L + R) + z sigma sqrt(L + R), mu and sigma the 8-week moving average and
    standard deviation of recorded weekly sales, L the mean historical lead time of the regular mode (sea),
    always by sea. Both round to case packs and MOQs. Each is swept over its service knob (our target, the
    baseline's z) so costs can be compared at equal realised service.
  * Calibration (issue 5): `--calibrate` replays our policy on earlier windows (`--cal-starts`, demand model
    fitted before each) at quantile levels `--cal-levels`, averages the realised CSL per volume band over
    the windows, inverts it into a target -> quantile level map (`serving.decisions.restock.fit_quantile_map`) and
    writes `--calibration` (default `serving/decisions/restock_calibration.json`); nothing is recorded. When that file
    exists, the evaluation also replays `ours cal T=...` and `ours cal ABC` with the map.

Routing replay
  * Orders: parcels booked from China in the weeks after the shipment models' training cut-off, each with a
    checkout promise of `--promise-days` days. Options: every parcel lane from the order's hub to its
    destination (postal, dedicated line, express; carrier by carrier).
  * Counterfactual outcome of an option = the realised delivery time of the parcel the world actually
    shipped on the same lane (hub, destination, mode, carrier) booked closest in time to the order (within
    4 days; the order's own parcel excluded), falling back to the same destination x mode x carrier from
    any hub, then to the same destination x mode. So an option's outcome is a draw from the simulator's own
    generative process in the same congestion and customs context. Orders with an option still without a
    neighbour are left out, so every policy is scored on the same orders. Freight = lane base + per-kg x weight; duties as in `serving.decisions.routing`.
  * Policies: `ours` (`serving.decisions.routing.recommend_routes` with the Predictor of issue 6 as scorer, swept over
    the on-time target), `cheapest` (lowest freight + duties), `express` (cheapest express option).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from pathlib import Path

import numpy as np
import polars as pl
from _results import record, write_table

log = logging.getLogger("decisions_sim")
COMMAND = "transitcast bench decisions_sim"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
_TAIL = 200  # days of pipeline beyond the replay
_NN_DAYS = 4  # counterfactual neighbour: same lane, booked at most this many days apart


# ---------------------------------------------------------------------------------------------------------
# Restock replay
# ---------------------------------------------------------------------------------------------------------
def _tables() -> dict[str, pl.DataFrame]:
    names = ("warehouse_sales", "replenishments", "skus", "warehouses", "shipments", "lanes")
    return {n: pl.read_parquet(DATA / "validated" / f"{n}.parquet") for n in names}


class World:
    """Everything fixed in the replay: series, true demand, starting stock, pipeline, lead-time pools."""

    def __init__(self, t: dict[str, pl.DataFrame], start: dt.date, weeks: int, n_series: int, seed: int):
        from serving.decisions.lead_times import freight_rates, stock_positions

        self.start, self.weeks, self.days = start, weeks, weeks * 7
        rng = np.random.default_rng(seed)
        truth = pl.read_parquet(DATA / "raw" / "oracle" / "demand_daily.parquet")
        end = start + dt.timedelta(days=self.days)
        window = truth.filter((pl.col("date") >= start) & (pl.col("date") < end))
        pos = stock_positions(t["warehouse_sales"], t["replenishments"], start)
        live = window.group_by("warehouse_id", "sku_id").agg(pl.col("demand_units").sum().alias("d"))
        keys = (
            live.filter(pl.col("d") > 0)
            .join(pos, on=["warehouse_id", "sku_id"])
            .sort("warehouse_id", "sku_id")
        )
        pick = np.sort(rng.choice(keys.height, size=min(n_series, keys.height), replace=False))
        self.keys = keys[pick].select("warehouse_id", "sku_id", "on_hand_units")
        S = self.keys.height
        idx = self.keys.with_row_index("s").select("warehouse_id", "sku_id", "s")
        dem = window.join(idx, on=["warehouse_id", "sku_id"]).with_columns(
            (pl.col("date") - start).dt.total_days().alias("d")
        )
        self.demand = np.zeros((self.days, S), np.int64)
        self.demand[dem["d"].to_numpy(), dem["s"].to_numpy()] = dem["demand_units"].to_numpy()
        t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
        rep = t["replenishments"]
        open_ = rep.filter((pl.col("shipped_at") < t0) & (pl.col("received_at") >= t0)).join(
            idx, on=["warehouse_id", "sku_id"]
        )
        self.pipeline = np.zeros((self.days + _TAIL, S), np.int64)
        day = ((open_["received_at"] - t0).dt.total_days()).clip(0, self.days + _TAIL - 1).to_numpy()
        np.add.at(self.pipeline, (day, open_["s"].to_numpy()), open_["units"].to_numpy())
        from serving.decisions.lead_times import lead_time_samples

        med = lead_time_samples(rep, start).group_by("warehouse_id", "mode").agg(pl.col("lead_days").median())
        self.median_lead = {(r[0], r[1]): float(r[2]) for r in med.iter_rows()}
        shipped = ((open_["shipped_at"] - t0).dt.total_microseconds() / 86_400e6).to_numpy()
        est = [
            sd + self.median_lead.get((w, str(m)), 30.0)
            for sd, w, m in zip(shipped, open_["warehouse_id"], open_["mode"].cast(pl.String), strict=True)
        ]
        # open lots: (series, arrival day, units, the planner's expected arrival day)
        self.lots = list(zip(open_["s"].to_list(), day.tolist(), open_["units"].to_list(), est, strict=True))
        sku = self.keys.join(t["skus"], on="sku_id", how="left", maintain_order="left").join(
            t["warehouses"].select("warehouse_id", "holding_cost_usd_per_unit_week"),
            on="warehouse_id",
            how="left",
            maintain_order="left",
        )
        self.sku = sku
        self.hold_day = sku["holding_cost_usd_per_unit_week"].to_numpy() / 7.0
        self.short_cost = np.maximum(sku["price_usd"].to_numpy() - sku["unit_cost_usd"].to_numpy(), 0) + 1.0
        self.weight = sku["weight_kg"].fill_null(0.0).to_numpy()
        self.case = sku["case_pack"].fill_null(1).to_numpy().astype(np.int64)
        self.moq = (
            np.ceil(sku["min_order_units"].fill_null(0).to_numpy() / self.case).astype(np.int64) * self.case
        )
        fr = freight_rates(rep, t["skus"], end + dt.timedelta(days=_TAIL))
        self.freight = {
            (r[0], r[1]): (r[2], r[3])
            for r in fr.select("warehouse_id", "mode", "fixed_usd", "per_kg_usd").iter_rows()
        }
        self.wh = self.keys["warehouse_id"].to_list()
        done = rep.filter(pl.col("received_at").is_not_null()).with_columns(
            ((pl.col("received_at") - pl.col("shipped_at")).dt.total_microseconds() / 86_400e6).alias("lead"),
            ((pl.col("shipped_at") - t0).dt.total_days()).alias("d"),
            pl.col("mode").cast(pl.String),
        )
        self.lead_pool = {
            (w, m): (g["d"].to_numpy(), g["lead"].to_numpy())
            for (w, m), g in done.group_by("warehouse_id", "mode")
        }
        self.u_lead = rng.random((weeks, S))
        self.u_handling = rng.uniform(2.0, 7.0, (weeks, S))

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
        rate = self.freight.get((self.wh[s], mode))
        if rate is None or units <= 0:
            return 0.0
        return float(rate[0] + rate[1] * units * self.weight[s])


class Replay:
    """The stock state of one policy variant."""

    def __init__(self, w: World, name: str):
        self.w, self.name = w, name
        S = w.keys.height
        self.on_hand = w.keys["on_hand_units"].to_numpy().astype(np.int64).copy()
        self.arrivals = w.pipeline.copy()
        self.on_order = self.arrivals.sum(axis=0)
        self.sold = np.zeros((w.days, S), np.int64)
        self.end_stock = np.zeros((w.days, S), np.int64)
        self.freight = 0.0
        self.freight_by_week = np.zeros(w.weeks)
        self.modes: dict[str, int] = {}
        self.lots = list(w.lots)

    def day(self, d: int) -> None:
        got = self.arrivals[d]
        self.on_hand += got
        self.on_order -= got
        sold = np.minimum(self.w.demand[d], self.on_hand)
        self.on_hand -= sold
        self.sold[d], self.end_stock[d] = sold, self.on_hand

    def order(self, week: int, qty: np.ndarray, modes: list[str]) -> None:
        for s in np.flatnonzero(qty > 0):
            lead = self.w.lead_days(week, s, modes[s])
            arrive = min(week * 7 + lead, self.arrivals.shape[0] - 1)
            self.arrivals[arrive, s] += qty[s]
            self.on_order[s] += qty[s]
            est = week * 7 + 4.5 + self.w.median_lead.get((self.w.wh[s], modes[s]), 30.0)
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

    def metrics(self, warmup: int) -> dict[str, float]:
        w = self.w
        a, b = warmup * 7, w.days
        dem, sold = w.demand[a:b], self.sold[a:b]
        lost = dem - sold
        weeks = (b - a) // 7
        out_week = (lost[: weeks * 7].reshape(weeks, 7, -1) > 0).any(axis=1)
        holding = float((self.end_stock[a:b] * w.hold_day).sum())
        stockout = float((lost * w.short_cost).sum())
        freight = float(self.freight_by_week[warmup:].sum())
        n_sw = out_week.size
        # CSL by weekly volume: slow movers (< 1 unit a week), medium (1-10), fast (> 10)
        rate = dem.sum(axis=0) / max(weeks, 1)
        bands = {"slow": rate < 1, "medium": (rate >= 1) & (rate <= 10), "fast": rate > 10}
        by_band = {
            f"csl_{k}": float(1 - out_week[:, m].mean()) if m.any() else float("nan")
            for k, m in bands.items()
        }
        return {
            "cycle_service_level": float(1 - out_week.mean()),
            **by_band,
            "fill_rate": float(sold.sum() / max(dem.sum(), 1)),
            "holding_usd": holding,
            "stockout_usd": stockout,
            "freight_usd": freight,
            "total_cost_usd": holding + stockout + freight,
            "cost_per_series_week_usd": (holding + stockout + freight) / n_sw,
        }


def _round(raw: np.ndarray, case: np.ndarray, moq: np.ndarray) -> np.ndarray:
    cases = np.ceil(np.maximum(raw, 0) / case) * case
    return np.where(raw > 0, np.maximum(cases, moq), 0).astype(np.int64)


def _classic(
    w: World, r: Replay, t: dict[str, pl.DataFrame], week: int, z: float, mean_lead: np.ndarray
) -> None:
    """Order up to mu (L + R) + z sigma sqrt(L + R) with an 8-week moving average of recorded sales."""
    d0 = w.start + dt.timedelta(weeks=week)
    hist = (
        t["warehouse_sales"]
        .filter((pl.col("date") >= d0 - dt.timedelta(weeks=8)) & (pl.col("date") < d0))
        .with_columns(((pl.col("date") - d0).dt.total_days() // 7).alias("wk"))
        .group_by("warehouse_id", "sku_id", "wk")
        .agg(pl.col("units_sold").sum())
    )
    full = (
        w.keys.select("warehouse_id", "sku_id")
        .join(pl.DataFrame({"wk": list(range(-8, 0))}), how="cross")
        .join(hist, on=["warehouse_id", "sku_id", "wk"], how="left")
        .with_columns(pl.col("units_sold").fill_null(0))
        .group_by("warehouse_id", "sku_id", maintain_order=True)
        .agg(pl.col("units_sold").mean().alias("mu"), pl.col("units_sold").std().alias("sigma"))
    )
    stats = w.keys.select("warehouse_id", "sku_id").join(
        full, on=["warehouse_id", "sku_id"], how="left", maintain_order="left"
    )
    mu, sigma = stats["mu"].fill_null(0).to_numpy(), stats["sigma"].fill_null(0).to_numpy()
    cover = mean_lead / 7.0 + 1.0
    target = mu * cover + z * sigma * np.sqrt(cover)
    qty = _round(np.ceil(target) - (r.on_hand + r.on_order), w.case, w.moq)
    r.order(week, qty, ["sea"] * len(qty))


def _forecaster(t: dict[str, pl.DataFrame], start: dt.date, kind: str):  # noqa: ANN202
    """Weekly forecast function, its label and the path correlation: the issue-4 demand model trained
    before `start` (with its estimated `path_rho`), or the oracle (rho 0.5)."""
    if kind == "oracle":
        truth = pl.read_parquet(DATA / "raw" / "oracle" / "demand_weekly.parquet")

        def oracle(cutoff: dt.date) -> pl.DataFrame:
            return (
                truth.filter(pl.col("week_start").is_between(cutoff, cutoff + dt.timedelta(weeks=15)))
                .with_columns(
                    ((pl.col("week_start") - cutoff).dt.total_days() // 7 + 1).cast(pl.Int32).alias("horizon")
                )
                .filter(pl.len().over("warehouse_id", "sku_id") == 16)
            )

        return oracle, "oracle weekly quantiles", 0.5
    from features.demand_features import build_demand_features
    from features.demand_panel import build_weekly_panel
    from models.demand_tasks import DemandTaskConfig, fit_demand_model, needed_origins

    cfg = DemandTaskConfig()
    t0 = time.perf_counter()
    panel = build_weekly_panel(t["warehouse_sales"], t["skus"])
    replay = [start + dt.timedelta(weeks=k) for k in range(60)]
    origins = sorted(set(needed_origins(start, cfg)) | set(replay))
    feats = build_demand_features(panel, t["warehouses"], origins=origins, config=cfg.features)
    model = fit_demand_model(feats, start, cfg)
    log.info("demand model fitted before %s in %.0f s", start, time.perf_counter() - t0)

    def forecast(cutoff: dt.date) -> pl.DataFrame:
        rows = feats.filter(pl.col("origin_week") == cutoff)
        preds = model.predict(rows)
        return rows.select("warehouse_id", "sku_id", "horizon", "week_start").hstack(preds)

    rho = model.path_rho
    return (
        forecast,
        f"demand model fitted before {start}, path rho {rho if rho is None else round(rho, 2)}",
        rho,
    )


def restock_replay(args: argparse.Namespace, t: dict[str, pl.DataFrame]) -> list[dict[str, object]]:
    """Run every restock variant on the same world; returns one metrics row per variant."""
    from models.demand_paths import sample_paths
    from serving.decisions.lead_times import freight_rates as fit_freight
    from serving.decisions.lead_times import lead_time_samples
    from serving.decisions.restock import RestockConfig, abc_classes, plan_restock

    start = dt.date.fromisoformat(args.start)
    w = World(t, start, args.weeks, args.series, args.seed)
    forecast, source, rho = _forecaster(t, start, args.forecast)
    targets = [float(x) for x in args.targets.split(",")]
    modes = tuple(args.modes.split(","))
    zs = [float(x) for x in args.z.split(",") if x]
    ours = {f"ours T={x:.2f}": Replay(w, f"ours T={x:.2f}") for x in targets}
    ours["ours ABC (97/93/85)"] = Replay(w, "ours ABC")
    cal_path = getattr(args, "calibration", None)
    calibrated = cal_path is not None and Path(cal_path).is_file() and not getattr(args, "calibrate", False)
    if calibrated:
        ours |= {f"ours cal T={x:.2f}": Replay(w, f"ours cal T={x:.2f}") for x in targets}
        ours["ours cal ABC (97/93/85)"] = Replay(w, "ours cal ABC")
        cal = RestockConfig.from_json(str(cal_path))
        log.info("calibrated variants from %s: %s", cal_path, cal.quantile_map)
    classic = {f"classic z={z:.2f}": Replay(w, f"classic z={z:.2f}") for z in zs}
    keys = w.keys.select("warehouse_id", "sku_id")
    for week in range(w.weeks):
        d0 = start + dt.timedelta(weeks=week)
        fc = forecast(d0).join(keys, on=["warehouse_id", "sku_id"])
        paths = sample_paths(fc, n_paths=args.paths, seed=args.seed + week, rho=rho)
        lead = lead_time_samples(t["replenishments"], d0)
        fr = fit_freight(t["replenishments"], t["skus"], d0)
        sea = lead.filter(pl.col("mode") == "sea").group_by("warehouse_id").agg(pl.col("lead_days").mean())
        sea_lead = keys.join(sea, on="warehouse_id", how="left", maintain_order="left")["lead_days"]
        mean_lead = sea_lead.fill_null(35.0).to_numpy() + 4.5
        classes = abc_classes(t["warehouse_sales"], t["skus"], d0, RestockConfig())
        for name, r in ours.items():
            if "ABC" in name:
                cfg = RestockConfig(seed=week, modes=modes)
            else:
                x = float(name.split("=")[1])
                cfg = RestockConfig(seed=week, modes=modes, service_by_class={"A": x, "B": x, "C": x})
            if " cal " in name:
                cfg = cfg.model_copy(
                    update={"quantile_map": cal.quantile_map, "volume_bands": cal.volume_bands}
                )
            pos = r.positions(keys, week * 7)
            plan = plan_restock(paths, pos, t["skus"], t["warehouses"], lead, fr, classes, cfg)
            plan = keys.join(plan, on=["warehouse_id", "sku_id"], how="left", maintain_order="left")
            r.order(
                week, plan["order_units"].fill_null(0).to_numpy(), plan["mode"].fill_null("sea").to_list()
            )
            r.order(
                week,
                plan["expedite_units"].fill_null(0).to_numpy(),
                plan["expedite_mode"].fill_null("air").to_list(),
            )
        for name, r in classic.items():
            _classic(w, r, t, week, float(name.split("=")[1]), mean_lead)
        for r in [*ours.values(), *classic.values()]:
            for d in range(week * 7, week * 7 + 7):
                r.day(d)
        log.info("restock week %d/%d", week + 1, w.weeks)
    rows = []
    for name, r in [*ours.items(), *classic.items()]:
        m = r.metrics(args.warmup)
        m |= {"policy": name, "modes": ", ".join(f"{k} {v}" for k, v in sorted(r.modes.items()))}
        rows.append(m)
    packs = ", no case packs/MOQ" if args.no_packs else ""
    data = f"sim {args.series} series x {args.weeks} wk from {args.start} ({source}{packs})"
    return [{"dataset": data, **row} for row in rows]


def calibrate_restock(args: argparse.Namespace, t: dict[str, pl.DataFrame]) -> dict[str, object]:
    """Learn the target -> quantile level map per volume band from replays on earlier windows.

    Each window in `--cal-starts` is replayed like the evaluation (demand model fitted before the window,
    `--weeks` weeks, lost sales) with our policy at every level of `--cal-levels` used as a plain quantile;
    the realised CSL per band is averaged over the windows and inverted (`serving.decisions.restock.fit_quantile_map`).
    Nothing is recorded; the map goes to `--calibration` (JSON), read by `RestockConfig.from_json`.
    """
    from serving.decisions.restock import fit_quantile_map

    levels = [float(x) for x in args.cal_levels.split(",")]
    targets = [round(float(x), 3) for x in np.arange(0.5, 0.991, 0.01)]
    curves: dict[str, list[list[float]]] = {"slow": [], "medium": [], "fast": []}
    for start in args.cal_starts.split(","):
        sub = argparse.Namespace(**{**vars(args), "start": start, "targets": args.cal_levels, "z": ""})
        rows = {str(r["policy"]): r for r in restock_replay(sub, t)}
        for band, curve in curves.items():
            curve.append([float(rows[f"ours T={x:.2f}"][f"csl_{band}"]) for x in levels])  # type: ignore[arg-type]
    realised = {b: [float(v) for v in np.nanmean(np.array(c), axis=0).round(4)] for b, c in curves.items()}
    qmap: dict[str, dict[str, list[float]]] = {}
    for band, c in realised.items():
        if np.all(np.isfinite(c)):
            xs, ys = fit_quantile_map(levels, c, targets)
            qmap[band] = {"targets": list(xs), "levels": [round(y, 4) for y in ys]}
    out: dict[str, object] = {
        "volume_bands": [1.0, 10.0],
        "windows": [f"{s} + {args.weeks} wk" for s in args.cal_starts.split(",")],
        "levels": levels,
        "realised_csl": realised,
        "command": f"python bench/decisions_sim.py --calibrate --cal-starts {args.cal_starts}",
        "quantile_map": qmap,
    }
    Path(args.calibration).write_text(json.dumps(out, indent=1) + "\n")
    log.info("calibration written to %s", args.calibration)
    return out


# ---------------------------------------------------------------------------------------------------------
# Routing replay
# ---------------------------------------------------------------------------------------------------------
def _orders(t: dict[str, pl.DataFrame], first: dt.date, last: dt.date, n: int, promise_days: int, seed: int):  # noqa: ANN202
    ship = t["shipments"].filter(
        (pl.col("origin_country") == "CN")
        & (pl.col("mode").cast(pl.String) != "overseas_warehouse")
        & (pl.col("created_at").dt.date() >= first)
        & (pl.col("created_at").dt.date() <= last)
    )
    ship = ship.sample(min(n, ship.height), seed=seed).sort("created_at")
    return ship.select(
        pl.col("shipment_id").alias("order_id"),
        "created_at", "origin_hub", "origin_country", "destination_country", "destination_region", "weight_kg",
        "declared_value_usd", "hs_code", "item_count", "incoterm", "seller_id", "sku_id",
        (pl.col("created_at").dt.date() + dt.timedelta(days=promise_days)).alias("promised_date"),
    )  # fmt: skip


_NN_LEVELS = (
    ("lane", ["origin_hub", "destination_country", "mode", "carrier"]),
    ("carrier", ["destination_country", "mode", "carrier"]),
    ("mode", ["destination_country", "mode"]),
)


def _outcomes(options: pl.DataFrame, shipments: pl.DataFrame) -> pl.DataFrame:
    """Realised delivery days of the nearest-in-time world parcel on the same lane (own parcel excluded).

    Falls back to the same destination x mode x carrier (any hub), then to the same destination x mode,
    when the lane has no parcel within `_NN_DAYS`; `nn_level` says which.
    """
    world = shipments.select(
        "origin_hub", "destination_country", pl.col("mode").cast(pl.String), "carrier",
        pl.col("shipment_id").alias("nn_id"),
        pl.col("created_at").alias("nn_created"),
        pl.when(pl.col("status") == "delivered")
        .then((pl.col("delivered_at") - pl.col("created_at")).dt.total_microseconds() / 86_400e6)
        .alias("nn_transit_days"),
        pl.col("status").cast(pl.String).alias("nn_status"),
    )  # fmt: skip
    opts = options.select(
        "order_id", "option_id", "created_at", "origin_hub", "destination_country",
        pl.col("mode").cast(pl.String), "carrier",
    )  # fmt: skip
    found: list[pl.DataFrame] = []
    todo = opts
    for level, keys in _NN_LEVELS:
        cand = todo.join(world.select(*keys, "nn_id", "nn_created", "nn_transit_days", "nn_status"), on=keys)
        best = (
            cand.filter(
                (pl.col("nn_id") != pl.col("order_id"))
                & ((pl.col("nn_created") - pl.col("created_at")).abs() <= dt.timedelta(days=_NN_DAYS))
            )
            .with_columns((pl.col("nn_created") - pl.col("created_at")).abs().alias("gap"))
            .sort("gap", "nn_id")
            .group_by("order_id", "option_id", maintain_order=True)
            .first()
            .select("order_id", "option_id", "nn_transit_days", "nn_status", pl.lit(level).alias("nn_level"))
        )
        found.append(best)
        todo = todo.join(best.select("order_id", "option_id"), on=["order_id", "option_id"], how="anti")
    return pl.concat(found)


def _lane_scorer(shipments: pl.DataFrame):  # noqa: ANN202
    """Fallback scorer without trained shipment models: as-of lane quantiles of the last 90 days."""

    def score(rows: pl.DataFrame) -> pl.DataFrame:
        t = rows["created_at"].min()
        hist = shipments.filter(
            (pl.col("delivered_at") < t) & (pl.col("created_at") >= t - dt.timedelta(days=90))
        ).with_columns(
            ((pl.col("delivered_at") - pl.col("created_at")).dt.total_microseconds() / 86_400e6).alias("x"),
            pl.col("mode").cast(pl.String),
        )
        q = hist.group_by("origin_hub", "destination_country", "mode", "carrier").agg(
            *(pl.col("x").quantile(p).alias(f"eta_days_q{int(p * 100)}") for p in (0.5, 0.8, 0.95))
        )
        keyed = rows.select("origin_hub", "destination_country", pl.col("mode").cast(pl.String), "carrier")
        out = keyed.join(q, on=["origin_hub", "destination_country", "mode", "carrier"], how="left",
                         maintain_order="left")  # fmt: skip
        return out.select(pl.col(f"eta_days_q{k}").fill_null(30.0) for k in (50, 80, 95))

    return score


def routing_replay(args: argparse.Namespace, t: dict[str, pl.DataFrame]) -> list[dict[str, object]]:
    """Ours (swept over the on-time target) vs always-cheapest vs always-express on the same orders."""
    from serving.decisions.routing import RoutingConfig, recommend_routes, route_options

    first = dt.date.fromisoformat(args.route_start)
    orders = _orders(t, first, first + dt.timedelta(days=20), args.orders, args.promise_days, args.seed)
    options = route_options(orders, t["lanes"], None, RoutingConfig())
    out = _outcomes(options, t["shipments"])
    options = options.join(out, on=["order_id", "option_id"], how="left")
    # keep orders whose every option has a counterfactual outcome, so every policy is scored on the same set
    complete = options.group_by("order_id").agg(pl.col("nn_status").is_not_null().all().alias("ok"))
    keep = complete.filter("ok")["order_id"]
    orders = orders.filter(pl.col("order_id").is_in(keep.implode()))
    options = options.filter(pl.col("order_id").is_in(keep.implode()))
    try:
        from serving.online.predictor import Predictor

        predictor = Predictor.from_dir(ROOT / "outputs" / "models", num_threads=2)
        scorer, source = predictor.predict_shipments, f"Predictor {predictor.info.model_version}"
    except (FileNotFoundError, ImportError, ValueError) as exc:
        log.warning("no Predictor (%s): lane-history scorer", exc)
        scorer, source = _lane_scorer(t["shipments"]), "lane-history scorer"
    base = RoutingConfig(
        late_penalty_usd=args.late_penalty, include_warehouse=False, p_late_source=args.p_late_source
    )
    scored = None
    rows = []
    outcome = options.select(
        "order_id", "option_id", "nn_transit_days", "nn_status", "promised_date", "created_at"
    )
    for target in [float(x) for x in args.route_targets.split(",")]:
        cfg = base.model_copy(update={"on_time_target": target})
        ranked = recommend_routes(
            orders, scorer if scored is None else _cached(scored), t["lanes"], None, cfg
        )
        if scored is None:
            scored = ranked
        ranked = ranked.join(
            outcome.select("order_id", "option_id"), on=["order_id", "option_id"], how="inner"
        )
        pick = ranked.filter(pl.col("rank") == pl.col("rank").min().over("order_id"))
        rows.append(_route_metrics(pick, outcome, f"ours target={target:.2f}", args.late_penalty))
    ranked = scored.join(outcome.select("order_id", "option_id"), on=["order_id", "option_id"], how="inner")
    cost = pl.col("freight_usd") + pl.col("duties_usd")
    cheapest = ranked.sort("order_id", cost, "option_id").group_by("order_id", maintain_order=True).first()
    rows.append(_route_metrics(cheapest, outcome, "always cheapest", args.late_penalty))
    express = (
        ranked.filter(pl.col("mode").cast(pl.String) == "express")
        .sort("order_id", cost, "option_id")
        .group_by("order_id", maintain_order=True)
        .first()
    )
    rows.append(_route_metrics(express, outcome, "always express", args.late_penalty))
    data = (
        f"sim {orders.height} orders from {args.route_start}, promise {args.promise_days} d "
        f"({source}, P(late) from {args.p_late_source})"
    )
    return [{"dataset": data, **r} for r in rows]


def _cached(scored: pl.DataFrame):  # noqa: ANN202
    """Reuse the first run's scores (the options and their order do not depend on the target)."""
    cols = [c for c in ("eta_days_q50", "eta_days_q80", "eta_days_q95", "p_late") if c in scored.columns]
    table = scored.select("order_id", "option_id", *cols)

    def score(rows: pl.DataFrame) -> pl.DataFrame:
        return (
            rows.select("order_id", "option_id")
            .join(table, on=["order_id", "option_id"], how="left", maintain_order="left")
            .select(cols)
        )

    return score


def _route_metrics(pick: pl.DataFrame, outcome: pl.DataFrame, name: str, penalty: float) -> dict[str, object]:
    got = pick.select("order_id", "option_id", "mode", "freight_usd", "duties_usd", "p_on_time").join(
        outcome, on=["order_id", "option_id"], how="inner"
    )
    deadline = (
        pl.col("promised_date").cast(pl.Datetime("us", "UTC")) + pl.duration(days=1) - pl.col("created_at")
    )
    on_time = (pl.col("nn_status") == "delivered") & (
        pl.col("nn_transit_days") <= deadline.dt.total_microseconds() / 86_400e6
    )
    got = got.with_columns(on_time.fill_null(False).alias("on_time"))
    n = got.height
    freight = float((got["freight_usd"] + got["duties_usd"]).mean())
    late = 1 - float(got["on_time"].mean())
    mix = got.group_by(pl.col("mode").cast(pl.String)).len().sort("mode")
    return {
        "policy": name,
        "on_time_rate": 1 - late,
        "freight_duties_per_order_usd": freight,
        "cost_with_late_penalty_per_order_usd": freight + late * penalty,
        "predicted_on_time": float(got["p_on_time"].mean()),
        "n_orders": n,
        "modes": ", ".join(f"{m} {c / n:.0%}" for m, c in mix.iter_rows()),
    }


# ---------------------------------------------------------------------------------------------------------
# Headline and main
# ---------------------------------------------------------------------------------------------------------
def _interp(x: float, xs: list[float], ys: list[float]) -> float | None:
    order = np.argsort(xs)
    xs_, ys_ = np.asarray(xs)[order], np.asarray(ys)[order]
    if x < xs_[0] or x > xs_[-1]:
        return None
    return float(np.interp(x, xs_, ys_))


def main() -> None:
    """Parse arguments, run both replays, record every figure and the headline comparisons."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", default="2025-01-06")
    ap.add_argument("--weeks", type=int, default=26)
    ap.add_argument("--warmup", type=int, default=6)
    ap.add_argument("--series", type=int, default=250)
    ap.add_argument("--paths", type=int, default=100)
    ap.add_argument("--forecast", choices=("model", "oracle"), default="model")
    ap.add_argument("--modes", default="sea,rail,air", help="replenishment modes our policy may choose")
    ap.add_argument("--targets", default="0.50,0.70,0.80,0.90,0.95,0.98")
    ap.add_argument("--z", default="0.84,1.28,1.64,2.05,2.6,3.2,4.0")
    ap.add_argument("--orders", type=int, default=1500)
    ap.add_argument("--route-start", default="2025-10-20")
    ap.add_argument("--promise-days", type=int, default=10)
    ap.add_argument("--late-penalty", type=float, default=15.0)
    ap.add_argument("--route-targets", default="0.3,0.5,0.7,0.8,0.9,0.95,0.99")
    ap.add_argument("--p-late-source", choices=("model", "eta"), default="eta")
    ap.add_argument("--no-packs", action="store_true", help="what-if: case pack 1 and no MOQ")
    ap.add_argument("--skip-restock", action="store_true")
    ap.add_argument("--skip-routing", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", default=str(ROOT / "serving" / "decisions" / "restock_calibration.json"),
                    help="target -> quantile map; when the file exists, calibrated variants are replayed too")  # fmt: skip
    ap.add_argument(
        "--calibrate", action="store_true", help="only learn the map on --cal-starts and write it"
    )
    ap.add_argument("--cal-starts", default="2024-01-08,2024-07-08", help="earlier windows (end <= --start)")
    ap.add_argument(
        "--cal-levels", default="0.02,0.05,0.10,0.20,0.30,0.40,0.50,0.60,0.70,0.80,0.90,0.95,0.98,0.99"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t = _tables()
    if args.calibrate:
        calibrate_restock(args, t)
        return
    cmd = COMMAND
    if args.no_packs:  # what-if: no case packs or MOQs, for both policies
        t["skus"] = t["skus"].with_columns(
            pl.lit(1, pl.Int32).alias("case_pack"), pl.lit(0, pl.Int32).alias("min_order_units")
        )
        cmd += " --no-packs"
    if not args.skip_restock:
        t0 = time.perf_counter()
        rows = restock_replay(args, t)
        for r in rows:
            for metric in ("cycle_service_level", "csl_slow", "csl_medium", "csl_fast", "fill_rate",
                           "cost_per_series_week_usd", "holding_usd", "stockout_usd", "freight_usd"):  # fmt: skip
                unit = "USD" if metric.endswith("usd") else "share"
                record("decisions_sim", str(r["dataset"]), str(r["policy"]), f"restock_{metric}", float(r[metric]),
                       unit, cmd)  # fmt: skip
        _headline_restock(rows, cmd)
        log.info("restock replay %.0f s", time.perf_counter() - t0)
        pl.DataFrame(rows).write_csv(ROOT / "bench" / "results" / "decisions_sim_restock.csv")
    if not args.skip_routing:
        t0 = time.perf_counter()
        rows = routing_replay(args, t)
        for r in rows:
            for metric in (
                "on_time_rate",
                "predicted_on_time",
                "freight_duties_per_order_usd",
                "cost_with_late_penalty_per_order_usd",
            ):
                unit = "USD" if metric.endswith("usd") else "share"
                record("decisions_sim", str(r["dataset"]), str(r["policy"]), f"routing_{metric}", float(r[metric]),
                       unit, cmd)  # fmt: skip
        _headline_routing(rows, cmd)
        log.info("routing replay %.0f s", time.perf_counter() - t0)
        pl.DataFrame(rows).write_csv(ROOT / "bench" / "results" / "decisions_sim_routing.csv")
    write_table()


def _headline_restock(rows: list[dict[str, object]], cmd: str) -> None:
    data = str(rows[0]["dataset"])
    base = [r for r in rows if str(r["policy"]).startswith("classic")]
    for label in ("ours", "ours cal"):
        ours = [r for r in rows if str(r["policy"]).startswith(f"{label} T=")]
        xs = [float(r["cycle_service_level"]) for r in ours]
        ys = [float(r["cost_per_series_week_usd"]) for r in ours]
        for b in base if ours else []:
            csl = float(b["cycle_service_level"])
            mine = _interp(csl, xs, ys)
            if mine is not None:
                saving = 1 - mine / float(b["cost_per_series_week_usd"])
                record("decisions_sim", data, f"{label} vs {b['policy']}", "restock_cost_saving_at_equal_service",
                       saving, "share", cmd)  # fmt: skip
        for r in ours:
            target = float(str(r["policy"]).split("=")[1])
            for metric in ("cycle_service_level", "csl_slow", "csl_medium", "csl_fast"):
                name = "restock_service_minus_target" + (
                    "" if metric == "cycle_service_level" else metric[3:]
                )
                record("decisions_sim", data, str(r["policy"]), name, float(r[metric]) - target, "share", cmd)


def _headline_routing(rows: list[dict[str, object]], cmd: str) -> None:
    """On-time rate at equal cost against the blend of the two baselines (a share of orders always cheapest,
    the rest always express, mixed to spend exactly what ours spends), and against each baseline alone."""
    data = str(rows[0]["dataset"])
    by = {str(r["policy"]): r for r in rows}
    cheap, fast = by["always cheapest"], by["always express"]
    c0, c1 = float(cheap["freight_duties_per_order_usd"]), float(fast["freight_duties_per_order_usd"])
    o0, o1 = float(cheap["on_time_rate"]), float(fast["on_time_rate"])
    ours = [r for r in rows if str(r["policy"]).startswith("ours")]
    for r in ours:
        cost = float(r["freight_duties_per_order_usd"])
        if c0 <= cost <= c1 and c1 > c0:
            blend = o0 + (cost - c0) / (c1 - c0) * (o1 - o0)
            record("decisions_sim", data, f"{r['policy']} vs cheapest/express blend",
                   "routing_on_time_gain_at_equal_cost", float(r["on_time_rate"]) - blend, "share", cmd)  # fmt: skip
    xs = [float(r["freight_duties_per_order_usd"]) for r in ours]
    ys = [float(r["on_time_rate"]) for r in ours]
    for b in (cheap, fast):
        mine = _interp(float(b["freight_duties_per_order_usd"]), xs, ys)
        if mine is not None:
            record("decisions_sim", data, f"ours vs {b['policy']}", "routing_on_time_gain_at_equal_cost",
                   mine - float(b["on_time_rate"]), "share", cmd)  # fmt: skip
        cost = _interp(float(b["on_time_rate"]), ys, xs)
        if cost is not None:
            record("decisions_sim", data, f"ours vs {b['policy']}", "routing_cost_saving_at_equal_on_time",
                   1 - cost / float(b["freight_duties_per_order_usd"]), "share", cmd)  # fmt: skip


if __name__ == "__main__":
    main()
