"""The Optuna study wiring: seeded, resumable, best parameters saved for the next training run."""

from __future__ import annotations

from pathlib import Path

import optuna

from pipelines.adapters.optuna import StudyConfig, load_best_params, run_study


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    for step in range(3):
        trial.report((x - 1.0) ** 2 + step, step)
    return (x - 1.0) ** 2


def test_run_study_is_seeded_and_saves_best_params(tmp_path: Path) -> None:
    a = run_study("toy", _objective, StudyConfig(n_trials=8, directory=tmp_path / "a"))
    b = run_study("toy", _objective, StudyConfig(n_trials=8, directory=tmp_path / "b"))
    assert a.best_params == b.best_params
    assert load_best_params("toy", tmp_path / "a") == a.best_params
    assert load_best_params("never-tuned", tmp_path / "a") is None


def test_run_study_resumes_from_storage(tmp_path: Path) -> None:
    config = StudyConfig(n_trials=3, directory=tmp_path)
    run_study("toy", _objective, config)
    study = run_study("toy", _objective, config)
    assert len(study.trials) == 6


def test_with_params_layers_over_the_base_and_takes_the_rounds() -> None:
    from models.lgbm import LGBMConfig
    from pipelines.adapters.optuna import with_params

    base = LGBMConfig(params={"learning_rate": 0.1, "num_leaves": 31}, num_boost_round=300)
    params = {"learning_rate": 0.02, "num_boost_round": 120}
    merged = with_params(base, params, early_stopping_rounds=None)
    assert merged.params == {"learning_rate": 0.02, "num_leaves": 31}
    assert (merged.num_boost_round, merged.early_stopping_rounds) == (120, None)
    assert params == {"learning_rate": 0.02, "num_boost_round": 120}  # the caller's dict is untouched
    assert with_params(base, {}).num_boost_round == 300


def test_tuned_lgbm_replays_the_search_space_of_the_best_trial(tmp_path: Path) -> None:
    from models.lgbm import LGBMConfig
    from models.tuning import quantile_space
    from pipelines.adapters.optuna import save_best_params, tuned_lgbm

    base = LGBMConfig(params={"max_bin": 63})
    assert tuned_lgbm(base, "never-tuned", tmp_path, quantile_space) is base
    trial_params = {  # the space's names, as Optuna stores them
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 10,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.7,
        "lambda_l2": 1.0,
        "num_boost_round": 77,
        "quantile_min_data_in_leaf": 40,
    }
    save_best_params("q", trial_params, 0.5, tmp_path)
    tuned = tuned_lgbm(base, "q", tmp_path, quantile_space)
    assert tuned.num_boost_round == 77
    assert tuned.params["min_data_in_leaf"] == 40  # the space maps its own trial name to LightGBM's
    assert tuned.params["bagging_freq"] == 1 and tuned.params["max_bin"] == 63
    assert "quantile_min_data_in_leaf" not in tuned.params
