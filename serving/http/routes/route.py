"""Stage: serving. `POST /v1/route`: ranked ways to ship each order (mode, carrier or warehouse).

Reads the request's orders and optional warehouse stock and the served snapshot's `lanes`; scores every
option with the served Predictor (`serving.decisions.routing.recommend_routes`) and answers through
`RouteResponse`; writes nothing but metrics.
"""

from __future__ import annotations

import asyncio
from typing import Any

import polars as pl
from fastapi import APIRouter, HTTPException

from serving.http.deps import MetricsDep, PredictorDep
from serving.http.routes.eta import unprocessable
from serving.http.schemas import RouteOption, RouteRequest, RouteResponse, orders_frame

__all__ = ["router"]

router = APIRouter(tags=["routing"])


@router.post(
    "/route",
    response_model=RouteResponse,
    summary="Ranked ways to ship an order: mode, carrier or warehouse, cost, ETA, P(late)",
)
async def route(body: RouteRequest, predictor: PredictorDep, metrics: MetricsDep) -> dict[str, Any]:
    """Every option of every order, scored with the served models, costed and ranked."""
    from serving.decisions.routing import RoutingConfig, recommend_routes

    lanes = predictor.snapshot.lanes
    if lanes is None:
        raise HTTPException(status_code=503, detail="the served snapshot has no lanes table")
    stock = (
        None
        if not body.stock
        else pl.DataFrame([s.model_dump() for s in body.stock]).with_columns(
            pl.col("on_hand_units").cast(pl.Int64)
        )
    )
    config = RoutingConfig(**body.options.model_dump())
    try:
        out = await asyncio.to_thread(
            recommend_routes, orders_frame(body.orders), predictor.predict_shipments, lanes, stock, config
        )
    except ValueError as exc:
        raise unprocessable(exc) from exc
    metrics.rows.labels("/v1/route").inc(out.height)
    cols = list(RouteOption.model_fields)
    out = out.with_columns(pl.lit(None).alias(c) for c in cols if c not in out.columns).select(cols)
    return {"model_version": predictor.info.model_version, "options": out.to_dicts()}
