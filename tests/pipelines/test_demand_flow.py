"""Smoke test of the train-demand and weekly-forecast flows on a small simulated world."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest


@pytest.mark.flow
def test_train_demand_and_weekly_forecast_flows_write_the_contract(
    prefect_harness: None, small_world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from features.sources.simulator.demand import DemandConfig, simulate_demand
    from models.demand import FORECAST_SCHEMA
    from models.demand_tasks import DemandTaskConfig
    from models.lgbm import LGBMConfig
    from pipelines.config import Settings
    from pipelines.flows.demand import train_demand, weekly_forecast

    outputs = tmp_path / "outputs"
    monkeypatch.setenv("TRANSITCAST_MLFLOW_DIR", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(data_dir=small_world_dir, outputs_dir=outputs)
    tables, oracle = simulate_demand(
        DemandConfig(n_skus=4), dt.date(2023, 1, 2), dt.date(2024, 12, 29), np.random.default_rng(5)
    )
    (small_world_dir / "validated").mkdir(parents=True)
    (small_world_dir / "raw" / "oracle").mkdir(parents=True)
    for name in ("warehouse_sales", "skus", "warehouses"):
        tables[name].write_parquet(small_world_dir / "validated" / f"{name}.parquet")
    oracle["demand_weekly"].write_parquet(small_world_dir / "raw" / "oracle" / "demand_weekly.parquet")
    config = DemandTaskConfig(
        lgbm=LGBMConfig(num_boost_round=25, early_stopping_rounds=10, num_threads=1),
        train_weeks=40,
        calib_origins=4,
    )
    result = train_demand(config, settings=settings)
    summary = result.summary
    assert {"lgbm", "seasonal_naive", "moving_average", "oracle"} <= set(summary["model"])
    assert result.decision is not None and result.decision.promoted, "the first model becomes champion"
    assert (tmp_path / "mlruns" / "mlflow.db").exists()  # TRANSITCAST_MLFLOW_DIR still decides
    assert result.model_dir == outputs / "models" / "demand"
    metrics = pl.read_parquet(result.metrics_path)
    assert metrics["cutoff"].n_unique() == 6
    assert {"overall", "warehouse_id", "volume_class"} == set(metrics["slice"])

    weekly = weekly_forecast("2024-W45", settings=settings, n_paths=20)
    out = weekly.files.folder
    assert out == outputs / "forecasts" / "demand" / "2024-W45"
    assert weekly.week == "2024-W45" and weekly.cutoff == dt.date(2024, 11, 4)
    forecast = pl.read_parquet(out / "forecast.parquet")
    assert forecast.schema == pl.Schema(FORECAST_SCHEMA)
    assert forecast["cutoff_date"].unique().to_list() == [dt.date(2024, 11, 4)]
    sold = tables["warehouse_sales"].filter(pl.col("date") < dt.date(2024, 11, 4))
    assert forecast.height == sold.select("warehouse_id", "sku_id").n_unique() * 16
    paths = pl.read_parquet(out / "paths.parquet")
    assert paths.height == forecast.height * 20
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["n_paths"] == 20 and meta["cutoff_date"] == "2024-11-04"
    assert meta["quantiles"] == [0.5, 0.8, 0.9, 0.95]
    assert (out / "fan_chart.png").stat().st_size > 0

    latest = weekly_forecast(settings=settings, n_paths=5)
    assert latest.week == "2025-W01"  # the week after the last sales day (Sunday 2024-12-29)


@pytest.mark.slow
def test_tune_demand_writes_best_params_that_train_demand_reads(tmp_path: Path) -> None:
    from features.sources.simulator.demand import DemandConfig, simulate_demand
    from models.demand_tasks import DemandTaskConfig
    from models.lgbm import LGBMConfig
    from pipelines.config import Settings
    from pipelines.flows.demand import _tuned_config, tune_demand

    data = tmp_path / "data"
    (data / "validated").mkdir(parents=True)
    tables, _ = simulate_demand(
        DemandConfig(n_skus=4), dt.date(2023, 1, 2), dt.date(2024, 12, 29), np.random.default_rng(2)
    )
    for name in ("warehouse_sales", "skus", "warehouses"):
        tables[name].write_parquet(data / "validated" / f"{name}.parquet")
    config = DemandTaskConfig(lgbm=LGBMConfig(num_threads=1), train_weeks=40, calib_origins=4)
    settings = Settings(data_dir=data, outputs_dir=tmp_path / "outputs")
    study = tune_demand(2, 2, 120, config=config, settings=settings)
    assert len(study.trials) == 2
    best = json.loads((tmp_path / "outputs" / "tuning" / "demand" / "demand.json").read_text())
    assert best
    tuned = _tuned_config(config, tmp_path / "outputs" / "tuning" / "demand")
    assert tuned.lgbm.params["learning_rate"] == study.best_params["learning_rate"]
