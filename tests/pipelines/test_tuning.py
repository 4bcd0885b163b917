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
