"""Stage: serving. Operations endpoints: `GET /healthz`, `GET /readyz`, `GET /metrics` (no API key).

Reads the model holder and the metrics registry; writes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.http.deps import HolderDep, MetricsDep
from serving.http.schemas import HealthResponse, ReadyResponse

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    """The process is up."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness",
    responses={503: {"description": "models not loaded", "model": ReadyResponse}},
)
async def readyz(holder: HolderDep, response: Response) -> ReadyResponse:
    """Ready when models are loaded."""
    if holder.predictor is None:
        response.status_code = 503
        return ReadyResponse(status="loading", error=holder.last_error)
    return ReadyResponse(status="ready", model_version=holder.predictor.info.model_version)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(registry: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
