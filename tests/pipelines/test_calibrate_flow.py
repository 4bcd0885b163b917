"""Prefect flow smoke test: calibrate-restock on a tiny hand-made world writes a calibration plan can read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.flows.calibrate import RestockCalibrationConfig, calibration_windows
from serving.decisions.restock import RestockConfig
from tests.serving.decisions.test_restock_replay import START, flat_forecaster, tiny_world


def test_calibration_windows_end_on_the_monday_after_the_last_sale() -> None:
    config = RestockCalibrationConfig(n_windows=2, weeks=4, warmup=1)
    windows = calibration_windows(dt.date(2025, 3, 29), config)  # a Saturday
    assert [w.start for w in windows] == [dt.date(2025, 2, 3), dt.date(2025, 3, 3)]
    assert windows[-1].label == "2025-03-03 + 4 wk"
    with pytest.raises(ValueError, match="must be a Monday"):
        calibration_windows(dt.date(2025, 3, 29), config.model_copy(update={"end": dt.date(2025, 3, 30)}))


@pytest.mark.flow
def test_calibrate_restock_flow_writes_a_calibration_plan_reads(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.flows.calibrate as calibrate

    data = tmp_path / "data"
    (data / "validated").mkdir(parents=True)
    for name, frame in tiny_world().items():
        frame.write_parquet(data / "validated" / f"{name}.parquet")
    monkeypatch.setattr(calibrate, "fit_forecaster", lambda tables, start: flat_forecaster())
    config = RestockCalibrationConfig(
        n_windows=1,
        weeks=4,
        warmup=1,
        n_series=10,
        n_paths=30,
        levels=(0.05, 0.5, 0.95),
        modes=("sea", "air"),
    )
    settings = Settings(data_dir=data, outputs_dir=tmp_path / "out")
    result = calibrate.calibrate_restock(config, settings=settings)
    assert result.path == tmp_path / "out" / "calibration" / "restock.json"
    raw = json.loads(result.path.read_text())
    assert raw["windows"] == [f"{START} + 4 wk"] and raw["levels"] == [0.05, 0.5, 0.95]
    assert "data_version" in raw and set(raw["realised_csl"]) == {"slow", "medium", "fast"}
    plan_config = RestockConfig.from_json(result.path, budget_usd=100.0)
    assert plan_config.quantile_map == result.calibration.quantile_map and plan_config.budget_usd == 100.0
    assert "fast" in plan_config.quantile_map


@pytest.mark.flow
def test_calibrate_restock_without_data_says_what_to_run(prefect_harness: None, tmp_path: Path) -> None:
    from pipelines.flows.calibrate import calibrate_restock

    with pytest.raises(FileNotFoundError, match="transitcast ingest"):
        calibrate_restock(settings=Settings(data_dir=tmp_path / "none", outputs_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # nothing written on failure
