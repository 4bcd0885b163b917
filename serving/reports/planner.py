"""Stage: reporting. The weekly planner report: one self-contained HTML file plus CSV/Parquet exports.

Reads the frames it is given (restock plan, demand forecast, weekly sales history, lane and customs
statistics, versions) and writes `<out>/report.html`, `plan.csv`, `plan.parquet`, `orders.csv` and
`warehouses.csv`. The HTML has no external resource: the figures are matplotlib PNGs inlined as base64,
the CSS is inline, no JavaScript and no web fonts, so it opens offline in any browser. The figures are drawn
by `serving.reports.plots`.

`lane_stats` and `customs_hotspots` are pure frame functions the weekly-plan flow calls on the contract
tables; `warehouse_summary` condenses a restock plan per warehouse (weeks of cover, stock-out risk).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from serving.reports.plots import figure_png_base64, planner_fan_figure, stockout_risk_figure

__all__ = [
    "PlannerReport",
    "customs_hotspots",
    "lane_stats",
    "top_series",
    "warehouse_summary",
    "write_report",
]

_TEMPLATES = Path(__file__).parent / "templates"
_DAY_US = 86_400e6


@dataclass
class PlannerReport:
    """Everything the report shows.

    Attributes:
        week: ISO week label of the plan (`2025-W49`).
        plan_date: Monday of that week (decisions use data strictly before it).
        plan: restock plan (`serving.decisions.restock.plan_restock`).
        forecast: demand forecast contract frame (`demand_mean`, `demand_q50..q95` by horizon).
        history: weekly sales `warehouse_id, sku_id, week_start, units` before the plan date.
        lanes: parcel lane reliability (`lane_stats`).
        replenishment_lanes: replenishment lead times (`serving.decisions.lead_times.lane_reliability`).
        customs: customs hot spots (`customs_hotspots`).
        versions: model and data versions shown in the footer (name -> version).
        warehouses: warehouse ids that must appear (every warehouse gets a row even without a series).
        n_fan_charts: number of SKU fan charts.
    """

    week: str
    plan_date: dt.date
    plan: pl.DataFrame
    forecast: pl.DataFrame
    history: pl.DataFrame
    lanes: pl.DataFrame
    replenishment_lanes: pl.DataFrame
    customs: pl.DataFrame
    versions: dict[str, str] = field(default_factory=dict)
    warehouses: list[str] = field(default_factory=list)
    n_fan_charts: int = 6


def lane_stats(shipments: pl.DataFrame, as_of: dt.date, lookback_days: int = 91) -> pl.DataFrame:
    """On-time rate and transit percentiles of delivered parcels per destination x mode, before `as_of`.

    A parcel counts when it was delivered before `as_of` and booked at most `lookback_days` before it.

    Returns:
        `destination_country`, `mode`, `n_delivered`, `on_time_rate`, `transit_days_p50`, `transit_days_p90`,
        sorted by on-time rate (worst first).
    """
    t = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)
    done = shipments.filter(
        pl.col("delivered_at").is_not_null()
        & (pl.col("delivered_at") < t)
        & (pl.col("created_at") >= t - dt.timedelta(days=lookback_days))
    ).with_columns(
        ((pl.col("delivered_at") - pl.col("created_at")).dt.total_microseconds() / _DAY_US).alias("transit"),
        (pl.col("delivered_at").dt.date() <= pl.col("promised_date")).alias("on_time"),
        pl.col("mode").cast(pl.String),
    )
    return (
        done.group_by("destination_country", "mode")
        .agg(
            pl.len().alias("n_delivered"),
            pl.col("on_time").mean().alias("on_time_rate"),
            pl.col("transit").quantile(0.5).alias("transit_days_p50"),
            pl.col("transit").quantile(0.9).alias("transit_days_p90"),
        )
        .filter(pl.col("n_delivered") >= 20)
        .sort("on_time_rate", "destination_country", "mode")
    )


def customs_hotspots(
    declarations: pl.DataFrame, as_of: dt.date, lookback_days: int = 91, min_declarations: int = 30
) -> pl.DataFrame:
    """Inspection/hold rate and clearance time per destination x HS chapter, before `as_of`.

    Returns:
        `destination_country`, `hs_chapter`, `n_declarations`, `inspection_rate`, `clearance_days_p50`,
        `clearance_days_p90`, worst inspection rate first.
    """
    t = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)
    recent = declarations.filter(
        (pl.col("declared_at") < t) & (pl.col("declared_at") >= t - dt.timedelta(days=lookback_days))
    ).with_columns(
        pl.col("hs_code").str.slice(0, 2).alias("hs_chapter"),
        pl.when(pl.col("released_at") < t)
        .then((pl.col("released_at") - pl.col("declared_at")).dt.total_microseconds() / _DAY_US)
        .alias("clearance"),
    )
    return (
        recent.group_by("destination_country", "hs_chapter")
        .agg(
            pl.len().alias("n_declarations"),
            pl.col("is_inspected").mean().alias("inspection_rate"),
            pl.col("clearance").quantile(0.5).alias("clearance_days_p50"),
            pl.col("clearance").quantile(0.9).alias("clearance_days_p90"),
        )
        .filter(pl.col("n_declarations") >= min_declarations)
        .sort("inspection_rate", "n_declarations", descending=True)
    )


def warehouse_summary(plan: pl.DataFrame, warehouses: list[str] | None = None) -> pl.DataFrame:
    """Per warehouse: series, order lines, units and spend, weeks of cover and stock-out risk.

    Args:
        plan: restock plan.
        warehouses: ids that must appear (rows of zeros for a warehouse without series).

    Returns:
        `warehouse_id`, `n_series`, `n_orders`, `order_units`, `order_value_usd`, `freight_usd`,
        `weeks_of_cover_median`, `n_series_under_2_weeks`, `mean_p_stockout`,
        `n_series_p_stockout_over_20pct`.
    """
    units = pl.col("order_units") + (pl.col("expedite_units") if "expedite_units" in plan.columns else 0)
    summary = plan.group_by("warehouse_id").agg(
        pl.len().alias("n_series"),
        pl.col("is_order").sum().alias("n_orders"),
        units.sum().alias("order_units"),
        pl.col("order_value_usd").sum().round(0),
        pl.col("freight_usd").sum().round(0),
        pl.col("weeks_of_cover").median().round(1).alias("weeks_of_cover_median"),
        (pl.col("weeks_of_cover") < 2).sum().alias("n_series_under_2_weeks"),
        pl.col("p_stockout").mean().round(3).alias("mean_p_stockout"),
        (pl.col("p_stockout") > 0.2).sum().alias("n_series_p_stockout_over_20pct"),
    )
    if warehouses:
        summary = pl.DataFrame({"warehouse_id": sorted(set(warehouses))}).join(
            summary, on="warehouse_id", how="left"
        )
    return summary.fill_null(0).sort("warehouse_id")


def top_series(plan: pl.DataFrame, n: int) -> pl.DataFrame:
    """The `n` series with the largest mean weekly demand (class A first), for the fan charts."""
    return (
        plan.sort(pl.col("abc_class"), pl.col("weekly_demand_mean"), descending=[False, True])
        .head(n)
        .select("warehouse_id", "sku_id")
    )


def _lines_by_mode(orders: pl.DataFrame) -> dict[str, int]:
    """Order lines per mode, regular and expedite lines counted separately."""
    counts: dict[str, int] = {}
    for col, units in (("mode", "order_units"), ("expedite_mode", "expedite_units")):
        if col in orders.columns:
            for mode, n in orders.filter(pl.col(units) > 0).group_by(col).len().iter_rows():
                counts[str(mode)] = counts.get(str(mode), 0) + int(n)
    return dict(sorted(counts.items()))


def _records(df: pl.DataFrame, digits: int = 2) -> list[dict[str, Any]]:
    out = df.with_columns(pl.selectors.float().round(digits))
    return out.to_dicts()


_PLAN_COLUMNS = [
    "warehouse_id", "sku_id", "abc_class", "service_target", "mode", "order_units", "order_cases",
    "case_pack", "expedite_mode", "expedite_units",
    "order_value_usd", "freight_usd", "on_hand_units", "on_order_units", "order_up_to_units",
    "safety_stock_units", "cover_weeks", "lead_days_mean", "lead_days_p90", "weeks_of_cover", "p_stockout",
    "expected_cost_usd", "reason",
]  # fmt: skip


def write_report(report: PlannerReport, out_dir: Path, exports_dir: Path | None = None) -> Path:
    """Write the HTML report into `out_dir` and the exports (plan.parquet/csv, orders.csv, warehouses.csv).

    Args:
        report: the content.
        out_dir: folder of `report.html` (created).
        exports_dir: folder of the exports (created; default `out_dir`).

    Returns:
        The path of `report.html`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    exports = exports_dir or out_dir
    exports.mkdir(parents=True, exist_ok=True)
    plan = report.plan
    summary = warehouse_summary(plan, report.warehouses or None)
    orders = plan.filter(pl.col("is_order")).sort(
        "warehouse_id", "expected_cost_usd", descending=[False, True]
    )
    plan_cols = [c for c in _PLAN_COLUMNS if c in plan.columns]
    plan.write_parquet(exports / "plan.parquet")
    plan.select(plan_cols).write_csv(exports / "plan.csv")
    orders.select(plan_cols).write_csv(exports / "orders.csv")
    summary.write_csv(exports / "warehouses.csv")
    series = top_series(plan, report.n_fan_charts)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"])
    )
    html = env.get_template("planner_report.html.j2").render(
        week=report.week,
        plan_date=report.plan_date.isoformat(),
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        totals={
            "n_orders": int(orders.height),
            "units": int((orders["order_units"] + orders["expedite_units"]).sum()) if orders.height else 0,
            "value": float(orders["order_value_usd"].sum()) if orders.height else 0.0,
            "freight": float(orders["freight_usd"].sum()) if orders.height else 0.0,
            "by_mode": _lines_by_mode(orders),
        },
        summary=_records(summary),
        orders=_records(orders.select(plan_cols).head(200)),
        n_orders_hidden=max(orders.height - 200, 0),
        risky=_records(
            plan.filter(pl.col("p_stockout") > 0)
            .sort("p_stockout", "weekly_demand_mean", descending=True)
            .select(
                "warehouse_id", "sku_id", "abc_class", "weeks_of_cover", "p_stockout", "order_units", "mode"
            )
            .head(25)
        ),
        fan_png=figure_png_base64(planner_fan_figure(report.forecast, report.history, series)),
        risk_png=figure_png_base64(stockout_risk_figure(summary)),
        lanes=_records(report.lanes.head(15)),
        replenishment_lanes=_records(report.replenishment_lanes),
        customs=_records(report.customs.head(15)),
        versions=report.versions,
        exports=str(exports.resolve()),
    )
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
