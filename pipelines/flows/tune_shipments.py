"""Stage: orchestration. Tune one shipment model with Optuna on the backtest's own folds.

Wires `models.tuning` (search space, objective factory) to `models.shipment_release.candidate_score` (the
model fitted at a fold's cutoff by the same protocol as `train`, scored on the fold's test rows) and the
study of `pipelines.adapters.optuna`; the best parameters land in the tuning folder
(``shipments-<task>.json``), which `train-shipment-models` reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import optuna

from models.backtest import Fold
from models.shipment_release import candidate_score
from models.shipment_tasks import TASKS, ShipmentModelsConfig, prepare_task_frames, task_cutoffs, task_windows
from models.tuning import SEARCH_SPACES, ModelKind, make_objective
from models.windows import DAY
from pipelines.adapters.optuna import StudyConfig, run_study, with_params
from pipelines.config import Settings
from pipelines.flows._tables import load_tables

__all__ = ["tune_shipment_task"]


def tune_shipment_task(
    task: str,
    config: ShipmentModelsConfig | None = None,
    study: StudyConfig | None = None,
    settings: Settings | None = None,
) -> optuna.Study:
    """Run an Optuna study for one shipment task; lower pinball (quantiles) or Brier (probabilities).

    Args:
        task: the task name.
        config: model settings and windows (``windows.folds`` sets the folds per trial).
        study: trial budget and storage (default: the catalog's shipments tuning folder).
        settings: where the data and outputs are.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    catalog = (settings or Settings()).catalog
    base = config or ShipmentModelsConfig()
    frame = prepare_task_frames(load_tables(catalog.data.validated), base, (task,))[task]
    windows = task_windows(frame, base)
    folds = [
        Fold(index=i, cutoff=c, train_end=c, test_end=c + windows.fold_days * DAY)
        for i, c in enumerate(task_cutoffs(windows))
    ]

    def score(params: dict[str, Any], fold: Fold) -> float:
        config = base.model_copy(update={"lgbm": with_params(base.lgbm, params)})
        cutoff = fold.cutoff
        if not isinstance(cutoff, dt.datetime):  # folds of shipment tasks are datetimes
            raise TypeError(f"fold cutoff {cutoff!r} is not a datetime")
        return candidate_score(frame, config, windows, cutoff)

    kind: ModelKind = "quantile" if frame.spec.kind == "quantile" else "classifier"
    objective = make_objective(score, folds, space=SEARCH_SPACES[kind])
    directory = catalog.outputs.tuning("shipments")
    return run_study(f"shipments-{task}", objective, study or StudyConfig(directory=directory))
