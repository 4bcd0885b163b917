"""The Predictor from the MLflow registry by alias, and the hot-swap fingerprint following the alias."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from serving.http.holder import source_version
from serving.http.settings import ApiSettings
from serving.online.predictor import Predictor, registry_versions


@pytest.mark.slow  # imports mlflow and logs two model versions (~15 s)
def test_predictor_from_registry_follows_the_champion_alias(
    models_dir: Path, open_rows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.adapters.mlflow import CHAMPION, Tracker, TrackingSettings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    tracker = Tracker(TrackingSettings(mlflow_dir=tmp_path / "mlflow", experiment="serving-test"))
    uri = tracker.settings.tracking_uri
    eta_dir = models_dir / "eta"
    example = pl.DataFrame({"x": [1.0]})
    versions = []
    for _ in range(2):
        with tracker.run("eta"):
            versions.append(
                tracker.log_model_dir(eta_dir, "eta", "transitcast-eta", example, example.rename({"x": "y"}))
            )
    tracker.client.set_registered_model_alias("transitcast-eta", CHAMPION, versions[0])
    settings = ApiSettings(api_keys="k", model_alias=CHAMPION, mlflow_tracking_uri=uri, models_dir=models_dir)
    first = source_version(settings)
    predictor = Predictor.from_registry(CHAMPION, tracking_uri=uri, snapshot_dir=models_dir / "snapshot")
    assert predictor.info.model_version == f"eta:v{versions[0]}"
    local = Predictor.from_dir(models_dir).predict_shipments(open_rows)["eta_days_q50"]
    assert predictor.predict_shipments(open_rows)["eta_days_q50"].to_list() == local.to_list()
    tracker.client.set_registered_model_alias("transitcast-eta", CHAMPION, versions[1])
    assert registry_versions(CHAMPION, tracking_uri=uri) == {"eta": versions[1]}
    assert source_version(settings) != first
