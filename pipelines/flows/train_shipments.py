"""Stage: orchestration. The `train-shipment-models` flow: backtest, fit, track, register, gate.

Thin wiring over `models.shipment_tasks` (pure) and the MLflow adapter (`pipelines.adapters.mlflow`). For each
task: rolling-origin backtest next to the baselines (and the simulator's oracle when `data/raw/oracle`
exists), metrics per fold and slice logged to MLflow with a reliability or coverage figure and feature
importance, the final model fitted on everything observed, saved as a model directory, logged and
registered, then the promotion gate (see `pipelines.adapters.mlflow`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task

from models.backtest import backtest_summary
from models.lgbm import LGBMModel
from models.shipment_tasks import (
    TASKS,
    ShipmentModelsConfig,
    TaskFrame,
    backtest_task,
    evaluate_task,
    fit_task,
    prepare_task_frames,
    systems_of,
    task_folds,
)
from models.tuning import SEARCH_SPACES
from pipelines.adapters.dvc import current_data_version
from pipelines.adapters.mlflow import Tracker
from pipelines.adapters.optuna import tuned_lgbm
from pipelines.config import Settings
from pipelines.flows._tables import load_oracle, load_tables
from serving.online.snapshot import SNAPSHOT_DIR, build_snapshot, write_snapshot
from serving.reports.plots import coverage_figure, reliability_figure

__all__ = [
    "backtest_summary",
    "load_oracle",
    "load_tables",
    "train_shipment_models",
    "write_feature_snapshot",
]

log = logging.getLogger(__name__)


def _with_tuned_params(config: ShipmentModelsConfig, name: str, tuning_dir: Path) -> ShipmentModelsConfig:
    kind = "quantile" if TASKS[name].kind == "quantile" else "classifier"
    lgbm = tuned_lgbm(config.lgbm, f"shipments-{name}", tuning_dir, SEARCH_SPACES[kind])
    return config.model_copy(update={"lgbm": lgbm})


def _backtest_key(frame: TaskFrame, config: ShipmentModelsConfig) -> str:
    folds = [(str(f.cutoff), str(f.test_end)) for f in task_folds(frame, config)]
    version = current_data_version()
    raw = json.dumps(
        {"data": version.md5 if version else "unversioned", "folds": folds, "rows": frame.frame.height}
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
    return pl.DataFrame(rows).sort("booster", "gain", descending=[False, True])


def write_feature_snapshot(
    tables: dict[str, pl.DataFrame], config: ShipmentModelsConfig, models_dir: Path
) -> Path:
    """Write the feature snapshot the Predictor reads (`serving.online.snapshot`) into `models_dir/snapshot/`."""
    version = current_data_version()
    snapshot = build_snapshot(
        tables,
        booking=config.booking,
        milestone=config.milestone,
        data_version=version.md5 if version else None,
    )
    return write_snapshot(snapshot, models_dir / SNAPSHOT_DIR)


@task(name="backtest-task")
def _backtest(frame: TaskFrame, config: ShipmentModelsConfig, oracle: pl.DataFrame | None) -> pl.DataFrame:
    return backtest_task(frame, config, oracle)


@task(name="fit-task")
def _fit(frame: TaskFrame, config: ShipmentModelsConfig) -> LGBMModel:
    return fit_task(frame, config)


def _champion_value(
    tracker: Tracker,
    registered: str,
    key: str,
    rebacktest: Callable[[ShipmentModelsConfig], float],
) -> float | None:
    """The champion's gate metric on THIS backtest: its recorded value when it was measured on the same
    data and folds, otherwise its logged config backtested again here, side by side with the challenger."""
    version = tracker.alias_version(registered, "champion")
    if version is None:
        return None
    tags = tracker.client.get_model_version(registered, version).tags
    if tags.get("backtest_key") == key and "gate_value" in tags:
        return float(tags["gate_value"])
    log.info(
        "%s: champion v%s was measured on other data or folds; backtesting its config here",
        registered,
        version,
    )
    return rebacktest(ShipmentModelsConfig.model_validate(tracker.version_config(registered, version)))


@flow(name="train-shipment-models")
def train_shipment_models(
    config: ShipmentModelsConfig | None = None,
    tasks: tuple[str, ...] = tuple(TASKS),
    settings: Settings | None = None,
    track: bool = True,
    min_improvement: float = 0.0,
) -> dict[str, Any]:
    """Backtest, fit, log and register every shipment model.

    Returns:
        Per task: the backtest summary rows, the model directory and the promotion decision.
    """
    settings = settings or Settings()
    catalog = settings.catalog
    config = config or ShipmentModelsConfig()
    tables = load_tables(catalog.data.validated)
    oracle = load_oracle(catalog.data.raw)
    frames = prepare_task_frames(tables, config, tasks)
    tracker = Tracker(settings.tracking) if track else None
    results: dict[str, Any] = {}
    models_dir = catalog.outputs.models
    snapshot_dir = write_feature_snapshot(tables, config, models_dir)
    for name, frame in frames.items():
        task_config = _with_tuned_params(config, name, catalog.outputs.tuning("shipments"))
        preds = _backtest(frame, task_config, oracle)
        metrics = evaluate_task(preds, frame.spec)
        summary = backtest_summary(metrics)
        model = _fit(frame, task_config)
        model_dir = model.save(models_dir / name)
        results[name] = {"summary": summary, "model_dir": str(model_dir), "decision": None}
        gate = summary.filter(
            (pl.col("model") == "transitcast") & (pl.col("metric") == frame.spec.gate_metric)
        )
        if tracker is None or gate.is_empty():
            continue
        registered = f"transitcast-{name}"
        with tracker.run(f"train-{name}", tags={"task": name, "flow": "train-shipment-models"}):
            tracker.log_config(task_config)
            tracker.log_metrics(metrics, f"{name}_backtest", headline=summary)
            systems = systems_of(preds, frame.spec)
            fig = (
                reliability_figure(preds, systems, frame.spec.target)
                if frame.spec.kind == "classifier"
                else coverage_figure(metrics, f"{name}: coverage")
            )
            tracker.log_figure(fig, f"figures/{name}_calibration.png")
            if name == "eta":  # the Predictor reads the snapshot of the eta version's run
                # Tracker has no public directory logger yet; its mlflow module is the adapter's own.
                tracker._mlflow.log_artifacts(str(snapshot_dir), artifact_path=SNAPSHOT_DIR)
            tracker.log_frame(_importance(model), f"importance/{name}.csv")
            example = frame.frame.select(frame.features.names).head(5)
            version = tracker.log_model_dir(model_dir, name, registered, example, model.predict(example))
            key = _backtest_key(frame, task_config)
            tracker.set_version_tags(registered, version, {"backtest_key": key})

            def rebacktest(champion: ShipmentModelsConfig, name: str = name) -> float:
                same = champion.booking == config.booking and champion.milestone == config.milestone
                task_frame = frames[name] if same else prepare_task_frames(tables, champion, (name,))[name]
                scores = backtest_summary(
                    evaluate_task(backtest_task(task_frame, champion, oracle), task_frame.spec)
                )
                row = scores.filter(
                    (pl.col("model") == "transitcast") & (pl.col("metric") == task_frame.spec.gate_metric)
                )
                return float(row["value"][0])

            champion_value = _champion_value(tracker, registered, key, rebacktest)
            decision = tracker.promote(
                registered, version, frame.spec.gate_metric, float(gate["value"][0]),
                champion_value, min_improvement=min_improvement,
            )  # fmt: skip
            results[name]["decision"] = asdict(decision)
    return results
