"""Stage: orchestration. Prefect flow `weekly-plan` and its weekly deployment.

Thin wiring over `serving.decisions.lead_times`, `serving.decisions.restock` and `serving.reports.planner`
(pure or edge functions). Reads the validated `PLAN_TABLES` (warehouse_sales, replenishments, skus,
warehouses, shipments, customs_declarations) and the demand forecast folder of the week
(`pipelines.catalog.ForecastFiles`, written by the `weekly-forecast` flow, which this flow runs first when
the folder is missing and a demand model exists). Writes, at the catalog's paths,

* `plans/<YYYY-Www>/`: plan.parquet, plan.csv, orders.csv, warehouses.csv (the restock plan);
* `reports/<YYYY-Www>/report.html`: the planner report (self-contained HTML).

`deploy_weekly_plan` serves the flow on a cron schedule against a Prefect server (schedules never run on
Prefect's temporary local API): start one with `prefect server start --host 127.0.0.1`, then
`PREFECT_API_URL=http://127.0.0.1:4200/api transitcast deploy`.
"""

# No `from __future__ import annotations` here: a served flow (`deploy`) resolves its parameter annotations
# at run time, and string annotations failed Prefect's validation (docs/decisions.md).
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from features.demand_panel import iso_week_label, iso_week_start
from pipelines.adapters.dvc import current_data_version
from pipelines.catalog import ForecastFiles, OutputCatalog
from pipelines.config import Settings
from pipelines.flows._tables import load_tables, week_after_last_sale, weekly_history
from serving.decisions.lead_times import freight_rates, lane_reliability, lead_time_samples, stock_positions
from serving.decisions.restock import RestockConfig, abc_classes, plan_restock
from serving.reports.planner import PlannerReport, customs_hotspots, lane_stats, write_report

__all__ = [
    "PLAN_TABLES",
    "WeeklyPlan",
    "build_weekly_plan",
    "deploy_weekly_plan",
    "load_forecast",
    "plan_date_of",
    "weekly_plan",
]

log = logging.getLogger(__name__)

PLAN_TABLES = (
    "warehouse_sales", "replenishments", "skus", "warehouses", "shipments", "customs_declarations",
)  # fmt: skip


@dataclass(frozen=True)
class WeeklyPlan:
    """What `weekly_plan` wrote: the ISO week, its Monday, the report and the plan exports folder."""

    week: str
    plan_date: dt.date
    report: Path
    exports: Path


def load_forecast(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Forecast frame, sample paths and metadata from a `weekly-forecast` output folder."""
    files = ForecastFiles(folder)
    missing = files.missing()
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {missing}: run `transitcast forecast` (weekly-forecast) first"
        )
    meta = json.loads(files.metadata.read_text()) if files.metadata.exists() else {}
    return pl.read_parquet(files.forecast), pl.read_parquet(files.paths), meta


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
def _load(validated: Path) -> dict[str, pl.DataFrame]:
    return load_tables(validated, PLAN_TABLES, required=PLAN_TABLES)


@task(name="demand-forecast", cache_policy=NO_CACHE)
def _forecast(
    settings: Settings, label: str, forecast_dir: Path | None
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    files = ForecastFiles(forecast_dir) if forecast_dir else settings.catalog.outputs.forecast(label)
    if not files.paths.exists():
        from pipelines.flows.demand import weekly_forecast

        log.info("no forecast in %s: running weekly-forecast %s", files.folder, label)
        files = weekly_forecast.fn(week=label, settings=settings).files
    return load_forecast(files.folder)


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


def plan_date_of(week: str | None, sales: pl.DataFrame) -> dt.date:
    """Monday of `week`, or of the week after the last sales date when `week` is None."""
    return week_after_last_sale(sales) if week is None else iso_week_start(week)


def build_weekly_plan(
    tables: dict[str, pl.DataFrame],
    forecast: pl.DataFrame,
    paths: pl.DataFrame,
    meta: dict[str, Any],
    plan_date: dt.date,
    outputs_dir: Path,
    config: RestockConfig | None = None,
    *,
    dvc_file: Path | None = None,
) -> Path:
    """Restock plan, lane and customs statistics and the report, from loaded tables and a forecast.

    Args:
        tables: the `PLAN_TABLES` contract tables.
        forecast: the demand forecast contract frame of the plan week.
        paths: its sample paths (horizon 1 = the plan week).
        meta: the forecast's metadata (`model_version`, `cutoff_date`, ...), may be empty.
        plan_date: Monday of the plan week; only data strictly before it is used.
        outputs_dir: outputs root; writes the catalog's `plans/<week>/` and `reports/<week>/report.html`.
        config: restock policy.
        dvc_file: where the data version is recorded (default: the catalog's, from the environment).

    Returns:
        The report path.

    Raises:
        ValueError: when the forecast's cutoff is not the plan date.
    """
    config = config or RestockConfig()
    outputs = OutputCatalog(outputs_dir)
    label = iso_week_label(plan_date)
    if meta.get("cutoff_date") and meta["cutoff_date"] != plan_date.isoformat():
        raise ValueError(f"forecast cutoff {meta['cutoff_date']} does not match the plan date {plan_date}")
    plan = _restock(tables, paths, plan_date, config)
    version = current_data_version(dvc_file)
    versions = {"data (DVC md5)": version.md5 if version else "unversioned"}
    if meta:
        versions["demand model"] = str(meta.get("model_version", "")) or "unknown"
        versions["demand forecast"] = f"{meta.get('forecast_week', label)} ({meta.get('n_paths', '?')} paths)"
    versions |= _model_versions(outputs.models)
    report = PlannerReport(
        week=label,
        plan_date=plan_date,
        plan=plan,
        forecast=forecast,
        history=weekly_history(tables["warehouse_sales"], plan_date),
        lanes=lane_stats(tables["shipments"], plan_date),
        replenishment_lanes=lane_reliability(tables["replenishments"], plan_date),
        customs=customs_hotspots(tables["customs_declarations"], plan_date),
        versions=versions,
        warehouses=tables["warehouses"]["warehouse_id"].to_list(),
    )
    path = write_report(report, outputs.reports(label), exports_dir=outputs.plans(label))
    log.info("weekly plan %s: %d order lines -> %s", label, int(plan["is_order"].sum()), path)
    return path


@task(name="plan-and-report", cache_policy=NO_CACHE)
def _plan_and_report(
    tables: dict[str, pl.DataFrame],
    forecast: tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]],
    plan_date: dt.date,
    settings: Settings,
    config: RestockConfig,
) -> Path:
    catalog = settings.catalog
    return build_weekly_plan(
        tables, *forecast, plan_date, catalog.outputs.root, config, dvc_file=catalog.data.dvc_file
    )


@flow(name="weekly-plan")
def weekly_plan(
    week: str | None = None,
    settings: Settings | None = None,
    forecast_dir: Path | None = None,
    config: RestockConfig | None = None,
) -> WeeklyPlan:
    """Latest data -> demand forecast -> restock plan -> lane reliability and customs -> planner report.

    Args:
        week: plan week `YYYY-Www` (decisions on its Monday, with data strictly before it). None = the week
            after the last sales date.
        settings: roots (default: `Settings()` from the environment).
        forecast_dir: a `weekly-forecast` output folder to use instead of the catalog's for the week.
        config: restock policy (defaults: `RestockConfig()`).

    Returns:
        The week, its Monday, the report (`reports/<week>/report.html`) and the exports (`plans/<week>/`).
    """
    settings = settings or Settings()
    tables = _load(settings.catalog.data.validated)
    plan_date = plan_date_of(week, tables["warehouse_sales"])
    label = iso_week_label(plan_date)
    forecast = _forecast(settings, label, forecast_dir)
    report = _plan_and_report(tables, forecast, plan_date, settings, config or RestockConfig())
    return WeeklyPlan(label, plan_date, report, settings.catalog.outputs.plans(label))


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
