"""The MLflow adapter: runs, model registration from code, and the promotion gate."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipelines.adapters.mlflow import CHALLENGER, CHAMPION, Tracker, TrackingSettings

MODEL_CODE = """
import json, pathlib
import mlflow
from mlflow.pyfunc import PythonModel


class Constant(PythonModel):
    def load_context(self, context):
        meta = pathlib.Path(context.artifacts["model_dir"]) / "meta.json"
        self.k = json.loads(meta.read_text())["k"]

    def predict(self, context, model_input, params=None):
        return model_input.assign(y=float(self.k))


mlflow.models.set_model(Constant())
"""


@pytest.fixture()
def tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tracker:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Tracker(TrackingSettings(mlflow_dir=tmp_path / "mlflow", experiment="test"))


def _log_version(tracker: Tracker, tmp_path: Path, k: float) -> str:
    model_dir = tmp_path / f"model_{k}"
    model_dir.mkdir()
    (model_dir / "meta.json").write_text(json.dumps({"k": k}))
    code = tmp_path / "model_code.py"
    code.write_text(MODEL_CODE)
    x = pl.DataFrame({"x": [1.0]})
    with tracker.run("test-run"):
        return tracker.log_model_dir(
            model_dir, "m", "test-model", x, x.with_columns(pl.lit(k).alias("y")), model_code=code
        )


def test_tracker_run_logs_config_metrics_and_tags(tracker: Tracker) -> None:
    metrics = pl.DataFrame({"model": ["a", "b"], "metric": ["mae", "mae"], "value": [1.0, 2.0]})
    with tracker.run("r", tags={"task": "eta"}) as run_id:
        tracker.log_config({"alpha": 0.5, "nested": {"n": 3}})
        tracker.log_metrics(metrics, "eta_backtest", headline=metrics)
    run = tracker.client.get_run(run_id)
    assert run.data.params["config.nested.n"] == "3"
    assert run.data.metrics["eta_backtest.a.mae"] == 1.0
    assert {"git_sha", "data_version", "lib.polars", "task"} <= set(run.data.tags)
    artifacts = [a.path for a in tracker.client.list_artifacts(run_id, "metrics")]
    assert artifacts == ["metrics/eta_backtest.csv"]


def test_promotion_gate_moves_aliases_only_when_better(tracker: Tracker, tmp_path: Path) -> None:
    v1 = _log_version(tracker, tmp_path, 1.0)
    first = tracker.promote("test-model", v1, "pinball", 2.0, None)
    assert first.promoted and tracker.alias_version("test-model", CHAMPION) == v1

    v2 = _log_version(tracker, tmp_path, 2.0)
    worse = tracker.promote("test-model", v2, "pinball", 2.5, champion_value=2.0)
    assert not worse.promoted
    assert tracker.alias_version("test-model", CHAMPION) == v1
    assert tracker.alias_version("test-model", CHALLENGER) == v2

    v3 = _log_version(tracker, tmp_path, 3.0)
    better = tracker.promote("test-model", v3, "pinball", 1.5, champion_value=2.0, min_improvement=0.1)
    assert better.promoted and tracker.alias_version("test-model", CHAMPION) == v3
    assert tracker.alias_version("test-model", "previous") == v1

    model_dir = tracker.download_model_dir("test-model")
    assert model_dir is not None and json.loads((model_dir / "meta.json").read_text())["k"] == 3.0


def test_promotion_gate_requires_the_margin(tracker: Tracker, tmp_path: Path) -> None:
    v1 = _log_version(tracker, tmp_path, 1.0)
    tracker.promote("test-model", v1, "brier", 0.100, None)
    v2 = _log_version(tracker, tmp_path, 2.0)
    decision = tracker.promote("test-model", v2, "brier", 0.0995, champion_value=0.100, min_improvement=0.01)
    assert not decision.promoted and "not better" in decision.reason


def test_champion_from_another_backtest_is_backtested_again_with_its_own_config(
    tracker: Tracker, tmp_path: Path
) -> None:
    from models.shipment_tasks import ShipmentModelsConfig
    from pipelines.flows.train_shipments import _champion_value

    model_dir = tmp_path / "champ"
    model_dir.mkdir()
    (model_dir / "meta.json").write_text(json.dumps({"k": 1.0}))
    code = tmp_path / "model_code.py"
    code.write_text(MODEL_CODE)
    x = pl.DataFrame({"x": [1.0]})
    champion_config = ShipmentModelsConfig(n_folds=2, horizon_days=14)
    with tracker.run("old"):
        tracker.log_config(champion_config)
        version = tracker.log_model_dir(model_dir, "m", "test-model", x, x, model_code=code)
    tracker.set_version_tags("test-model", version, {"backtest_key": "old-data"})
    tracker.promote("test-model", version, "pinball", 1.0, None)

    seen: list[ShipmentModelsConfig] = []

    def rebacktest(config: ShipmentModelsConfig) -> float:
        seen.append(config)
        return 0.75

    assert _champion_value(tracker, "test-model", "old-data", rebacktest) == 1.0  # same backtest: its record
    assert _champion_value(tracker, "test-model", "new-data", rebacktest) == 0.75  # else: measured again
    assert seen == [champion_config]
