"""Stage: orchestration. Prefect flows `train-demand` and `weekly-forecast`, and the demand Optuna study.

Thin wiring over `models.demand_tasks` / `models.demand` / `models.demand_paths` (pure). Reads
``<data>/validated/{warehouse_sales,skus,warehouses}.parquet`` (and
``<data>/raw/oracle/demand_weekly.parquet`` when the data came from the simulator); writes

* ``outputs/models/demand/``: the model directory (LightGBM text + ``metadata.json``) and
  ``backtest_metrics.parquet`` / ``backtest_predictions.parquet``;
* ``outputs/forecasts/demand/<YYYY-Www>/``: ``forecast.parquet``, ``paths.parquet``, ``metadata.json`` (the
  forecast output contract in docs/demand-forecast.md) and ``fan_chart.png``;
* ``outputs/tuning/demand/``: the Optuna study and best parameters;
* an MLflow run with the backtest metrics, a coverage figure and the registered model
  ``transitcast-demand`` (promotion gate on the lgbm scaled pinball loss).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task

from features.demand_panel import build_weekly_panel, iso_week_label, iso_week_start
from models.demand import DEMAND_QUANTILES, DemandModel, forecast_demand
from models.demand_paths import sample_paths
from models.demand_tasks import (
    MODEL_NAME,
    DemandTaskConfig,
    demand_backtest,
    demand_metrics,
    fit_demand_model,
    model_columns,
    prepare_demand,
)
from pipelines.adapters.dvc import current_data_version
from pipelines.config import Settings

__all__ = [
    "DEMAND_TABLES",
    "demand_summary",
    "fan_chart",
    "slice_metrics",
    "load_demand_oracle",
    "load_demand_tables",
    "train_demand",
    "tune_demand",
    "tuning_cutoffs",
    "weekly_forecast",
]

log = logging.getLogger(__name__)

DEMAND_TABLES = ("warehouse_sales", "skus", "warehouses")
REGISTERED_NAME = "transitcast-demand"
GATE_METRIC = "scaled_pinball"


def load_demand_tables(validated_dir: Path) -> dict[str, pl.DataFrame]:
    """Read the validated demand tables that exist (``warehouse_sales`` is required)."""
    if not (validated_dir / "warehouse_sales.parquet").exists():
        raise FileNotFoundError(
            f"{validated_dir}/warehouse_sales.parquet not found: "
            "run `transitcast ingest` (or `make demo`) first"
        )
    return {
        n: pl.read_parquet(validated_dir / f"{n}.parquet")
        for n in DEMAND_TABLES
        if (validated_dir / f"{n}.parquet").exists()
    }


def load_demand_oracle(raw_dir: Path) -> pl.DataFrame | None:
    """The simulator's weekly demand truth when present (else None)."""
    path = raw_dir / "oracle" / "demand_weekly.parquet"
    return pl.read_parquet(path) if path.exists() else None


def demand_summary(metrics: pl.DataFrame) -> pl.DataFrame:
    """Overall metrics averaged over cutoffs: one row per (model, metric)."""
    return (
        metrics.filter(pl.col("slice") == "overall")
        .group_by("model", "metric")
        .agg(pl.col("value").mean())
        .sort("metric", "model")
    )


def slice_metrics(preds: pl.DataFrame) -> pl.DataFrame:
    """Demand metrics per cutoff: overall, per warehouse and per volume class (`slice`, `slice_value`)."""
    models = model_columns(preds)
    parts = [demand_metrics(preds, models).with_columns(slice=pl.lit("overall"), slice_value=pl.lit(""))]
    for col in ("warehouse_id", "volume_class"):
        part = demand_metrics(preds, models, by=[col])
        parts.append(part.rename({col: "slice_value"}).with_columns(slice=pl.lit(col)))
    cols = ["cutoff", "slice", "slice_value", "model", "metric", "value"]
    return pl.concat([p.select(cols) for p in parts], how="vertical_relaxed")


def _tuned_config(config: DemandTaskConfig, tuning_dir: Path) -> DemandTaskConfig:
    from pipelines.adapters.optuna import load_best_params

    best = load_best_params("demand", tuning_dir)
    if not best:
        return config
    params = dict(best)
    rounds = int(params.pop("num_boost_round", config.lgbm.num_boost_round))
    lgbm = config.lgbm.model_copy(
        update={"params": {**config.lgbm.params, **params}, "num_boost_round": rounds}
    )
    log.info("demand: using tuned parameters from %s", tuning_dir)
    return config.model_copy(update={"lgbm": lgbm})


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
    data_dir: Path | None = None,
    outputs_dir: Path | None = None,
    track: bool = True,
    min_improvement: float = 0.0,
) -> dict[str, Any]:
    """Backtest the demand model next to its baselines, fit it on everything observed, log and register it.

    Args:
        config: recipe and backtest settings (tuned LightGBM parameters from ``outputs/tuning/demand`` are
            layered on top when present).
        data_dir: data root (default from `Settings`).
        outputs_dir: outputs root (default from `Settings`).
        track: log to MLflow and apply the promotion gate.
        min_improvement: relative improvement the challenger needs over the champion.

    Returns:
        ``summary`` (model, metric, value), ``model_dir``, ``metrics_path`` and the promotion ``decision``.
    """
    settings = Settings.with_dirs(data_dir, outputs_dir)
    config = _tuned_config(config or DemandTaskConfig(), settings.outputs_dir / "tuning" / "demand")
    tables = load_demand_tables(settings.validated_dir)
    oracle = load_demand_oracle(settings.raw_dir)
    prepared = prepare_demand(tables, config)
    panel, feats = prepared
    preds = _backtest(tables, config, oracle, prepared)
    metrics = slice_metrics(preds)
    summary = demand_summary(metrics)
    last_week = panel.get_column("week_start").max()
    assert isinstance(last_week, dt.date)
    model = _fit(feats, last_week + dt.timedelta(weeks=1), config)
    model_dir = settings.outputs_dir / "models" / "demand"
    model.save(model_dir)
    metrics.write_parquet(model_dir / "backtest_metrics.parquet")
    preds.write_parquet(model_dir / "backtest_predictions.parquet")
    result: dict[str, Any] = {
        "summary": summary,
        "model_dir": str(model_dir),
        "metrics_path": str(model_dir / "backtest_metrics.parquet"),
        "decision": None,
    }
    gate = summary.filter((pl.col("model") == MODEL_NAME) & (pl.col("metric") == GATE_METRIC))
    if not track or gate.is_empty():
        return result
    from dataclasses import asdict

    from pipelines.adapters.mlflow import Tracker
    from serving.reports.plots import coverage_figure

    tracker = Tracker()
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
        data = current_data_version()
        key = json.dumps({"data": data.md5 if data else None, "cutoffs": cutoffs, "rows": panel.height})

        def rebacktest(champion_config: dict[str, Any], system: str) -> float | None:
            champion = DemandTaskConfig.model_validate(champion_config)
            rows = demand_summary(slice_metrics(demand_backtest(tables, champion, oracle=oracle)))
            row = rows.filter((pl.col("model") == system) & (pl.col("metric") == GATE_METRIC))
            return None if row.is_empty() else float(row["value"][0])

        decision = tracker.promote_if_better(
            REGISTERED_NAME, version, choice, backtest_key=hashlib.sha256(key.encode()).hexdigest()[:16],
            rebacktest=rebacktest, min_improvement=min_improvement,
        )  # fmt: skip
        result["decision"] = asdict(decision)
    return result


@flow(name="weekly-forecast")
def weekly_forecast(
    week: str | None = None,
    data_dir: Path | None = None,
    outputs_dir: Path | None = None,
    model_dir: Path | None = None,
    n_paths: int = 200,
    seed: int = 0,
    chart: bool = True,
) -> Path:
    """Write the weekly demand forecast, sample paths and metadata for one ISO week.

    Args:
        week: first forecast week ``YYYY-Www`` (the cutoff is its Monday; only earlier sales are used).
            None = the week after the last sales date.
        data_dir: data root (default from `Settings`).
        outputs_dir: outputs root (default from `Settings`).
        model_dir: model directory (default ``<outputs>/models/demand``, written by `train_demand`).
        n_paths: sample paths per series.
        seed: seed of the sample paths.
        chart: also write ``fan_chart.png`` (history and forecast bands of the 4 largest series).

    Returns:
        The output folder ``<outputs>/forecasts/demand/<YYYY-Www>/``.
    """
    settings = Settings.with_dirs(data_dir, outputs_dir)
    path = model_dir or settings.outputs_dir / "models" / "demand"
    if not (path / "metadata.json").exists():
        raise FileNotFoundError(f"no demand model in {path}: run `transitcast train demand` first")
    model = DemandModel.load(path)
    tables = load_demand_tables(settings.validated_dir)
    if week is None:
        last = tables["warehouse_sales"].get_column("date").max()
        assert isinstance(last, dt.date)
        cutoff = last + dt.timedelta(days=7 - last.weekday())
    else:
        cutoff = iso_week_start(week)
    label = iso_week_label(cutoff)
    version = current_data_version()
    data_version = version.md5 if version else ""
    model_version = str(model.training_.get("fingerprint", ""))[:19]
    forecast = forecast_demand(tables, model, cutoff, model_version=model_version, data_version=data_version)
    paths = sample_paths(forecast, n_paths=n_paths, seed=seed, rho=model.path_rho)
    out = settings.outputs_dir / "forecasts" / "demand" / label
    out.mkdir(parents=True, exist_ok=True)
    forecast.write_parquet(out / "forecast.parquet")
    paths.write_parquet(out / "paths.parquet")
    if chart:
        panel = build_weekly_panel(tables["warehouse_sales"], tables.get("skus"), cutoff=cutoff)
        fan_chart(forecast, panel, out / "fan_chart.png")
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
        "n_series": forecast.select("warehouse_id", "sku_id").n_unique(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("demand forecast %s: %d rows -> %s", label, forecast.height, out)
    return out


def fan_chart(
    forecast: pl.DataFrame, panel: pl.DataFrame, path: Path, n_series: int = 4, history_weeks: int = 26
) -> Path:
    """Write a PNG fan chart (history, P50 and the P50-P95 / P80-P90 bands) of the largest series.

    Args:
        forecast: the forecast contract frame.
        panel: the weekly panel (history: ``units`` per ``week_start``).
        path: PNG file to write.
        n_series: how many series (largest expected demand over the horizon).
        history_weeks: weeks of history before the cutoff.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = (
        forecast.group_by("warehouse_id", "sku_id")
        .agg(pl.col("demand_mean").sum())
        .sort("demand_mean", "warehouse_id", "sku_id", descending=[True, False, False])
        .head(n_series)
    )
    cutoff = forecast["cutoff_date"][0]
    fig, axes = plt.subplots(len(top), 1, figsize=(8, 2.4 * max(len(top), 1)), squeeze=False)
    for ax, (wh, sku, _) in zip(axes[:, 0], top.iter_rows(), strict=False):
        hist = panel.filter(
            (pl.col("warehouse_id") == wh)
            & (pl.col("sku_id") == sku)
            & (pl.col("week_start") < cutoff)
            & (pl.col("week_start") >= cutoff - dt.timedelta(weeks=history_weeks))
        )
        fc = forecast.filter((pl.col("warehouse_id") == wh) & (pl.col("sku_id") == sku)).sort("horizon")
        ax.plot(hist["week_start"], hist["units"], color="black", linewidth=1, label="sales")
        ax.fill_between(fc["week_start"], fc["demand_q50"], fc["demand_q95"], alpha=0.2, label="P50-P95")
        ax.fill_between(fc["week_start"], fc["demand_q80"], fc["demand_q90"], alpha=0.3, label="P80-P90")
        ax.plot(fc["week_start"], fc["demand_q50"], linewidth=1.5, label="P50")
        ax.plot(fc["week_start"], fc["demand_mean"], linestyle="--", linewidth=1, label="mean")
        ax.set_title(f"{wh} / {sku}", fontsize=9)
        ax.set_ylabel("units / week", fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=5, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tune_demand(
    n_trials: int = 10,
    n_cutoffs: int = 2,
    timeout_seconds: float | None = None,
    *,
    config: DemandTaskConfig | None = None,
    data_dir: Path | None = None,
    outputs_dir: Path | None = None,
) -> Any:
    """Optuna study ``demand`` over the shared LightGBM space: mean lgbm scaled pinball over `n_cutoffs`
    rolling cutoffs that end before the first reported backtest cutoff (time-ordered, pruned between
    cutoffs). Best parameters land in
    ``<outputs>/tuning/demand/demand.json``, which `train_demand` reads.

    Returns:
        The Optuna study.
    """
    import optuna

    from models.backtest import Fold
    from models.metrics import scaled_pinball
    from models.tuning import lgbm_space, make_objective
    from pipelines.adapters.optuna import StudyConfig, run_study

    settings = Settings.with_dirs(data_dir, outputs_dir)
    base = config or DemandTaskConfig()
    tables = load_demand_tables(settings.validated_dir)
    prepared = prepare_demand(tables, base)
    horizon = dt.timedelta(weeks=base.features.horizons)
    cutoffs = tuning_cutoffs(prepared[0], base, n_cutoffs)
    folds = [Fold(i, c, c, c + horizon) for i, c in enumerate(cutoffs)]

    def score(params: dict[str, Any], fold: Fold) -> float:
        rounds = int(params.pop("num_boost_round", base.lgbm.num_boost_round))
        lgbm = base.lgbm.model_copy(
            update={
                "params": {**base.lgbm.params, **params},
                "num_boost_round": rounds,
                "early_stopping_rounds": None,
            }
        )
        cfg = base.model_copy(update={"lgbm": lgbm, "n_cutoffs": 1})
        preds = demand_backtest(
            tables,
            cfg.model_copy(update={"step_weeks": 1}),
            prepared=_upto(prepared, fold.cutoff, base.features.horizons),
        )
        sp = scaled_pinball(preds, [MODEL_NAME], "y", None, quantiles=DEMAND_QUANTILES)
        return float(sp.filter(pl.col("metric") == "scaled_pinball")["value"][0])

    objective = make_objective(score, folds, space=lgbm_space)
    study_cfg = StudyConfig(directory=settings.outputs_dir / "tuning" / "demand", n_trials=n_trials)
    if timeout_seconds is not None:
        study_cfg = study_cfg.model_copy(update={"timeout_seconds": timeout_seconds})
    study: optuna.Study = run_study("demand", objective, study_cfg)
    return study


def tuning_cutoffs(panel: pl.DataFrame, config: DemandTaskConfig, n_cutoffs: int) -> list[dt.date]:
    """Cutoffs of the tuning folds: their target weeks all end before the first cutoff `train_demand`
    reports, so the backtest that decides promotion never scores weeks that chose the parameters."""
    from models.demand_tasks import backtest_cutoffs

    h = config.features.horizons
    reported = backtest_cutoffs(panel, config.n_cutoffs, config.step_weeks, h)
    earlier = panel.filter(pl.col("week_start") < reported[0])
    return backtest_cutoffs(earlier, n_cutoffs, config.step_weeks, h)


def _upto(
    prepared: tuple[pl.DataFrame, pl.DataFrame], cutoff: dt.date, horizons: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Panel and features truncated so that the last backtest cutoff is `cutoff` (targets until its end)."""
    panel, feats = prepared
    end = cutoff + dt.timedelta(weeks=horizons)
    return panel.filter(pl.col("week_start") < end), feats.filter(pl.col("origin_week") <= cutoff)
