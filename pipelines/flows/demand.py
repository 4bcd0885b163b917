"""Stage: orchestration. Prefect flows `train-demand` and `weekly-forecast`, and the demand Optuna study.

Thin wiring over `models.demand_tasks` / `models.demand_eval` / `models.demand` / `models.demand_paths`
(pure). Reads the validated ``warehouse_sales``, ``skus``, ``warehouses`` tables (and the simulator's
``demand_weekly`` oracle when present); writes, at the paths of `pipelines.catalog`:

* the model directory ``models/demand/`` (LightGBM text + ``metadata.json``) with
  ``backtest_metrics.parquet`` / ``backtest_predictions.parquet``;
* the forecast folder ``forecasts/demand/<YYYY-Www>/`` (`ForecastFiles`: ``forecast.parquet``,
  ``paths.parquet``, ``metadata.json``, the output contract in docs/demand-forecast.md, and ``fan_chart.png``,
  the planner report's fan chart of the largest series);
* the Optuna study and best parameters in ``tuning/demand/``;
* an MLflow run with the backtest metrics, a coverage figure and the registered model
  ``transitcast-demand`` (promotion gate on the lgbm scaled pinball loss).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from prefect import flow, task

from features.demand_panel import iso_week_label, iso_week_start
from models.backtest import backtest_summary
from models.demand import DEMAND_QUANTILES, DemandModel, forecast_demand
from models.demand_eval import slice_metrics, truncate_to_cutoff, tuning_cutoffs
from models.demand_paths import sample_paths
from models.demand_tasks import (
    MODEL_NAME,
    DemandTaskConfig,
    demand_backtest,
    fit_demand_model,
    prepare_demand,
)
from models.tuning import lgbm_space
from pipelines.adapters.dvc import current_data_version
from pipelines.adapters.mlflow import PromotionDecision
from pipelines.adapters.optuna import tuned_lgbm, with_params
from pipelines.catalog import ForecastFiles
from pipelines.config import Settings
from pipelines.flows._tables import (
    DEMAND_TABLES,
    load_oracle,
    load_tables,
    week_after_last_sale,
    weekly_history,
)

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure

__all__ = [
    "DEMAND_TABLES",
    "DemandTraining",
    "WeeklyForecast",
    "train_demand",
    "tune_demand",
    "weekly_forecast",
]

log = logging.getLogger(__name__)

REGISTERED_NAME = "transitcast-demand"
GATE_METRIC = "scaled_pinball"
STUDY = "demand"


@dataclass(frozen=True)
class DemandTraining:
    """What `train_demand` produced.

    Attributes:
        summary: backtest metrics averaged over cutoffs (model, metric, value).
        model_dir: the saved model directory.
        metrics_path: per-cutoff, per-slice backtest metrics (Parquet).
        decision: the promotion gate's decision (None when not tracked).
    """

    summary: pl.DataFrame
    model_dir: Path
    metrics_path: Path
    decision: PromotionDecision | None


@dataclass(frozen=True)
class WeeklyForecast:
    """What `weekly_forecast` wrote: the ISO week, its cutoff (Monday) and the forecast folder."""

    week: str
    cutoff: dt.date
    files: ForecastFiles
    n_series: int


def _tuned_config(config: DemandTaskConfig, tuning_dir: Path) -> DemandTaskConfig:
    return config.model_copy(update={"lgbm": tuned_lgbm(config.lgbm, STUDY, tuning_dir, lgbm_space)})


@task(name="demand-backtest")
def _backtest(
    tables: dict[str, pl.DataFrame],
    config: DemandTaskConfig,
    oracle: pl.DataFrame | None,
    prepared: tuple[pl.DataFrame, pl.DataFrame],
) -> pl.DataFrame:
    return demand_backtest(tables, config, oracle=oracle, prepared=prepared)


@task(name="demand-fit")
def _fit(feats: pl.DataFrame, cutoff: dt.date, config: DemandTaskConfig) -> DemandModel:
    return fit_demand_model(feats, cutoff, config)


@flow(name="train-demand")
def train_demand(
    config: DemandTaskConfig | None = None,
    settings: Settings | None = None,
    track: bool = True,
    min_improvement: float = 0.0,
) -> DemandTraining:
    """Backtest the demand model next to its baselines, fit it on everything observed, log and register it.

    Args:
        config: recipe and backtest settings (tuned LightGBM parameters from the catalog's
            ``tuning/demand`` are layered on top when present).
        settings: roots and tracking (default: `Settings()` from the environment).
        track: log to MLflow and apply the promotion gate.
        min_improvement: relative improvement the challenger needs over the champion.
    """
    settings = settings or Settings()
    catalog = settings.catalog
    config = _tuned_config(config or DemandTaskConfig(), catalog.outputs.tuning(STUDY))
    tables = load_tables(catalog.data.validated, DEMAND_TABLES)
    oracle = load_oracle(catalog.data.raw, "demand_weekly")
    prepared = prepare_demand(tables, config)
    panel, feats = prepared
    preds = _backtest(tables, config, oracle, prepared)
    metrics = slice_metrics(preds)
    summary = backtest_summary(metrics)
    last_week = panel.get_column("week_start").max()
    assert isinstance(last_week, dt.date)
    model = _fit(feats, last_week + dt.timedelta(weeks=1), config)
    model_dir = catalog.outputs.model("demand")
    model.save(model_dir)
    metrics.write_parquet(model_dir / "backtest_metrics.parquet")
    preds.write_parquet(model_dir / "backtest_predictions.parquet")
    result = DemandTraining(summary, model_dir, model_dir / "backtest_metrics.parquet", decision=None)
    gate = summary.filter((pl.col("model") == MODEL_NAME) & (pl.col("metric") == GATE_METRIC))
    if not track or gate.is_empty():
        return result
    from pipelines.adapters.mlflow import Tracker
    from serving.reports.plots import coverage_figure

    tracker = Tracker(settings.tracking)
    with tracker.run("train-demand", tags={"task": "demand", "flow": "train-demand"}):
        tracker.log_config(config)
        tracker.log_metrics(metrics, "demand_backtest", headline=summary)
        tracker.log_figure(coverage_figure(metrics, "demand: coverage"), "figures/demand_calibration.png")
        example = feats.filter(pl.col("y").is_not_null()).select(model.features.names).head(5)
        version = tracker.log_model_dir(model_dir, "demand", REGISTERED_NAME, example, model.predict(example))
        # The one promotion gate (models.promotion): vs the baselines and the champion on THIS backtest.
        from models.promotion import select_system

        scores = {r["model"]: r["value"] for r in summary.filter(pl.col("metric") == GATE_METRIC).to_dicts()}
        baselines = [m for m in scores if m not in (MODEL_NAME, "oracle")]
        choice = select_system(scores, GATE_METRIC, candidate=MODEL_NAME, baselines=baselines)
        cutoffs = sorted({str(c) for c in preds.get_column("cutoff").unique().to_list()})
        data = current_data_version(catalog.data.dvc_file)
        key = json.dumps({"data": data.md5 if data else None, "cutoffs": cutoffs, "rows": panel.height})

        def rebacktest(champion_config: dict[str, Any], system: str) -> float | None:
            champion = DemandTaskConfig.model_validate(champion_config)
            rows = backtest_summary(slice_metrics(demand_backtest(tables, champion, oracle=oracle)))
            row = rows.filter((pl.col("model") == system) & (pl.col("metric") == GATE_METRIC))
            return None if row.is_empty() else float(row["value"][0])

        decision = tracker.promote_if_better(
            REGISTERED_NAME, version, choice, backtest_key=hashlib.sha256(key.encode()).hexdigest()[:16],
            rebacktest=rebacktest, min_improvement=min_improvement,
        )  # fmt: skip
    return DemandTraining(summary, model_dir, result.metrics_path, decision)


@flow(name="weekly-forecast")
def weekly_forecast(
    week: str | None = None,
    settings: Settings | None = None,
    model_dir: Path | None = None,
    n_paths: int = 200,
    seed: int = 0,
    chart: bool = True,
) -> WeeklyForecast:
    """Write the weekly demand forecast, sample paths and metadata for one ISO week.

    Args:
        week: first forecast week ``YYYY-Www`` (the cutoff is its Monday; only earlier sales are used).
            None = the week after the last sales date.
        settings: roots (default: `Settings()` from the environment).
        model_dir: model directory (default: the catalog's ``models/demand``, written by `train_demand`).
        n_paths: sample paths per series.
        seed: seed of the sample paths.
        chart: also write ``fan_chart.png`` (history and forecast bands of the 4 largest series).

    Returns:
        The week, its cutoff and the forecast folder (the catalog's ``forecasts/demand/<YYYY-Www>/``).
    """
    catalog = (settings or Settings()).catalog
    path = model_dir or catalog.outputs.model("demand")
    if not (path / "metadata.json").exists():
        raise FileNotFoundError(f"no demand model in {path}: run `transitcast train demand` first")
    model = DemandModel.load(path)
    tables = load_tables(catalog.data.validated, DEMAND_TABLES)
    cutoff = week_after_last_sale(tables["warehouse_sales"]) if week is None else iso_week_start(week)
    label = iso_week_label(cutoff)
    version = current_data_version(catalog.data.dvc_file)
    data_version = version.md5 if version else ""
    model_version = str(model.training_.get("fingerprint", ""))[:19]
    forecast = forecast_demand(tables, model, cutoff, model_version=model_version, data_version=data_version)
    paths = sample_paths(forecast, n_paths=n_paths, seed=seed, rho=model.path_rho)
    files = catalog.outputs.forecast(label)
    files.folder.mkdir(parents=True, exist_ok=True)
    forecast.write_parquet(files.forecast)
    paths.write_parquet(files.paths)
    if chart:
        from serving.reports.plots import planner_fan_figure

        history = weekly_history(tables["warehouse_sales"], cutoff)
        _save_figure(planner_fan_figure(forecast, history, _largest_series(forecast)), files.fan_chart)
    n_series = forecast.select("warehouse_id", "sku_id").n_unique()
    meta = {
        "model_name": REGISTERED_NAME,
        "model_version": model_version,
        "model_dir": str(path),
        "data_version": data_version,
        "forecast_week": label,
        "cutoff_date": cutoff.isoformat(),
        "horizons": model.feature_config.horizons,
        "quantiles": list(DEMAND_QUANTILES),
        "n_paths": n_paths,
        "path_seed": seed,
        "path_rho": model.path_rho,
        "n_series": n_series,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    files.metadata.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("demand forecast %s: %d rows -> %s", label, forecast.height, files.folder)
    return WeeklyForecast(week=label, cutoff=cutoff, files=files, n_series=n_series)


def _largest_series(forecast: pl.DataFrame, n: int = 4) -> pl.DataFrame:
    """The `n` series with the largest expected demand over the horizon (ties by id), for the fan chart."""
    return (
        forecast.group_by("warehouse_id", "sku_id")
        .agg(pl.col("demand_mean").sum())
        .sort("demand_mean", "warehouse_id", "sku_id", descending=[True, False, False])
        .head(n)
        .select("warehouse_id", "sku_id")
    )


def _save_figure(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def tune_demand(
    n_trials: int = 10,
    n_cutoffs: int = 2,
    timeout_seconds: float | None = None,
    *,
    config: DemandTaskConfig | None = None,
    settings: Settings | None = None,
) -> optuna.Study:
    """Optuna study ``demand`` over the shared LightGBM space: mean lgbm scaled pinball over `n_cutoffs`
    rolling cutoffs that end before the first reported backtest cutoff (`models.demand_eval.tuning_cutoffs`;
    time-ordered, pruned between cutoffs). Best parameters land in the catalog's ``tuning/demand/``, which
    `train_demand` reads.
    """
    from models.backtest import Fold
    from models.metrics_scaled import scaled_pinball
    from models.tuning import make_objective
    from pipelines.adapters.optuna import StudyConfig, run_study

    catalog = (settings or Settings()).catalog
    base = config or DemandTaskConfig()
    tables = load_tables(catalog.data.validated, DEMAND_TABLES)
    prepared = prepare_demand(tables, base)
    horizon = dt.timedelta(weeks=base.features.horizons)
    cutoffs = tuning_cutoffs(prepared[0], base, n_cutoffs)
    folds = [Fold(i, c, c, c + horizon) for i, c in enumerate(cutoffs)]

    def score(params: dict[str, Any], fold: Fold) -> float:
        lgbm = with_params(base.lgbm, params, early_stopping_rounds=None)
        cfg = base.model_copy(update={"lgbm": lgbm, "n_cutoffs": 1, "step_weeks": 1})
        assert isinstance(fold.cutoff, dt.date)
        preds = demand_backtest(
            tables, cfg, prepared=truncate_to_cutoff(prepared, fold.cutoff, base.features.horizons)
        )
        sp = scaled_pinball(preds, [MODEL_NAME], "y", None, quantiles=DEMAND_QUANTILES)
        return float(sp.filter(pl.col("metric") == "scaled_pinball")["value"][0])

    objective = make_objective(score, folds, space=lgbm_space)
    study_cfg = StudyConfig(directory=catalog.outputs.tuning(STUDY), n_trials=n_trials)
    if timeout_seconds is not None:
        study_cfg = study_cfg.model_copy(update={"timeout_seconds": timeout_seconds})
    return run_study(STUDY, objective, study_cfg)
