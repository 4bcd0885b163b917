"""Stage: models (release). For one shipment task: backtest, gate, and the model that ships.

Reads and writes nothing: a task frame in, a `TaskRelease` out (the windows, the backtest table, the gate's
choice and the fitted model to ship). The pipeline flow (`pipelines.flows.train_shipments`) only saves,
logs and registers what this returns; benchmarks call it directly to measure exactly what `train` ships.

Steps: windows from the data (`models.shipment_tasks.task_windows`), the rolling-origin backtest of the
model and every baseline (`backtest_task`), its table (`models.evaluation`), the gate's choice among them
(`models.promotion.select_system`), then the fit at "now" by the same code path as each fold
(`fit_task`), from which the chosen system ships. When every booster of the model fitted at "now" is
degenerate (it adds nothing to its baseline), its calibrated baseline ships the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

import polars as pl

from models.evaluation import BacktestSummary, evaluate_task, summarize_backtest, systems_of
from models.lgbm import LGBMModel
from models.promotion import CANDIDATE, SystemChoice, baseline_system, select_system
from models.protocol import CutoffFit, calibrated_name
from models.shipment_tasks import (
    ShipmentModelsConfig,
    TaskFrame,
    backtest_task,
    fit_task,
    fold_predictions,
    keep_systems,
    task_windows,
)
from models.windows import Windows

__all__ = [
    "TaskBacktest",
    "TaskRelease",
    "backtest_systems",
    "baseline_systems",
    "candidate_score",
    "release_task",
]

log = logging.getLogger(__name__)
ORACLE = "oracle"


@dataclass(frozen=True)
class TaskBacktest:
    """A task's backtest: every system on the same folds and rows.

    Attributes:
        windows: the windows used (with the evidence of each choice).
        predictions: the backtest predictions of every system.
        metrics: per fold, slice, system and metric.
        summary: the headline table (folds below the minimum size left out and listed).
    """

    windows: Windows
    predictions: pl.DataFrame
    metrics: pl.DataFrame
    summary: BacktestSummary

    def scores(self, metric: str) -> dict[str, float]:
        """`metric` per system."""
        return self.summary.scores(metric)


def backtest_systems(
    task: TaskFrame,
    config: ShipmentModelsConfig,
    oracle: pl.DataFrame | None = None,
    windows: Windows | None = None,
) -> TaskBacktest:
    """Backtest the model and every baseline of the task and summarise (the first half of `release_task`)."""
    spec = task.spec
    windows = windows or task_windows(task, config)
    preds = backtest_task(task, config, oracle, windows)
    metrics = evaluate_task(preds, spec)
    return TaskBacktest(windows, preds, metrics, summarize_backtest(metrics, config.windows.min_fold_rows))


@dataclass(frozen=True)
class TaskRelease:
    """Everything `train` decides for one task.

    Attributes:
        task: task name.
        backtest: every system on the same folds (windows, predictions, metrics, summary).
        choice: the gate's choice of the system to ship.
        fit: everything fitted at "now".
        model: the model that ships (``model.system`` says which system it is).
    """

    task: str
    backtest: TaskBacktest
    choice: SystemChoice
    fit: CutoffFit
    model: LGBMModel


def baseline_systems(systems: list[str]) -> list[str]:
    """The baseline systems among a backtest's systems (neither the candidate nor the oracle)."""
    return [s for s in systems if s not in (CANDIDATE, ORACLE)]


def _shipped(fit: CutoffFit, choice: SystemChoice, first_baseline: str) -> tuple[LGBMModel, SystemChoice]:
    model = fit.model
    degenerate = model is not None and not model.boosters
    if choice.system == CANDIDATE and (model is None or degenerate):
        fallback = calibrated_name(first_baseline)
        why = (
            "no model could be fitted at now"
            if model is None
            else "every booster fitted at now is degenerate"
        )
        log.warning("%s: %s; its calibrated baseline %s ships", choice.metric, why, fallback)
        reason = f"{why}: the baseline {fallback} ships"
        choice = replace(choice, system=fallback, label=baseline_system(fallback), reason=reason)
    shipped = fit.systems()[choice.system]
    shipped.system = choice.label
    return shipped, choice


def release_task(
    task: TaskFrame,
    config: ShipmentModelsConfig,
    oracle: pl.DataFrame | None = None,
    windows: Windows | None = None,
    *,
    as_of: dt.datetime | None = None,
) -> TaskRelease:
    """Backtest the task, choose what ships with the gate, and fit it at "now" (module docstring).

    "Now" is `windows.as_of`, else `as_of`, else the data's; with an earlier `as_of` this is what `train`
    run on that day would have shipped (labels known then; the folds end before it).
    """
    spec = task.spec
    bt = backtest_systems(task, config, oracle, windows or task_windows(task, config, as_of))
    baselines = baseline_systems(systems_of(bt.predictions, spec.kind, spec.target))
    choice = select_system(
        bt.scores(spec.gate_metric), spec.gate_metric, baselines=baselines, shippable=baselines,
        tolerance=config.gate_tolerance,
    )  # fmt: skip
    log.info("%s: %s", spec.name, choice.reason)
    fit = fit_task(task, config, bt.windows)
    model, choice = _shipped(fit, choice, spec.baselines[0].name)
    return TaskRelease(spec.name, bt, choice, fit, model)


def candidate_score(
    task: TaskFrame, config: ShipmentModelsConfig, windows: Windows, cutoff: dt.datetime
) -> float:
    """The model's gate metric on the fold at `cutoff`, fitted by the protocol (the tuning objective).

    Raises:
        ValueError: when the fold has no test rows or the model could not be fitted.
    """
    spec = task.spec
    fold = fold_predictions(task, config, windows, cutoff, with_baselines=False)
    if fold is None:
        raise ValueError(f"{spec.name}: the fold at {cutoff} has no test rows")
    metrics = evaluate_task(keep_systems(fold, task, None), spec)
    value = summarize_backtest(metrics).value(CANDIDATE, spec.gate_metric)
    if value is None:
        raise ValueError(
            f"{spec.name}: no {spec.gate_metric} for the model at {cutoff} (too few training rows?)"
        )
    return value
