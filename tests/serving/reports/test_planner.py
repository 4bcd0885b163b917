"""Planner report: builds from the demo data, every warehouse present, self-contained HTML, exports."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest

from models.demand_paths import sample_paths
from serving.reports.planner import customs_hotspots, lane_stats, warehouse_summary

DEMO = Path(__file__).resolve().parents[3] / "data"


def oracle_forecast(raw_dir: Path, cutoff: dt.date, out: Path, n_paths: int = 50, weeks: int = 16) -> Path:
    """A `weekly-forecast` folder made from the simulator's true weekly demand quantiles (a perfect model)."""
    truth = pl.read_parquet(raw_dir / "oracle" / "demand_weekly.parquet")
    fc = (
        truth.filter(
            (pl.col("week_start") >= cutoff) & (pl.col("week_start") < cutoff + dt.timedelta(weeks=weeks))
        )
        .with_columns(
            ((pl.col("week_start") - cutoff).dt.total_days() // 7 + 1).cast(pl.Int32).alias("horizon")
        )
        .filter(pl.len().over("warehouse_id", "sku_id") == weeks)
    )
    out.mkdir(parents=True, exist_ok=True)
    fc.write_parquet(out / "forecast.parquet")
    sample_paths(fc, n_paths=n_paths, seed=0, rho=0.5).write_parquet(out / "paths.parquet")
    meta = {"model_version": "oracle", "cutoff_date": cutoff.isoformat(), "n_paths": n_paths}
    (out / "metadata.json").write_text(json.dumps(meta))
    return out


@pytest.mark.skipif(not (DEMO / "validated" / "warehouse_sales.parquet").exists(), reason="no demo data")
def test_report_builds_from_the_demo_data_with_every_warehouse(tmp_path: Path) -> None:
    from pipelines.flows.plan import PLAN_TABLES, build_weekly_plan, load_forecast

    cutoff = dt.date(2025, 6, 30)
    folder = oracle_forecast(DEMO / "raw", cutoff, tmp_path / "fc")
    tables = {name: pl.read_parquet(DEMO / "validated" / f"{name}.parquet") for name in PLAN_TABLES}
    path = build_weekly_plan(tables, *load_forecast(folder), cutoff, tmp_path / "outputs")
    html = path.read_text(encoding="utf-8")
    assert path == tmp_path / "outputs" / "reports" / "2025-W27" / "report.html"
    for wh in tables["warehouses"]["warehouse_id"]:
        assert wh in html
    assert not re.search(r"<script|<link|@import|src=\"http|url\(http", html)  # self-contained
    assert html.count("data:image/png;base64,") == 2
    plan = pl.read_parquet(tmp_path / "outputs" / "plans" / "2025-W27" / "plan.parquet")
    orders = pl.read_csv(tmp_path / "outputs" / "plans" / "2025-W27" / "orders.csv")
    assert orders.height == plan["is_order"].sum() > 0
    assert orders["reason"].str.contains("on hand").all()
    per_wh = pl.read_csv(tmp_path / "outputs" / "plans" / "2025-W27" / "warehouses.csv")
    assert sorted(per_wh["warehouse_id"]) == sorted(tables["warehouses"]["warehouse_id"])


def test_warehouse_summary_lists_warehouses_without_series() -> None:
    plan = pl.DataFrame({
        "warehouse_id": ["W1", "W1"], "is_order": [True, False], "order_units": [10, 0],
        "order_value_usd": [50.0, 0.0], "freight_usd": [5.0, 0.0], "weeks_of_cover": [1.0, 4.0],
        "p_stockout": [0.3, 0.0],
    })  # fmt: skip
    out = warehouse_summary(plan, ["W1", "W2"])
    assert out["warehouse_id"].to_list() == ["W1", "W2"]
    w1 = out.row(0, named=True)
    assert (w1["n_orders"], w1["n_series_under_2_weeks"], w1["n_series_p_stockout_over_20pct"]) == (1, 1, 1)
    assert out.row(1, named=True)["n_series"] == 0


def test_lane_stats_and_customs_hotspots_use_only_the_past() -> None:
    utc = dt.UTC
    ship = pl.DataFrame({
        "destination_country": ["US"] * 25 + ["US"],
        "mode": ["postal"] * 26,
        "created_at": [dt.datetime(2025, 5, 1, tzinfo=utc)] * 26,
        "delivered_at": [dt.datetime(2025, 5, 11, tzinfo=utc)] * 20
        + [dt.datetime(2025, 5, 21, tzinfo=utc)] * 5
        + [dt.datetime(2025, 7, 1, tzinfo=utc)],
        "promised_date": [dt.date(2025, 5, 15)] * 26,
    })  # fmt: skip
    out = lane_stats(ship, dt.date(2025, 6, 1))
    assert out.row(0, named=True)["n_delivered"] == 25  # the July delivery is in the future
    assert out.row(0, named=True)["on_time_rate"] == pytest.approx(0.8)
    decl = pl.DataFrame({
        "destination_country": ["US"] * 40, "hs_code": ["851830"] * 40,
        "declared_at": [dt.datetime(2025, 5, 1, tzinfo=utc)] * 40, "is_inspected": [True] * 10 + [False] * 30,
        "released_at": [dt.datetime(2025, 5, 3, tzinfo=utc)] * 40,
    })  # fmt: skip
    hot = customs_hotspots(decl, dt.date(2025, 6, 1))
    assert hot.row(0, named=True)["inspection_rate"] == pytest.approx(0.25)
    assert hot.row(0, named=True)["hs_chapter"] == "85"


def test_write_report_from_a_small_plan(tmp_path: Path) -> None:
    from serving.decisions.restock import RestockConfig, plan_restock
    from serving.reports.planner import PlannerReport, write_report
    from tests.serving.decisions.test_restock_regression import regression_inputs

    plan = plan_restock(*regression_inputs(), RestockConfig(handling_days=3.0, seed=3))
    weeks = [dt.date(2025, 3, 3) + dt.timedelta(weeks=h) for h in range(2)] * 2
    forecast = pl.DataFrame({"warehouse_id": ["W1", "W1", "W2", "W2"], "sku_id": ["S1"] * 4,
                             "week_start": weeks, "demand_mean": [5.0, 6.0] * 2, "demand_q50": [5.0, 6.0] * 2,
                             "demand_q80": [7.0, 8.0] * 2, "demand_q90": [8.0, 9.0] * 2,
                             "demand_q95": [9.0, 10.0] * 2})  # fmt: skip
    empty = pl.DataFrame()
    report = PlannerReport(
        week="2025-W10", plan_date=dt.date(2025, 3, 3), plan=plan, forecast=forecast,
        history=pl.DataFrame(schema={"warehouse_id": pl.String, "sku_id": pl.String, "week_start": pl.Date,
                                     "units": pl.Int64}),
        lanes=empty, replenishment_lanes=empty, customs=empty, versions={"data (DVC md5)": "abc123"},
        warehouses=["W1", "W2", "W3"], n_fan_charts=2,
    )  # fmt: skip
    path = write_report(report, tmp_path / "report", exports_dir=tmp_path / "plans")
    html = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report" / "report.html"
    assert html.count("data:image/png;base64,") == 2 and "abc123" in html and "W3" in html
    assert not re.search(r"<script|<link|@import|src=\"http|url\(http", html)
    orders = pl.read_csv(tmp_path / "plans" / "orders.csv")
    assert orders.height == int(plan["is_order"].sum()) == 3
    per_wh = pl.read_csv(tmp_path / "plans" / "warehouses.csv")
    assert per_wh["warehouse_id"].to_list() == ["W1", "W2", "W3"]
    assert per_wh.filter(pl.col("warehouse_id") == "W3")["n_series"].to_list() == [0]
