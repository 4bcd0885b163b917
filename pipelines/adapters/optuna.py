"""Stage: wiring. Optuna studies: seeded sampler, pruning, trial and time budget, SQLite storage.

Search spaces and objectives live in `models.tuning` (pure); this module owns the study and where the
best parameters go: `outputs/tuning/<task>.json`, which the next training run of that task reads
(`load_best_params`), and the MLflow run of the study.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["StudyConfig", "load_best_params", "run_study", "save_best_params"]

log = logging.getLogger(__name__)

DEFAULT_DIR = Path("outputs/tuning")


class StudyConfig(BaseModel):
    """Budget and reproducibility of one study."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_trials: int = Field(default=20, ge=1)
    timeout_seconds: float = Field(default=600.0, gt=0)
    seed: int = 42
    startup_trials: int = Field(default=5, ge=0, description="trials before the pruner may prune")
    directory: Path = DEFAULT_DIR


def run_study(
    task: str, objective: Callable[[optuna.Trial], float], config: StudyConfig | None = None
) -> optuna.Study:
    """Minimise `objective` in a study named `task`, stored in `<directory>/optuna.db` (resumable).

    Returns:
        The study; its best parameters are also written by `save_best_params`.
    """
    config = config or StudyConfig()
    config.directory.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=task,
        storage=f"sqlite:///{(config.directory / 'optuna.db').resolve()}",
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=config.startup_trials, n_warmup_steps=0),
    )
    study.optimize(objective, n_trials=config.n_trials, timeout=config.timeout_seconds, gc_after_trial=True)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    log.info(
        "study %s: %d trials (%d complete, %d pruned), best %.5g",
        task,
        len(study.trials),
        len(complete),
        sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        study.best_value if complete else float("nan"),
    )
    if complete:
        save_best_params(task, study.best_params, study.best_value, config.directory)
    return study


def save_best_params(task: str, params: dict[str, Any], value: float, directory: Path = DEFAULT_DIR) -> Path:
    """Write the best parameters of `task` where the next training run finds them."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{task}.json"
    path.write_text(json.dumps({"task": task, "value": value, "params": params}, indent=2, sort_keys=True))
    return path


def load_best_params(task: str, directory: Path = DEFAULT_DIR) -> dict[str, Any] | None:
    """The best parameters saved for `task`, or None when it was never tuned."""
    path = directory / f"{task}.json"
    if not path.exists():
        return None
    return dict(json.loads(path.read_text())["params"])
