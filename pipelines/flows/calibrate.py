"""Stage: orchestration. Prefect flow `calibrate-restock`: learn the restock service calibration from history.

Thin wiring over `serving.decisions.restock.replay` (lost-sales replays of our policy at several quantile
levels, demand model fitted before each window) and `serving.decisions.restock.fit_restock_calibration`
(the pure fit, also called by `bench/decisions_sim.py --calibrate`).

Reads `<data>/validated/{warehouse_sales,replenishments,skus,warehouses}.parquet` and the data version
(`data.dvc`). Writes `<outputs>/calibration/restock.json` (the catalog's `restock_calibration`), the
calibration with its windows, levels, realised service and data version;
`transitcast plan --calibration FILE` and `RestockConfig.from_json` read it. Nothing is written on failure.

The replays run on recorded sales (censored by stock-outs), so their realised service is somewhat
optimistic (see `serving.decisions.restock.replay`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from pipelines.adapters.dvc import current_data_version
from pipelines.config import Settings
from pipelines.flows._tables import load_tables
from serving.decisions.restock import RestockCalibration, fit_restock_calibration
from serving.decisions.restock.policy import MODES
from serving.decisions.restock.replay import (
    REPLAY_TABLES,
    ReplayWindow,
    fit_forecaster,
    sales_as_demand,
    service_curves,
)

__all__ = [
    "QUICK_CALIBRATION",
    "CalibrationResult",
    "RestockCalibrationConfig",
    "calibrate_restock",
    "calibration_windows",
]

log = logging.getLogger(__name__)

_LEVELS: Final = (0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95, 0.98, 0.99)


class RestockCalibrationConfig(BaseModel):
    """What the calibration replays.

    Attributes:
        n_windows: consecutive replay windows, the last one ending on `end` (earlier ones before it).
        weeks: weekly reviews per window.
        warmup: first weeks of a window left out of the service figures.
        n_series: SKU x warehouse series sampled per window.
        n_paths: demand sample paths per review.
        levels: quantile levels replayed (increasing, in (0, 1)).
        modes: replenishment modes the policy may choose.
        end: Monday the last window ends on (default: the Monday after the last sales date).
        seed: series sample, lead-time luck and sample paths.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_windows: int = Field(default=2, ge=1)
    weeks: int = Field(default=26, ge=2)
    warmup: int = Field(default=6, ge=0)
    n_series: int = Field(default=250, ge=1)
    n_paths: int = Field(default=100, ge=2)
    levels: tuple[float, ...] = Field(default=_LEVELS, min_length=2)
    modes: tuple[str, ...] = MODES
    end: dt.date | None = None
    seed: int = 0


# A smaller replay for the demo (one 13-week window, fewer series, paths and levels), a few times faster than
# the default; `python bench/decisions_sim.py --calibrate` is the full study on the simulator's true demand.
QUICK_CALIBRATION: Final = RestockCalibrationConfig(
    n_windows=1, weeks=13, warmup=3, n_series=120, n_paths=50,
    levels=(0.05, 0.10, 0.20, 0.30, 0.50, 0.70, 0.80, 0.90, 0.95, 0.99),
)  # fmt: skip


@dataclass(frozen=True)
class CalibrationResult:
    """What `calibrate-restock` produced: the calibration and the file it was written to."""

    calibration: RestockCalibration
    path: Path


def calibration_windows(last_sales_date: dt.date, config: RestockCalibrationConfig) -> list[ReplayWindow]:
    """The replay windows, oldest first: `n_windows` back-to-back windows of `weeks` ending on `end`."""
    if config.warmup >= config.weeks:
        raise ValueError(
            f"warmup ({config.warmup} weeks) must be shorter than a window ({config.weeks} weeks)"
        )
    end = config.end or last_sales_date + dt.timedelta(days=7 - last_sales_date.weekday())
    if end.weekday() != 0:
        raise ValueError(f"end must be a Monday, got {end} ({end:%A})")
    starts = [end - dt.timedelta(weeks=config.weeks * k) for k in range(config.n_windows, 0, -1)]
    return [
        ReplayWindow(
            start=s, weeks=config.weeks, warmup=config.warmup, n_series=config.n_series,
            n_paths=config.n_paths, seed=config.seed, modes=config.modes,
        )
        for s in starts
    ]  # fmt: skip


@task(name="replay-service-curves", cache_policy=NO_CACHE)
def _curves(
    tables: dict[str, pl.DataFrame], window: ReplayWindow, levels: tuple[float, ...]
) -> dict[str, list[float]]:
    first_sale = tables["warehouse_sales"]["date"].min()
    if not isinstance(first_sale, dt.date) or first_sale >= window.start:
        raise ValueError(f"window {window.label}: no sales before {window.start} to fit the demand model on")
    forecaster = fit_forecaster(tables, window.start)
    return service_curves(tables, sales_as_demand(tables["warehouse_sales"]), window, levels, forecaster)


@flow(name="calibrate-restock")
def calibrate_restock(
    config: RestockCalibrationConfig | None = None,
    settings: Settings | None = None,
) -> CalibrationResult:
    """Replay our restock policy on recent windows at each quantile level and fit the service calibration.

    Args:
        config: windows, levels and replay size (defaults: `RestockCalibrationConfig()`).
        settings: roots (default: `Settings()` from the environment).

    Returns:
        The calibration and the path of `<outputs>/calibration/restock.json`.

    Raises:
        FileNotFoundError: when a validated table is missing.
        ValueError: when the windows do not fit the data (no sales before the first window).
    """
    config = config or RestockCalibrationConfig()
    catalog = (settings or Settings()).catalog
    tables = load_tables(catalog.data.validated, REPLAY_TABLES, required=REPLAY_TABLES)
    last = tables["warehouse_sales"]["date"].max()
    if not isinstance(last, dt.date):
        raise ValueError("warehouse_sales is empty: nothing to calibrate on")
    windows = calibration_windows(last, config)
    curves: dict[str, list[list[float]]] = {}
    for window in windows:
        for band, curve in _curves(tables, window, config.levels).items():
            curves.setdefault(band, []).append(curve)
    version = current_data_version(catalog.data.dvc_file)
    calibration = fit_restock_calibration(
        config.levels,
        curves,
        windows=[w.label for w in windows],
        data_version=version.md5 if version else None,
        note="flow calibrate-restock (replays on recorded sales)",
    )
    path = catalog.outputs.restock_calibration
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration.to_json())
    log.info("restock calibration (%s) -> %s", ", ".join(calibration.quantile_map) or "no band", path)
    return CalibrationResult(calibration, path)
