"""Stage: orchestration. The `train-shipment-models` flow: backtest, gate, fit, save, track, register.

Thin wiring over `models.shipment_release.release_task` (pure: windows from the data, the backtest of the
model and every baseline on the same folds, the gate's choice, the fit at "now" by the same code path as the
folds) and the MLflow adapter (`pipelines.adapters.mlflow`). Per task it writes the model directory that
ships (the model, or the baseline that ships in its place: ``system`` in its metadata) at the catalog's
``models/<task>/`` and the backtest metrics at ``backtest/<task>.parquet``, logs the windows, the metrics per
fold and slice, a reliability or coverage figure and the feature importance, registers the version and
applies the promotion gate (`Tracker.promote_if_better`), re-measuring the champion on the same folds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task

from features.booking_config import resolve_booking_config
from models.lgbm import LGBMModel
from models.promotion import CANDIDATE, backtest_system
from models.shipment_release import TaskRelease, backtest_systems, release_task
from models.shipment_tasks import TASKS, ShipmentModelsConfig, TaskFrame, prepare_task_frames, task_cutoffs
from models.tuning import SEARCH_SPACES, ModelKind
from models.windows import Windows
from pipelines.adapters.dvc import current_data_version
from pipelines.adapters.mlflow import PromotionDecision, Rebacktest, Tracker
from pipelines.adapters.optuna import tuned_lgbm
from pipelines.config import Settings
from pipelines.flows._tables import load_oracle, load_tables
from serving.online.snapshot import SNAPSHOT_DIR, build_snapshot, write_snapshot
from serving.reports.plots import coverage_figure, reliability_figure

__all__ = [
    "ShipmentTaskResult",
    "load_oracle",
    "load_tables",
    "train_shipment_models",
    "write_feature_snapshot",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShipmentTaskResult:
    """What `train-shipment-models` did for one task.

    Attributes:
        task: task name.
        release: windows, backtest table, the gate's choice and the model that ships.
        model_dir: where the shipped model was saved.
        decision: the promotion decision (None without tracking).
    """

    task: str
    release: TaskRelease
    model_dir: Path
    decision: PromotionDecision | None


def _with_tuned_params(config: ShipmentModelsConfig, name: str, tuning_dir: Path) -> ShipmentModelsConfig:
    kind: ModelKind = "quantile" if TASKS[name].kind == "quantile" else "classifier"
    lgbm = tuned_lgbm(config.lgbm, f"shipments-{name}", tuning_dir, SEARCH_SPACES[kind])
    return config.model_copy(update={"lgbm": lgbm})


def _backtest_key(frame: TaskFrame, windows: Windows, dvc_file: Path) -> str:
    folds = [str(c) for c in task_cutoffs(windows)]
    version = current_data_version(dvc_file)
    raw = json.dumps(
        {
            "data": version.md5 if version else "unversioned",
            "folds": folds,
            "fold_days": windows.fold_days,
            "rows": frame.frame.height,
        }
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _importance(model: LGBMModel) -> pl.DataFrame:
    rows = []
    for name, booster in model.boosters.items():
        gains = booster.feature_importance(importance_type="gain")
        rows += [
            {"booster": name, "feature": f, "gain": float(g)}
            for f, g in zip(booster.feature_name(), gains, strict=True)
        ]
    schema = {"booster": pl.String, "feature": pl.String, "gain": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("booster", "gain", descending=[False, True])


def write_feature_snapshot(
    tables: dict[str, pl.DataFrame],
    config: ShipmentModelsConfig,
    models_dir: Path,
    dvc_file: Path | None = None,
) -> Path:
    """Write the feature snapshot the Predictor reads (`serving.online.snapshot`) to `models_dir/snapshot`."""
    version = current_data_version(dvc_file)
    snapshot = build_snapshot(
        tables,
        booking=resolve_booking_config(config.booking, tables["shipments"].columns),
        milestone=config.milestone,
        data_version=version.md5 if version else None,
    )
    return write_snapshot(snapshot, models_dir / SNAPSHOT_DIR)


@task(name="release-task")
def _release(frame: TaskFrame, config: ShipmentModelsConfig, oracle: pl.DataFrame | None) -> TaskRelease:
    return release_task(frame, config, oracle)


def _rebacktest(
    tables: dict[str, pl.DataFrame],
    frames: dict[str, TaskFrame],
    name: str,
    config: ShipmentModelsConfig,
    release: TaskRelease,
    oracle: pl.DataFrame | None,
) -> Rebacktest:
    """Re-measure a champion (its logged config, its shipped system) on this run's folds and rows."""

    def measure(champion_config: dict[str, Any], system: str) -> float | None:
        champion = ShipmentModelsConfig.model_validate(champion_config)
        same = champion.booking == config.booking and champion.milestone == config.milestone
        frame = frames[name] if same else prepare_task_frames(tables, champion, (name,))[name]
        scores = backtest_systems(frame, champion, oracle, release.backtest.windows).scores(
            frame.spec.gate_metric
        )
        return scores.get(backtest_system(system))

    return measure


@dataclass(frozen=True)
class _Gate:
    """How one task's version is gated: this backtest's key, the champion's re-measure, the margin."""

    backtest_key: str
    rebacktest: Rebacktest
    min_improvement: float


def _track(
    tracker: Tracker,
    result: ShipmentTaskResult,
    frame: TaskFrame,
    config: ShipmentModelsConfig,
    snapshot_dir: Path,
    gate: _Gate,
) -> PromotionDecision:
    name, release, spec = result.task, result.release, frame.spec
    bt = release.backtest
    registered = f"transitcast-{name}"
    tags = {"task": name, "flow": "train-shipment-models", "system": release.choice.label}
    with tracker.run(f"train-{name}", tags=tags):
        tracker.log_config(config)
        tracker.log_metrics(bt.metrics, f"{name}_backtest", headline=bt.summary.table)
        tracker.log_frame(bt.windows.table(), f"windows/{name}.csv")
        systems = [
            s for s in (CANDIDATE, release.choice.system, "oracle") if s in bt.scores(spec.gate_metric)
        ]
        fig = (
            reliability_figure(bt.predictions, list(dict.fromkeys(systems)), spec.target)
            if spec.kind == "classifier"
            else coverage_figure(bt.metrics, f"{name}: coverage")
        )
        tracker.log_figure(fig, f"figures/{name}_calibration.png")
        if name == "eta":  # the Predictor reads the snapshot of the eta version's run
            tracker.log_dir(snapshot_dir, SNAPSHOT_DIR)
        if release.model.boosters:
            tracker.log_frame(_importance(release.model), f"importance/{name}.csv")
        example = frame.frame.select(frame.features.names).head(5)
        model = release.model
        version = tracker.log_model_dir(result.model_dir, name, registered, example, model.predict(example))
        return tracker.promote_if_better(
            registered, version, release.choice, backtest_key=gate.backtest_key, rebacktest=gate.rebacktest,
            min_improvement=gate.min_improvement,
        )  # fmt: skip


@flow(name="train-shipment-models")
def train_shipment_models(
    config: ShipmentModelsConfig | None = None,
    tasks: tuple[str, ...] = tuple(TASKS),
    settings: Settings | None = None,
    track: bool = True,
    min_improvement: float = 0.0,
) -> dict[str, ShipmentTaskResult]:
    """Backtest, gate, fit, save, log and register every shipment model (module docstring).

    Returns:
        Per task: the release (windows, backtest table, gate choice, shipped model), where the shipped
        model was saved and the promotion decision.
    """
    settings = settings or Settings()
    catalog = settings.catalog
    config = config or ShipmentModelsConfig()
    tables = load_tables(catalog.data.validated)
    oracle = load_oracle(catalog.data.raw)
    frames = prepare_task_frames(tables, config, tasks)
    tracker = Tracker(settings.tracking) if track else None
    results: dict[str, ShipmentTaskResult] = {}
    models_dir = catalog.outputs.models
    snapshot_dir = write_feature_snapshot(tables, config, models_dir, catalog.data.dvc_file)
    for name, frame in frames.items():
        task_config = _with_tuned_params(config, name, catalog.outputs.tuning("shipments"))
        release = _release(frame, task_config, oracle)
        model_dir = release.model.save(catalog.outputs.model(name))
        metrics_file = catalog.outputs.backtest_metrics(name)
        metrics_file.parent.mkdir(parents=True, exist_ok=True)
        release.backtest.metrics.write_parquet(metrics_file)
        result = ShipmentTaskResult(name, release, model_dir, None)
        if tracker is not None:
            gate = _Gate(
                _backtest_key(frame, release.backtest.windows, catalog.data.dvc_file),
                _rebacktest(tables, frames, name, task_config, release, oracle),
                min_improvement,
            )
            decision = _track(tracker, result, frame, task_config, snapshot_dir, gate)
            result = ShipmentTaskResult(name, release, model_dir, decision)
        results[name] = result
    return results
