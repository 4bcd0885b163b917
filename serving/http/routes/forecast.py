"""Stage: serving. `GET /v1/forecast/{warehouse_id}/{sku_id}`: the latest weekly demand forecast.

Reads the newest `<forecasts_dir>/<YYYY-Www>/forecast.parquet` (written by the weekly forecast flow) on each
request; writes nothing. 404 when no forecast folder is configured, none was written yet, or the
warehouse x SKU has none.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import polars as pl
from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam

from serving.http.deps import SettingsDep
from serving.http.schemas import ForecastPoint, ForecastResponse

__all__ = ["router"]

router = APIRouter(tags=["demand"])

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
PathId = Annotated[str, PathParam(min_length=1, max_length=32, pattern=_ID_PATTERN)]


def _latest_forecast(folder: Path) -> Path | None:
    files = sorted(folder.glob("*/forecast.parquet"), key=lambda p: p.parent.name)
    return files[-1] if files else None


@router.get(
    "/forecast/{warehouse_id}/{sku_id}",
    response_model=ForecastResponse,
    summary="The latest weekly demand forecast (16 weeks, quantiles) of a SKU in a warehouse",
    responses={404: {"description": "no forecast yet, or none for this warehouse x SKU"}},
)
async def forecast(warehouse_id: PathId, sku_id: PathId, settings: SettingsDep) -> ForecastResponse:
    """Read from the newest `<forecasts_dir>/<YYYY-Www>/forecast.parquet`."""
    folder = settings.forecasts_dir
    path = None if folder is None else _latest_forecast(folder)
    if path is None:
        where = (
            "no forecasts folder is configured (TRANSITCAST_API_FORECASTS_DIR)" if folder is None else folder
        )
        raise HTTPException(
            status_code=404, detail=f"no demand forecast in {where}: run the weekly demand forecast first"
        )
    rows = await asyncio.to_thread(
        lambda: (
            pl.scan_parquet(path)
            .filter((pl.col("warehouse_id") == warehouse_id) & (pl.col("sku_id") == sku_id))
            .sort("horizon")
            .collect()
        )
    )
    if rows.is_empty():
        raise HTTPException(
            status_code=404,
            detail=f"no forecast for warehouse {warehouse_id!r} x SKU {sku_id!r} in {path.parent.name}",
        )
    first = rows.row(0, named=True)
    return ForecastResponse(
        warehouse_id=warehouse_id,
        sku_id=sku_id,
        forecast_week=str(first.get("forecast_week") or path.parent.name),
        cutoff_date=first.get("cutoff_date"),
        volume_class=None if first.get("volume_class") is None else str(first["volume_class"]),
        model_version=first.get("model_version"),
        data_version=first.get("data_version"),
        points=[
            ForecastPoint.model_validate(p) for p in rows.select(list(ForecastPoint.model_fields)).to_dicts()
        ],
    )
