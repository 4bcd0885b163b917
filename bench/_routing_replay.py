"""Bench helper: the routing replay of `decisions_sim` (orders, counterfactual outcomes, policies, metrics).

The method is in the module docstring of `bench/decisions_sim.py` ("Routing replay"); this module only holds
its code, so the benchmark script stays readable. Reads the models under `outputs/models` when present
(else a lane-history scorer); writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

import polars as pl

log = logging.getLogger("decisions_sim")
ROOT = Path(__file__).resolve().parents[1]
_NN_DAYS = 4  # counterfactual neighbour: same lane, booked at most this many days apart


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
