"""The catalog: every artefact path derived once from the roots."""

from __future__ import annotations

from pathlib import Path

from pipelines.catalog import Catalog, ForecastFiles, OutputCatalog
from pipelines.config import Settings


def test_data_layers_under_the_data_root() -> None:
    data = Catalog.under(Path("d"), Path("o")).data
    assert data.table("shipments") == Path("d/validated/shipments.parquet")
    assert data.oracle("demand_weekly") == Path("d/raw/oracle/demand_weekly.parquet")
    assert data.oracle_dir == Path("d/raw/oracle")
    assert (data.quarantine, data.ingest_report) == (
        Path("d/validated/quarantine.parquet"),
        Path("d/validated/ingest_report.json"),
    )
    assert data.dvc_file == Path("d.dvc")


def test_outputs_under_the_outputs_root() -> None:
    out = OutputCatalog(Path("o"))
    assert out.model("eta") == Path("o/models/eta")
    assert out.snapshot == Path("o/models/snapshot")
    assert out.forecast("2025-W49").paths == Path("o/forecasts/demand/2025-W49/paths.parquet")
    assert out.plans("2025-W49") == Path("o/plans/2025-W49")
    assert out.reports("2025-W49") == Path("o/reports/2025-W49")
    assert out.tuning("demand") == Path("o/tuning/demand")
    assert out.backtest_metrics("eta") == Path("o/backtest/eta.parquet")
    assert out.backtest_metrics("eta", Path("x")) == Path("x/eta.parquet")
    assert out.score_file(Path("in/ships.csv")) == Path("o/scores/ships_scores.parquet")
    assert out.mlflow_db == Path("o/mlflow/mlflow.db")
    assert OutputCatalog(Path("o"), Path("m")).mlflow_dir == Path("m")


def test_settings_catalog_and_tracking_share_the_mlflow_folder(monkeypatch) -> None:
    monkeypatch.delenv("TRANSITCAST_MLFLOW_DIR", raising=False)
    settings = Settings(data_dir=Path("d"), outputs_dir=Path("o"))
    assert settings.catalog.outputs.mlflow_dir == settings.tracking.mlflow_dir == Path("o/mlflow")


def test_forecast_files_report_what_is_missing(tmp_path: Path) -> None:
    files = ForecastFiles(tmp_path)
    assert files.missing() == ["forecast.parquet", "paths.parquet"]
    files.forecast.write_text("x")
    assert files.missing() == ["paths.parquet"]


def test_ensure_dirs_creates_the_roots(tmp_path: Path) -> None:
    catalog = Catalog.under(tmp_path / "d", tmp_path / "o")
    catalog.ensure_dirs()
    assert catalog.data.raw.is_dir() and catalog.data.validated.is_dir() and catalog.outputs.root.is_dir()
