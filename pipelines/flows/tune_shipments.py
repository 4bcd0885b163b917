"""Stage: orchestration. Tune one shipment model with Optuna on the backtest's own folds.

Wires `models.tuning` (search space, objective factory) to `models.shipment_release.candidate_score` (the
model fitted at a fold's cutoff by the same protocol as `train`, scored on the fold's test rows) and the
study of `pipelines.adapters.optuna`; the best parameters land in the tuning folder
(``shipments-<task>.json``), which `train-shipment-models` reads.
"""

from __future__ import annotations

from typing import Any

import optuna

from models.backtest import Fold
from models.shipment_release import candidate_score
from models.shipment_tasks import TASKS, ShipmentModelsConfig, prepare_task_frames, task_cutoffs, task_windows
from models.tuning import SEARCH_SPACES, make_objective
from models.windows import DAY
from pipelines.adapters.optuna import StudyConfig, run_study
from pipelines.config import Settings
from pipelines.flows.train_shipments import load_tables

__all__ = ["tune_shipment_task"]


def tune_shipment_task(
    task: str, config: ShipmentModelsConfig | None = None, study: StudyConfig | None = None
) -> optuna.Study:
    """Run an Optuna study for one shipment task; lower pinball (quantiles) or Brier (probabilities).

    Args:
        task: the task name.
        config: model settings and windows (``windows.folds`` sets the folds per trial).
        study: trial budget and storage.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    settings = Settings()
    base = config or ShipmentModelsConfig()
    frame = prepare_task_frames(load_tables(settings.validated_dir), base, (task,))[task]
    windows = task_windows(frame, base)
    folds = [
        Fold(index=i, cutoff=c, train_end=c, test_end=c + windows.fold_days * DAY)
        for i, c in enumerate(task_cutoffs(windows))
    ]

    def score(params: dict[str, Any], fold: Fold) -> float:
        rounds = int(params.pop("num_boost_round", base.lgbm.num_boost_round))
        lgbm = base.lgbm.model_copy(update={"params": params, "num_boost_round": rounds})
        return candidate_score(frame, base.model_copy(update={"lgbm": lgbm}), windows, fold.cutoff)

    kind = "quantile" if frame.spec.kind == "quantile" else "classifier"
    objective = make_objective(score, folds, space=SEARCH_SPACES[kind])
    return run_study(
        f"shipments-{task}", objective, study or StudyConfig(directory=settings.outputs_dir / "tuning")
    )
