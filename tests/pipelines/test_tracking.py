"""The MLflow adapter: runs, model registration from code, and the promotion gate."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from models.promotion import SystemChoice, select_system
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


def _log_version(
    tracker: Tracker, tmp_path: Path, k: float, config: dict[str, Any] | None = None, name: str = "test-model"
) -> str:
    model_dir = tmp_path / f"{name}_{k}"
    model_dir.mkdir()
    (model_dir / "meta.json").write_text(json.dumps({"k": k}))
    code = tmp_path / "model_code.py"
    code.write_text(MODEL_CODE)
    x = pl.DataFrame({"x": [1.0]})
    with tracker.run("test-run"):
        if config is not None:
            tracker.log_config(config)
        return tracker.log_model_dir(
            model_dir, "m", name, x, x.with_columns(pl.lit(k).alias("y")), model_code=code
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


def _choice(
    value: float, baseline: float = 9.0, candidate: str = "transitcast", shippable: bool = True
) -> SystemChoice:
    scores = {candidate: value, "naive": baseline}
    return select_system(scores, "pinball", candidate=candidate, baselines=["naive"],
                         shippable=["naive"] if shippable else [])  # fmt: skip


def _never(config: dict[str, Any], system: str) -> float | None:
    raise AssertionError("the champion was measured on this backtest: its record is used")


def test_promotion_gate_moves_aliases_only_when_better(tracker: Tracker, tmp_path: Path) -> None:
    gate = partial(tracker.promote_if_better, "test-model", backtest_key="k", rebacktest=_never)
    v1 = _log_version(tracker, tmp_path, 1.0)
    first = gate(v1, _choice(2.0))
    assert first.promoted and tracker.alias_version("test-model", CHAMPION) == v1

    v2 = _log_version(tracker, tmp_path, 2.0)
    worse = gate(v2, _choice(2.5))
    assert not worse.promoted and worse.champion_value == 2.0
    assert tracker.alias_version("test-model", CHAMPION) == v1
    assert tracker.alias_version("test-model", CHALLENGER) == v2

    v3 = _log_version(tracker, tmp_path, 3.0)
    better = gate(v3, _choice(1.5), min_improvement=0.1)
    assert better.promoted and tracker.alias_version("test-model", CHAMPION) == v3
    assert tracker.alias_version("test-model", "previous") == v1
    tags = tracker.client.get_model_version("test-model", v3).tags
    assert tags["system"] == "transitcast" and tags["gate_value"] == "1.5" and tags["backtest_key"] == "k"

    model_dir = tracker.download_model_dir("test-model")
    assert model_dir is not None and json.loads((model_dir / "meta.json").read_text())["k"] == 3.0


def test_promotion_gate_requires_the_margin(tracker: Tracker, tmp_path: Path) -> None:
    gate = partial(tracker.promote_if_better, "test-model", backtest_key="k", rebacktest=_never)
    gate(_log_version(tracker, tmp_path, 1.0), _choice(0.100))
    decision = gate(_log_version(tracker, tmp_path, 2.0), _choice(0.0995), min_improvement=0.01)
    assert not decision.promoted and "not better" in decision.reason


def test_a_baseline_that_ships_is_registered_visibly(tracker: Tracker, tmp_path: Path) -> None:
    choice = _choice(value=1.2, baseline=1.0)
    decision = tracker.promote_if_better(
        "test-model", _log_version(tracker, tmp_path, 1.0), choice, backtest_key="k", rebacktest=_never
    )
    assert decision.promoted and decision.system == "baseline:naive"
    tags = tracker.client.get_model_version("test-model", decision.version).tags
    assert tags["system"] == "baseline:naive" and "does not beat naive" in tags["gate_reason"]


def test_champion_from_another_backtest_is_backtested_again_with_its_own_config(
    tracker: Tracker, tmp_path: Path
) -> None:
    from models.shipment_tasks import ShipmentModelsConfig
    from models.windows import WindowConfig

    champion_config = ShipmentModelsConfig(windows=WindowConfig(folds=2, fold_days=14))
    version = _log_version(tracker, tmp_path, 1.0, config=champion_config.model_dump(mode="json"))
    choice = _choice(1.0, baseline=0.9)  # the first version: a baseline ships in its place
    tracker.promote_if_better("test-model", version, choice, backtest_key="old-data", rebacktest=_never)
    seen: list[tuple[ShipmentModelsConfig, str]] = []

    def rebacktest(config: dict[str, Any], system: str) -> float | None:
        seen.append((ShipmentModelsConfig.model_validate(config), system))
        return 0.95

    challenger = _log_version(tracker, tmp_path, 2.0)
    same = tracker.promote_if_better("test-model", challenger, _choice(0.92), backtest_key="old-data",
                                     rebacktest=rebacktest)  # fmt: skip
    assert same.champion_value == 0.9 and not seen  # same backtest: its record
    other = tracker.promote_if_better("test-model", challenger, _choice(0.92), backtest_key="new-data",
                                      rebacktest=rebacktest)  # fmt: skip
    assert other.champion_value == 0.95 and other.promoted  # re-measured here: its config, its system
    assert seen == [(champion_config, "baseline:naive")]


def test_demand_gate_never_replaces_a_champion_with_a_model_that_loses_to_its_baseline(
    tracker: Tracker, tmp_path: Path
) -> None:
    """The demand path: no baseline can ship in its place, so a losing model is flagged and kept out."""
    from models.demand_tasks import DemandTaskConfig

    config = DemandTaskConfig().model_dump(mode="json")
    gate = partial(tracker.promote_if_better, "test-demand", backtest_key="k2")
    lgbm = partial(_choice, baseline=1.0, candidate="lgbm", shippable=False)
    first = gate(_log_version(tracker, tmp_path, 1.0, config=config, name="test-demand"), lgbm(1.2),
                 rebacktest=_never)  # fmt: skip
    assert first.promoted and "warning" in first.reason and first.system == "lgbm"
    measured: list[DemandTaskConfig] = []

    def rebacktest(champion: dict[str, Any], system: str) -> float | None:
        measured.append(DemandTaskConfig.model_validate(champion))
        assert system == "lgbm"
        return 1.3

    losing = gate(_log_version(tracker, tmp_path, 2.0, name="test-demand"), lgbm(1.1), rebacktest=_never)
    assert not losing.promoted and "champion stays" in losing.reason
    winning = tracker.promote_if_better(
        "test-demand", _log_version(tracker, tmp_path, 3.0, name="test-demand"),
        lgbm(0.9), backtest_key="k3", rebacktest=rebacktest,
    )  # fmt: skip
    assert winning.promoted and winning.champion_value == 1.3 and measured == [DemandTaskConfig()]
