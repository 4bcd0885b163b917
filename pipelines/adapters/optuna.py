"""Stage: wiring. Optuna studies: seeded sampler, pruning, trial and time budget, SQLite storage.

Search spaces and objectives live in `models.tuning` (pure); this module owns the study, where the best
parameters go (`<directory>/<study>.json`, the directory from `pipelines.catalog.OutputCatalog.tuning`),
which the next training run of that model family reads back (`tuned_lgbm`), and how tuned or trial
parameters are layered over a LightGBM config (`with_params`: the one place that does it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import optuna
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from models.lgbm import LGBMConfig

__all__ = [
    "StudyConfig",
    "best_params_file",
    "load_best_params",
    "run_study",
    "save_best_params",
    "tuned_lgbm",
    "with_params",
]

log = logging.getLogger(__name__)

SearchSpace = Callable[[optuna.Trial], dict[str, Any]]


class StudyConfig(BaseModel):
    """Budget and reproducibility of one study."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_trials: int = Field(default=20, ge=1)
    timeout_seconds: float = Field(default=600.0, gt=0)
    seed: int = 42
    startup_trials: int = Field(default=5, ge=0, description="trials before the pruner may prune")
    directory: Path = Field(description="storage and best parameters (the catalog's tuning folder)")


def run_study(task: str, objective: Callable[[optuna.Trial], float], config: StudyConfig) -> optuna.Study:
    """Minimise `objective` in a study named `task`, stored in `<directory>/optuna.db` (resumable).

    Returns:
        The study; its best parameters are also written by `save_best_params`.
    """
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


def best_params_file(task: str, directory: Path) -> Path:
    """Where the best parameters of study `task` are kept."""
    return directory / f"{task}.json"


def save_best_params(task: str, params: dict[str, Any], value: float, directory: Path) -> Path:
    """Write the best parameters of `task` where the next training run finds them."""
    directory.mkdir(parents=True, exist_ok=True)
    path = best_params_file(task, directory)
    path.write_text(json.dumps({"task": task, "value": value, "params": params}, indent=2, sort_keys=True))
    return path


def load_best_params(task: str, directory: Path) -> dict[str, Any] | None:
    """The best parameters saved for `task`, or None when it was never tuned."""
    path = best_params_file(task, directory)
    if not path.exists():
        return None
    return dict(json.loads(path.read_text())["params"])


def with_params(lgbm: LGBMConfig, params: Mapping[str, Any], **updates: Any) -> LGBMConfig:
    """LightGBM settings with `params` layered over `lgbm.params`; a `num_boost_round` key sets the rounds.

    Args:
        lgbm: the base settings.
        params: LightGBM parameters (a trial's or the tuned ones), possibly with `num_boost_round`.
        updates: other `LGBMConfig` fields to set (e.g. `early_stopping_rounds=None` inside a trial).
    """
    merged = dict(params)
    rounds = int(merged.pop("num_boost_round", lgbm.num_boost_round))
    return lgbm.model_copy(update={"params": {**lgbm.params, **merged}, "num_boost_round": rounds, **updates})


def tuned_lgbm(lgbm: LGBMConfig, task: str, directory: Path, space: SearchSpace) -> LGBMConfig:
    """`lgbm` with the best parameters of study `task` when it was tuned (else `lgbm` unchanged).

    Optuna stores trial parameter names; replaying them through the study's search space gives exactly
    the LightGBM parameters the best trial was fitted with (fixed ones included).
    """
    best = load_best_params(task, directory)
    if not best:
        return lgbm
    log.info("%s: using tuned parameters from %s", task, directory)
    replay = cast(optuna.Trial, optuna.trial.FixedTrial(best))  # FixedTrial answers Trial's suggest_* calls
    return with_params(lgbm, space(replay))
