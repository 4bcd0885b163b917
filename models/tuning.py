"""Stage: models (tuning). Optuna search spaces as plain functions and a time-ordered objective factory.

Reads and writes nothing. No study is created here: sampler, pruner and storage belong to `pipelines/`,
which call ``study.optimize(make_objective(...), n_trials=...)``.

A search space is ``(trial) -> params`` returning LightGBM parameters (plus an optional
``num_boost_round``, which `models.lgbm.LGBMModel.fit` accepts in ``params``). `make_objective` scores a
parameter set on rolling-origin folds in time order, reporting the running mean after each fold so that a
pruner can stop a bad trial early.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import optuna

from models.backtest import Fold

__all__ = [
    "SEARCH_SPACES",
    "FitPredictScore",
    "ModelKind",
    "classifier_space",
    "lgbm_space",
    "make_objective",
    "quantile_space",
]

logger = logging.getLogger(__name__)

ModelKind = Literal["regressor", "quantile", "classifier"]
FitPredictScore = Callable[[dict[str, Any], Fold], float]
"""``(params, fold) -> score`` (lower is better): fit on the fold's training rows, score its test rows."""


def lgbm_space(trial: optuna.Trial) -> dict[str, Any]:
    """Shared LightGBM tree and regularisation parameters."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 255, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 500, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        "num_boost_round": trial.suggest_int("num_boost_round", 50, 1000, log=True),
    }


def quantile_space(trial: optuna.Trial) -> dict[str, Any]:
    """Quantile boosters: the shared space with larger leaves (tail quantiles need data per leaf)."""
    params = lgbm_space(trial)
    params["min_data_in_leaf"] = trial.suggest_int("quantile_min_data_in_leaf", 20, 1000, log=True)
    return params


def classifier_space(trial: optuna.Trial) -> dict[str, Any]:
    """Binary boosters: the shared space plus the categorical smoothing of rare levels."""
    params = lgbm_space(trial)
    params["cat_smooth"] = trial.suggest_float("cat_smooth", 1.0, 100.0, log=True)
    return params


SEARCH_SPACES: dict[ModelKind, Callable[[optuna.Trial], dict[str, Any]]] = {
    "regressor": lgbm_space,
    "quantile": quantile_space,
    "classifier": classifier_space,
}


def make_objective(
    fit_predict_score: FitPredictScore,
    folds: Sequence[Fold],
    *,
    space: Callable[[optuna.Trial], dict[str, Any]] = lgbm_space,
) -> Callable[[optuna.Trial], float]:
    """An Optuna objective: mean score over time-ordered folds, pruned between folds.

    Args:
        fit_predict_score: fits with the trial's params on a fold and returns its score (lower is better;
            create the study with ``direction="minimize"``).
        folds: rolling-origin folds; they are evaluated in increasing cutoff order.
        space: search space for the trial's params.

    Returns:
        ``objective(trial) -> mean score``. After fold ``i`` it reports the running mean as step ``i`` and
        raises `optuna.TrialPruned` when the study's pruner says so. A non-finite score fails the trial.

    Raises:
        ValueError: if `folds` is empty or not in strictly increasing cutoff order.
    """
    if not folds:
        raise ValueError("need at least one fold")
    ordered = list(folds)
    cutoffs = [f.cutoff for f in ordered]
    if any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)):  # type: ignore[operator]
        raise ValueError("folds must be in strictly increasing cutoff order (time-ordered folds only)")

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        scores: list[float] = []
        for step, fold in enumerate(ordered):
            score = float(fit_predict_score(dict(params), fold))
            if not math.isfinite(score):
                raise ValueError(f"non-finite score {score} on fold {fold.index}")
            scores.append(score)
            running = sum(scores) / len(scores)
            trial.report(running, step)
            if trial.should_prune():
                logger.info("trial %d pruned after fold %d (running score %.5g)", trial.number, step, running)
                raise optuna.TrialPruned()
        return sum(scores) / len(scores)

    return objective
