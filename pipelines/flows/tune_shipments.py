"""Stage: orchestration. Tune one shipment model with Optuna on time-ordered folds.

Wires `models.tuning` (search space, objective factory) to the task frames of `models.shipment_tasks`
and the study of `pipelines.adapters.optuna`; the best parameters land in the catalog's
`tuning/shipments/shipments-<task>.json`, which `train-shipment-models` reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import optuna
import polars as pl

from models.backtest import Fold
from models.metrics import brier, pinball
from models.shipment_tasks import TASKS, ShipmentModelsConfig, fit_rows, prepare_task_frames, task_folds
from models.tuning import SEARCH_SPACES, make_objective
from pipelines.adapters.optuna import StudyConfig, run_study, with_params
from pipelines.config import Settings
from pipelines.flows._tables import load_tables

__all__ = ["tune_shipment_task"]


def tune_shipment_task(
    task: str, folds: int = 2, study: StudyConfig | None = None, settings: Settings | None = None
) -> optuna.Study:
    """Run an Optuna study for one shipment task; lower pinball (quantiles) or Brier (probabilities)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    catalog = (settings or Settings()).catalog
    base = ShipmentModelsConfig(n_folds=folds)
    frame = prepare_task_frames(load_tables(catalog.data.validated), base, (task,))[task]
    spec = frame.spec

    def score(params: dict[str, Any], fold: Fold) -> float:
        config = base.model_copy(update={"lgbm": with_params(base.lgbm, params, early_stopping_rounds=None)})
        maturity = dt.timedelta(days=config.maturity_days)
        train, test = fold.split(frame.frame, spec.time_col, spec.observed_col, maturity)
        model = fit_rows(frame, train, config)
        preds = test.hstack(model.predict(test)).filter(pl.col(spec.target).is_not_null())
        if spec.kind == "quantile":
            renamed = preds.rename({f"{spec.output}_q{q}": f"m_q{q}" for q in (50, 80, 95)})
            result = pinball(renamed, ["m"], spec.target, None)
            return float(result.filter(pl.col("metric") == "pinball")["value"][0])
        renamed = preds.rename({spec.output: "m"}).with_columns(pl.col(spec.target).cast(pl.Float64))
        return float(brier(renamed, ["m"], spec.target, None)["value"][0])

    kind = "quantile" if spec.kind == "quantile" else "classifier"
    objective = make_objective(score, task_folds(frame, base), space=SEARCH_SPACES[kind])
    directory = catalog.outputs.tuning("shipments")
    return run_study(f"shipments-{task}", objective, study or StudyConfig(directory=directory))
