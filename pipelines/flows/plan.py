"""Stage: orchestration. Prefect flow `weekly-plan` and its weekly deployment.

Thin wiring over `serving.decisions.lead_times`, `serving.decisions.restock` and `serving.reports.planner` (pure or edge functions).
Reads `<data>/validated/<table>.parquet` for warehouse_sales, replenishments, skus, warehouses, shipments and
customs_declarations,
and the demand forecast `<outputs>/forecasts/demand/<YYYY-Www>/{forecast,paths,metadata}` (written by the
`weekly-forecast` flow, which this flow runs first when the folder is missing and a demand model exists).
Writes

* `<outputs>/plans/<YYYY-Www>/plan.parquet`, `plan.csv`, `orders.csv`, `warehouses.csv`: the restock plan;
* `<outputs>/reports/<YYYY-Www>/report.html`: the planner report (self-contained HTML).

`deploy_weekly_plan` serves the flow on a cron schedule against a Prefect server (schedules never run on
Prefect's temporary local API): start one with `prefect server start --host 127.0.0.1`, then
`PREFECT_API_URL=http://127.0.0.1:4200/api transitcast deploy`.
"""

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipelines.adapters.dvc import current_data_version
from pipelines.config import Settings
from serving.decisions.lead_times import freight_rates, lane_reliability, lead_time_samples, stock_positions
from serving.decisions.restock import RestockConfig, abc_classes, plan_restock
from serving.reports.planner import PlannerReport, customs_hotspots, lane_stats, write_report

__all__ = [
    "PLAN_TABLES",
    "build_weekly_plan",
    "deploy_weekly_plan",
    "iso_week_monday",
    "load_forecast",
    "load_validated",
    "plan_date_of",
    "weekly_plan",
]

log = logging.getLogger(__name__)

PLAN_TABLES = (
    "warehouse_sales", "replenishments", "skus", "warehouses", "shipments", "customs_declarations",
)  # fmt: skip
_HISTORY_WEEKS = 26


def iso_week_monday(week: str) -> dt.date:
    """Monday of an ISO week `YYYY-Www` (ValueError naming the expected format otherwise)."""
    try:
        year, w = week.split("-W")
        return dt.date.fromisocalendar(int(year), int(w), 1)
    except ValueError as exc:
        raise ValueError(f"week must look like 2025-W49 (ISO year-week), got {week!r}") from exc


def _label(monday: dt.date) -> str:
    iso = monday.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def load_forecast(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Forecast frame, sample paths and metadata from a `weekly-forecast` output folder."""
    missing = [f for f in ("forecast.parquet", "paths.parquet") if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {missing}: run `transitcast forecast` (weekly-forecast) first"
        )
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return pl.read_parquet(folder / "forecast.parquet"), pl.read_parquet(folder / "paths.parquet"), meta


def _model_versions(models_dir: Path) -> dict[str, str]:
    out = {}
    for meta in sorted(models_dir.glob("*/metadata.json")):
        try:
            fp = json.loads(meta.read_text()).get("training", {}).get("fingerprint", "")
        except (OSError, json.JSONDecodeError):
            continue
        if fp:
            out[f"model {meta.parent.name}"] = str(fp).removeprefix("sha256:")[:12]
    return out


@task(name="load-plan-tables", cache_policy=NO_CACHE)
def load_validated(validated: Path, names: tuple[str, ...] = PLAN_TABLES) -> dict[str, pl.DataFrame]:
    """The validated tables `names` (FileNotFoundError naming the first missing one and what to run)."""
    tables = {}
    for name in names:
        path = validated / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `transitcast ingest` first")
        tables[name] = pl.read_parquet(path)
    return tables


@task(name="demand-forecast", cache_policy=NO_CACHE)
def _forecast(
    settings: Settings, label: str, forecast_dir: Path | None
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    folder = forecast_dir or settings.outputs_dir / "forecasts" / "demand" / label
    if not (folder / "paths.parquet").exists():
        from pipelines.flows.demand import weekly_forecast

        log.info("no forecast in %s: running weekly-forecast %s", folder, label)
        folder = weekly_forecast.fn(week=label, data_dir=settings.data_dir, outputs_dir=settings.outputs_dir)
    return load_forecast(folder)


def _restock(
    tables: dict[str, pl.DataFrame], paths: pl.DataFrame, plan_date: dt.date, config: RestockConfig
) -> pl.DataFrame:
    rep, sales, skus = tables["replenishments"], tables["warehouse_sales"], tables["skus"]
    lead = lead_time_samples(rep, plan_date)
    plan = plan_restock(
        paths,
        stock_positions(sales, rep, plan_date, lead),
        skus,
        tables["warehouses"],
        lead,
        freight_rates(rep, skus, plan_date),
        abc_classes(sales, skus, plan_date, config),
        config,
    )
    return plan.with_columns(pl.lit(plan_date).alias("plan_date"))


def _weekly_history(sales: pl.DataFrame, plan_date: dt.date) -> pl.DataFrame:
    start = plan_date - dt.timedelta(weeks=_HISTORY_WEEKS)
    return (
        sales.filter((pl.col("date") >= start) & (pl.col("date") < plan_date))
        .with_columns(pl.col("date").dt.truncate("1w").alias("week_start"))
        .group_by("warehouse_id", "sku_id", "week_start")
        .agg(pl.col("units_sold").sum().alias("units"))
    )


def plan_date_of(week: str | None, sales: pl.DataFrame) -> dt.date:
    """Monday of `week`, or of the week after the last sales date when `week` is None."""
    if week is not None:
        return iso_week_monday(week)
    last = sales["date"].max()
    if not isinstance(last, dt.date):
        raise ValueError("warehouse_sales is empty: nothing to plan from")
    return last + dt.timedelta(days=7 - last.weekday())


def build_weekly_plan(
    tables: dict[str, pl.DataFrame],
    forecast: pl.DataFrame,
    paths: pl.DataFrame,
    meta: dict[str, Any],
    plan_date: dt.date,
    outputs_dir: Path,
    config: RestockConfig | None = None,
) -> Path:
    """Restock plan, lane and customs statistics and the report, from loaded tables and a forecast.

    Args:
        tables: the `PLAN_TABLES` contract tables.
        forecast: the demand forecast contract frame of the plan week.
        paths: its sample paths (horizon 1 = the plan week).
        meta: the forecast's metadata (`model_version`, `cutoff_date`, ...), may be empty.
        plan_date: Monday of the plan week; only data strictly before it is used.
        outputs_dir: outputs root; writes `plans/<week>/` and `reports/<week>/report.html`.
        config: restock policy.

    Returns:
        The report path.

    Raises:
        ValueError: when the forecast's cutoff is not the plan date.
    """
    config = config or RestockConfig()
    label = _label(plan_date)
    if meta.get("cutoff_date") and meta["cutoff_date"] != plan_date.isoformat():
        raise ValueError(f"forecast cutoff {meta['cutoff_date']} does not match the plan date {plan_date}")
    plan = _restock(tables, paths, plan_date, config)
    version = current_data_version()
    versions = {"data (DVC md5)": version.md5 if version else "unversioned"}
    if meta:
        versions["demand model"] = str(meta.get("model_version", "")) or "unknown"
        versions["demand forecast"] = f"{meta.get('forecast_week', label)} ({meta.get('n_paths', '?')} paths)"
    versions |= _model_versions(outputs_dir / "models")
    report = PlannerReport(
        week=label,
        plan_date=plan_date,
        plan=plan,
        forecast=forecast,
        history=_weekly_history(tables["warehouse_sales"], plan_date),
        lanes=lane_stats(tables["shipments"], plan_date),
        replenishment_lanes=lane_reliability(tables["replenishments"], plan_date),
        customs=customs_hotspots(tables["customs_declarations"], plan_date),
        versions=versions,
        warehouses=tables["warehouses"]["warehouse_id"].to_list(),
    )
    path = write_report(report, outputs_dir / "reports" / label, exports_dir=outputs_dir / "plans" / label)
    log.info("weekly plan %s: %d order lines -> %s", label, int(plan["is_order"].sum()), path)
    return path


@task(name="plan-and-report", cache_policy=NO_CACHE)
def _plan_and_report(
    tables: dict[str, pl.DataFrame],
    forecast: tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]],
    plan_date: dt.date,
    outputs_dir: Path,
    config: RestockConfig,
) -> Path:
    return build_weekly_plan(tables, *forecast, plan_date, outputs_dir, config)


@flow(name="weekly-plan")
def weekly_plan(
    week: str | None = None,
    data_dir: Path | None = None,
    outputs_dir: Path | None = None,
    forecast_dir: Path | None = None,
    config: RestockConfig | None = None,
) -> Path:
    """Latest data -> demand forecast -> restock plan -> lane reliability and customs -> planner report.

    Args:
        week: plan week `YYYY-Www` (decisions on its Monday, with data strictly before it). None = the week
            after the last sales date.
        data_dir: data root (default from `Settings`).
        outputs_dir: outputs root (default from `Settings`).
        forecast_dir: a `weekly-forecast` output folder to use instead of `<outputs>/forecasts/demand/<week>`.
        config: restock policy (defaults: `RestockConfig()`).

    Returns:
        The path of the report, `<outputs>/reports/<week>/report.html`.
    """
    settings = Settings.with_dirs(data_dir, outputs_dir)
    tables = load_validated(settings.validated_dir)
    plan_date = plan_date_of(week, tables["warehouse_sales"])
    forecast = _forecast(settings, _label(plan_date), forecast_dir)
    return _plan_and_report(tables, forecast, plan_date, settings.outputs_dir, config or RestockConfig())


def deploy_weekly_plan(cron: str = "0 6 * * 1", name: str = "weekly-plan", timezone: str = "UTC") -> None:
    """Serve `weekly-plan` on a cron schedule (blocks; Ctrl-C stops it).

    Needs a Prefect server (`prefect server start --host 127.0.0.1`) and `PREFECT_API_URL` pointing at it
    (`http://127.0.0.1:4200/api`): on Prefect's temporary local API, schedules never run anything.

    Raises:
        RuntimeError: when `PREFECT_API_URL` is not set.
    """
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError(
            "PREFECT_API_URL is not set: start a server with `prefect server start --host 127.0.0.1` and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api (schedules do not run on the temporary API)"
        )
    from prefect.client.schemas.schedules import CronSchedule

    weekly_plan.serve(name=name, schedules=[CronSchedule(cron=cron, timezone=timezone)])
