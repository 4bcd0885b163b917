"""Bench: decisions evaluated by simulation (restock policy and routing vs classic baselines, same run).

Run with `transitcast bench decisions_sim` (defaults: ~3-5 minutes on 2 cores); figures go to
`bench/results/decisions_sim.jsonl` and the table in docs/benchmarks.md; docs/decisions.md explains them.

Restock replay (the simulated world in `data/`, truth in `data/raw/oracle/demand_daily.parquet`; the replay
engine is `serving.decisions.restock.replay`, shared with the `calibrate-restock` flow)
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
    the windows, inverts it into a target -> quantile level map
    (`serving.decisions.restock.fit_restock_calibration`, as the `calibrate-restock` flow does) and writes
    `--calibration` (default `bench/results/restock_calibration.json`); nothing is recorded. When that file
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
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
from _results import record, write_table
from _routing_replay import routing_replay

from serving.decisions.restock import RestockCalibration, RestockConfig, fit_restock_calibration
from serving.decisions.restock.replay import (
    Forecaster,
    PolicyReplay,
    ReplayWindow,
    ReplayWorld,
    fit_forecaster,
    order_by_plan,
    service_curves,
    week_inputs,
)

log = logging.getLogger("decisions_sim")
COMMAND = "transitcast bench decisions_sim"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


# ---------------------------------------------------------------------------------------------------------
# Restock replay
# ---------------------------------------------------------------------------------------------------------
def _tables() -> dict[str, pl.DataFrame]:
    names = ("warehouse_sales", "replenishments", "skus", "warehouses", "shipments", "lanes")
    return {n: pl.read_parquet(DATA / "validated" / f"{n}.parquet") for n in names}


def _round(raw: np.ndarray, case: np.ndarray, moq: np.ndarray) -> np.ndarray:
    cases = np.ceil(np.maximum(raw, 0) / case) * case
    return np.where(raw > 0, np.maximum(cases, moq), 0).astype(np.int64)


def _classic(
    w: ReplayWorld, r: PolicyReplay, t: dict[str, pl.DataFrame], week: int, z: float, mean_lead: np.ndarray
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


def _forecaster(t: dict[str, pl.DataFrame], start: dt.date, kind: str) -> Forecaster:
    """The issue-4 demand model trained before `start` (with its estimated `path_rho`), or the oracle's true
    weekly quantiles (rho 0.5)."""
    if kind != "oracle":
        return fit_forecaster(t, start)
    truth = pl.read_parquet(DATA / "raw" / "oracle" / "demand_weekly.parquet")

    def oracle(cutoff: dt.date) -> pl.DataFrame:
        return (
            truth.filter(pl.col("week_start").is_between(cutoff, cutoff + dt.timedelta(weeks=15)))
            .with_columns(
                ((pl.col("week_start") - cutoff).dt.total_days() // 7 + 1).cast(pl.Int32).alias("horizon")
            )
            .filter(pl.len().over("warehouse_id", "sku_id") == 16)
        )

    return Forecaster(oracle, "oracle weekly quantiles", 0.5)


def _oracle_demand() -> pl.DataFrame:
    """The simulator's uncensored daily demand (`warehouse_id, sku_id, date, demand_units`)."""
    return pl.read_parquet(DATA / "raw" / "oracle" / "demand_daily.parquet")


def _window(args: argparse.Namespace, start: str) -> ReplayWindow:
    return ReplayWindow(
        start=dt.date.fromisoformat(start), weeks=args.weeks, warmup=args.warmup, n_series=args.series,
        n_paths=args.paths, seed=args.seed, modes=tuple(args.modes.split(",")),
    )  # fmt: skip


def _ours_config(name: str, week: int, modes: tuple[str, ...], cal: RestockConfig | None) -> RestockConfig:
    """`ours T=x` (one target for every class), `ours ABC` (the class targets), `ours cal ...` (with the map)."""
    if "ABC" in name:
        cfg = RestockConfig(seed=week, modes=modes)
    else:
        x = float(name.split("=")[1])
        cfg = RestockConfig(seed=week, modes=modes, service_by_class={"A": x, "B": x, "C": x})
    if " cal " in name and cal is not None:
        cfg = cfg.model_copy(update={"quantile_map": cal.quantile_map, "volume_bands": cal.volume_bands})
    return cfg


def restock_replay(args: argparse.Namespace, t: dict[str, pl.DataFrame]) -> list[dict[str, object]]:
    """Run every restock variant on the same world; returns one metrics row per variant."""
    window = _window(args, args.start)
    w = ReplayWorld(t, _oracle_demand(), window)
    forecaster = _forecaster(t, window.start, args.forecast)
    targets = [float(x) for x in args.targets.split(",")]
    zs = [float(x) for x in args.z.split(",") if x]
    ours = {f"ours T={x:.2f}": PolicyReplay(w, f"ours T={x:.2f}") for x in targets}
    ours["ours ABC (97/93/85)"] = PolicyReplay(w, "ours ABC")
    cal = None
    if Path(args.calibration).is_file():
        ours |= {f"ours cal T={x:.2f}": PolicyReplay(w, f"ours cal T={x:.2f}") for x in targets}
        ours["ours cal ABC (97/93/85)"] = PolicyReplay(w, "ours cal ABC")
        cal = RestockConfig.from_json(args.calibration)
        log.info("calibrated variants from %s: %s", args.calibration, cal.quantile_map)
    classic = {f"classic z={z:.2f}": PolicyReplay(w, f"classic z={z:.2f}") for z in zs}
    keys = w.keys.select("warehouse_id", "sku_id")
    for week in range(w.weeks):
        inputs = week_inputs(w, t, forecaster, week, window)
        sea = (
            inputs.lead.filter(pl.col("mode") == "sea")
            .group_by("warehouse_id")
            .agg(pl.col("lead_days").mean())
        )
        sea_lead = keys.join(sea, on="warehouse_id", how="left", maintain_order="left")["lead_days"]
        mean_lead = sea_lead.fill_null(35.0).to_numpy() + 4.5
        for name, r in ours.items():
            order_by_plan(r, t, week, inputs, _ours_config(name, week, window.modes, cal))
        for name, r in classic.items():
            _classic(w, r, t, week, float(name.split("=")[1]), mean_lead)
        for r in [*ours.values(), *classic.values()]:
            for d in range(week * 7, week * 7 + 7):
                r.day(d)
        log.info("restock week %d/%d", week + 1, w.weeks)
    rows = []
    for name, r in [*ours.items(), *classic.items()]:
        m: dict[str, object] = asdict(r.metrics(args.warmup))
        m |= {"policy": name, "modes": ", ".join(f"{k} {v}" for k, v in sorted(r.modes.items()))}
        rows.append(m)
    packs = ", no case packs/MOQ" if args.no_packs else ""
    data = f"sim {args.series} series x {args.weeks} wk from {args.start} ({forecaster.label}{packs})"
    return [{"dataset": data, **row} for row in rows]


def calibrate_restock(args: argparse.Namespace, t: dict[str, pl.DataFrame]) -> RestockCalibration:
    """Learn the target -> quantile level map per volume band from replays on earlier windows.

    Each window in `--cal-starts` is replayed like the evaluation (demand model fitted before the window,
    `--weeks` weeks, lost sales, the simulator's uncensored demand) with our policy at every level of
    `--cal-levels` used as a plain quantile (`serving.decisions.restock.replay.service_curves`); the curves
    go to `serving.decisions.restock.fit_restock_calibration`, the function the `calibrate-restock` flow
    uses. Nothing is recorded; the calibration goes to `--calibration` (JSON, under bench/results/), read by
    `RestockConfig.from_json` and `transitcast plan --calibration`.
    """
    levels = [float(x) for x in args.cal_levels.split(",")]
    starts = args.cal_starts.split(",")
    curves: dict[str, list[list[float]]] = {}
    for start in starts:
        window = _window(args, start)
        per_band = service_curves(t, _oracle_demand(), window, levels, _forecaster(t, window.start, "model"))
        for band, curve in per_band.items():
            curves.setdefault(band, []).append(curve)
    calibration = fit_restock_calibration(
        levels, curves, windows=[_window(args, s).label for s in starts],
        note=f"python bench/decisions_sim.py --calibrate --cal-starts {args.cal_starts}",
    )  # fmt: skip
    Path(args.calibration).parent.mkdir(parents=True, exist_ok=True)
    Path(args.calibration).write_text(calibration.to_json())
    log.info("calibration written to %s", args.calibration)
    return calibration


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
    ap.add_argument("--calibration", default=str(ROOT / "bench" / "results" / "restock_calibration.json"),
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
