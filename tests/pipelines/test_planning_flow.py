"""Prefect flow smoke test: weekly-plan on a small simulated world."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from features.sources.simulator import SimulatorConfig


def _small_world() -> SimulatorConfig:
    base = SimulatorConfig(start_date=dt.date(2024, 6, 3), end_date=dt.date(2025, 6, 29), seed=5)
    return base.model_copy(
        update={
            "shipments": base.shipments.model_copy(update={"n_shipments": 3_000}),
            "demand": base.demand.model_copy(update={"n_skus": 15}),
        }
    )


@pytest.mark.flow
def test_weekly_plan_flow_writes_plan_and_report(prefect_harness: None, tmp_path: Path) -> None:
    from features.ingest import ingest
    from features.sources.simulator import simulate, write_world
    from pipelines.config import Settings
    from pipelines.flows.plan import weekly_plan
    from tests.serving.reports.test_planner import oracle_forecast

    data = tmp_path / "data"
    write_world(simulate(_small_world()), data / "raw")
    ingest(data / "raw", data / "validated")
    cutoff = dt.date(2025, 3, 3)  # 16 weeks of oracle demand remain after it
    folder = oracle_forecast(data / "raw", cutoff, tmp_path / "fc", n_paths=30)
    settings = Settings(data_dir=data, outputs_dir=tmp_path / "out")
    result = weekly_plan(week="2025-W10", settings=settings, forecast_dir=folder)
    assert result.report == tmp_path / "out" / "reports" / "2025-W10" / "report.html"
    assert (result.week, result.plan_date) == ("2025-W10", cutoff)
    assert result.exports == tmp_path / "out" / "plans" / "2025-W10"
    html = result.report.read_text(encoding="utf-8")
    warehouses = pl.read_parquet(data / "validated" / "warehouses.parquet")["warehouse_id"]
    assert all(w in html for w in warehouses)
    plan = pl.read_parquet(tmp_path / "out" / "plans" / "2025-W10" / "plan.parquet")
    assert plan.height > 0 and (plan["plan_date"] == cutoff).all()
    with pytest.raises(ValueError, match="does not match the plan date"):
        weekly_plan(week="2025-W11", settings=settings, forecast_dir=folder)
