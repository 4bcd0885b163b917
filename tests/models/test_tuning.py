"""Optuna search spaces and the time-ordered objective factory."""

from __future__ import annotations

import datetime as dt
from typing import Any

import optuna
import polars as pl
import pytest

from models.backtest import Fold, rolling_origin_folds, split_by_time
from models.lgbm import LGBMConfig
from models.metrics import pinball
from models.quantile import QuantileRegressor
from models.tuning import SEARCH_SPACES, make_objective, quantile_space
from tests.models.conftest import FEATURES

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("kind", sorted(SEARCH_SPACES))
def test_search_spaces_return_lightgbm_params(kind: str) -> None:
    trial = optuna.trial.FixedTrial(
        {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "lambda_l2": 1.0,
            "num_boost_round": 100,
            "quantile_min_data_in_leaf": 50,
            "cat_smooth": 10.0,
        }
    )
    params = SEARCH_SPACES[kind](trial)  # type: ignore[index]
    assert params["learning_rate"] == 0.1 and params["bagging_freq"] == 1
    assert params["num_boost_round"] == 100


def test_objective_runs_three_trials_on_time_ordered_folds(small_shipments: pl.DataFrame) -> None:
    folds = rolling_origin_folds(small_shipments["created_at"], n_folds=2, horizon=dt.timedelta(days=30))
    calls: list[tuple[int, dt.datetime]] = []

    def fit_predict_score(params: dict[str, Any], fold: Fold) -> float:
        params = {**params, "num_boost_round": min(params["num_boost_round"], 30)}
        train, test = fold.split(small_shipments, "created_at", observed_col="delivered_at")
        fit, calib = split_by_time(train, "created_at", 0.2)
        model = QuantileRegressor(FEATURES, config=LGBMConfig(num_threads=1, early_stopping_rounds=None))
        model.fit(fit, "transit_days", params=params).calibrate(calib, "transit_days")
        scored = test.hstack(model.predict(test))
        calls.append((fold.index, fold.cutoff))  # type: ignore[arg-type]
        return (
            pinball(scored, ["eta_days"], "transit_days", cutoff_col=None)
            .filter(metric="pinball")["value"]
            .item()
        )

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(make_objective(fit_predict_score, folds, space=quantile_space), n_trials=3)
    assert len(study.trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(len(t.intermediate_values) == 2 for t in study.trials)
    assert [i for i, _ in calls] == [0, 1] * 3  # folds in time order in every trial
    assert study.best_value > 0


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_objective_reports_and_prunes_after_first_fold() -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    folds = [Fold(i, start + dt.timedelta(days=10 * i), start, start) for i in range(3)]
    seen: list[int] = []

    def score(params: dict[str, Any], fold: Fold) -> float:
        seen.append(fold.index)
        return 1.0

    study = optuna.create_study(pruner=_AlwaysPrune())
    study.optimize(make_objective(score, folds), n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert seen == [0]


def test_objective_refuses_unordered_folds() -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    folds = [Fold(i, start - dt.timedelta(days=i), start, start) for i in range(2)]
    with pytest.raises(ValueError, match="increasing"):
        make_objective(lambda p, f: 0.0, folds)
    with pytest.raises(ValueError):
        make_objective(lambda p, f: 0.0, [])
