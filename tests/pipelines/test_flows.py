"""Prefect flow smoke tests (one per flow)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from features.sources.simulator import SimulatorConfig
from pipelines.config import Settings


def _small_world() -> SimulatorConfig:
    base = SimulatorConfig(start_date=dt.date(2025, 1, 6), end_date=dt.date(2025, 6, 30), seed=3)
    return base.model_copy(
        update={
            "shipments": base.shipments.model_copy(update={"n_shipments": 2_000}),
            "demand": base.demand.model_copy(update={"n_skus": 20}),
        }
    )


@pytest.mark.flow
def test_ingest_flow_simulates_validates_and_writes(
    prefect_harness: None, small_world_dir: Path, tmp_path: Path
) -> None:
    from pipelines.flows.ingest import ingest_flow

    settings = Settings(data_dir=small_world_dir, outputs_dir=tmp_path / "outputs")
    result = ingest_flow(simulate_world=True, simulator=_small_world(), settings=settings, version=False)
    tables = result.report.tables
    assert tables["shipments"].rows_in == 2_000
    for name, counts in tables.items():
        assert counts.rows_in == counts.valid + counts.quarantined, name
        assert (small_world_dir / "validated" / f"{name}.parquet").exists()
    assert (small_world_dir / "raw" / "oracle").is_dir()
    assert result.data_version is None
    assert pl.read_parquet(small_world_dir / "validated" / "quarantine.parquet").height == sum(
        c.quarantined for c in tables.values()
    )


@pytest.mark.flow
def test_train_shipment_models_flow_backtests_registers_and_gates(
    prefect_harness: None, small_world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.lgbm import load_model
    from models.shipment_tasks import ShipmentModelsConfig
    from models.windows import WindowConfig
    from pipelines.flows.ingest import ingest_flow
    from pipelines.flows.train_shipments import train_shipment_models

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(data_dir=small_world_dir, outputs_dir=tmp_path / "outputs")
    world = _small_world().model_copy(
        update={"shipments": _small_world().shipments.model_copy(update={"n_shipments": 6_000})}
    )
    ingest_flow(simulate_world=True, simulator=world, settings=settings, version=False)
    config = ShipmentModelsConfig(windows=WindowConfig(folds=1, fold_days=21, maturity_days=30))
    results = train_shipment_models(config, ("eta", "delay"), settings=settings)
    assert (tmp_path / "outputs" / "mlflow" / "mlflow.db").exists()  # the catalog's MLflow folder
    for name in ("eta", "delay"):
        summary = results[name].release.backtest.summary.table
        assert {"transitcast", "oracle"} <= set(summary["model"])
        decision = results[name].decision
        assert decision is not None and decision.promoted, "the first version of a model becomes champion"
        assert decision.system == load_model(results[name].model_dir).system  # what ships, visibly
    eta = results["eta"].release.backtest.summary.table.filter(pl.col("metric") == "pinball")
    pinball = dict(zip(eta["model"], eta["value"], strict=True))
    assert pinball["transitcast"] < pinball["contract_days"]
