"""Stage: serving. `POST /v1/eta`: ETA quantiles, p_late, customs risk and a promise date per shipment.

Reads the request's shipments (and optional milestone scans), checks their rows against the data contract
(`serving.online.inputs`, the rules batch scoring applies), scores them with the served Predictor (through
the micro-batcher when there are no scans) and answers through `EtaResponse`; writes nothing but metrics.
A row that breaks a rule gets a 422 naming `body.shipments[i].<column>`, the rule and the fix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import polars as pl
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError

from serving.http.deps import BatcherDep, MetricsDep, PredictorDep, SettingsDep
from serving.http.schemas import EtaRequest, EtaResponse, events_frame, shipments_frame
from serving.online.inputs import EVENTS_SPEC, Rejects, require_valid
from serving.online.predictor import Predictor

__all__ = ["router", "unprocessable"]

router = APIRouter(tags=["shipments"])

_BODY_FIELD = {"shipments": "shipments", "shipment_events": "events"}


def unprocessable(exc: ValueError) -> RequestValidationError:
    """The 422 of invalid rows: one error per rejected row (`loc`: body field, index, column), or a text."""
    if not isinstance(exc, Rejects):
        return RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}]
        )
    field = _BODY_FIELD.get(exc.table, exc.table)
    return RequestValidationError(
        [
            {
                "type": r["rule"],
                "loc": ("body", field, r["row_number"] - 1, r["column"]),
                "msg": f"{r['detail']}; fix: {r['fix']}",
                "input": r["raw_value"],
            }
            for r in exc.rejects.head(50).iter_rows(named=True)
        ]
    )


def _too_many(field: str, most: int) -> RequestValidationError:
    message = f"at most {most} {field} per request (this server's limit)"
    return RequestValidationError(
        [{"type": "too_long", "loc": ("body", field), "msg": message, "input": None}]
    )


def _score_with_events(
    predictor: Predictor, shipments: pl.DataFrame, events: pl.DataFrame, as_of: dt.datetime | None
) -> pl.DataFrame:
    rows = require_valid(shipments)
    return predictor.predict_shipments(rows, require_valid(events, EVENTS_SPEC), as_of=as_of)


@router.post(
    "/eta",
    response_model=EtaResponse,
    summary="ETA quantiles, p_late, customs risk and a promise date for one or many shipments",
    responses={401: {"description": "no or wrong API key"}, 413: {"description": "body too large"}},
)
async def eta(
    body: EtaRequest,
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Score open shipments; with `events`, also the in-transit remaining days after the latest scan."""
    if len(body.shipments) > settings.max_batch:
        raise _too_many("shipments", settings.max_batch)
    if body.events and len(body.events) > settings.max_events:
        raise _too_many("events", settings.max_events)
    frame = shipments_frame(body.shipments)
    try:
        if body.events:
            events = events_frame(body.events)
            out = await asyncio.to_thread(_score_with_events, predictor, frame, events, body.as_of)
        else:
            out = await batcher.score(predictor, frame)
    except ValueError as exc:
        raise unprocessable(exc) from exc
    metrics.rows.labels("/v1/eta").inc(out.height)
    request.scope.setdefault("state", {})["rows"] = out.height
    info = predictor.info
    return {
        "model_version": info.model_version,
        "data_version": info.data_version,
        "predictions": out.to_dicts(),
    }
