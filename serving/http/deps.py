"""Stage: serving. The API's dependencies, declared once as `Annotated[..., Depends(...)]` aliases.

Reads the app's state (settings, model holder, metrics, micro-batcher, set by `serving.http.app.create_app`)
and the request's API key header; writes nothing. Every dependency is `async`: FastAPI would run a plain
function in its thread pool, a thread hop per request. Tests swap the Predictor with
`app.dependency_overrides[get_predictor]`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from serving.http.batching import MicroBatcher
from serving.http.holder import ModelHolder
from serving.http.observability import ApiMetrics
from serving.http.settings import ApiSettings
from serving.online.predictor import Predictor

__all__ = [
    "BatcherDep",
    "HolderDep",
    "MetricsDep",
    "PredictorDep",
    "SettingsDep",
    "get_batcher",
    "get_holder",
    "get_metrics",
    "get_predictor",
    "get_settings",
    "require_api_key",
]

_api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def _app_state(name: str, doc: str) -> Callable[[Request], Awaitable[Any]]:
    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__, dependency.__doc__ = f"get_{name}", doc
    return dependency


get_settings = _app_state("settings", "The app's settings.")
get_holder = _app_state("holder", "The holder of the served Predictor (hot swap).")
get_metrics = _app_state("metrics", "The app's Prometheus metrics.")
get_batcher = _app_state("batcher", "The app's online micro-batcher.")

SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]


async def get_predictor(holder: HolderDep) -> Predictor:
    """The Predictor being served (503 while none is loaded)."""
    if holder.predictor is None:
        raise HTTPException(status_code=503, detail="models are not loaded yet")
    return holder.predictor


PredictorDep = Annotated[Predictor, Depends(get_predictor)]


async def require_api_key(
    request: Request, settings: SettingsDep, key: Annotated[str | None, Depends(_api_key_scheme)] = None
) -> None:
    """401 unless the request carries a configured API key (or authentication is off)."""
    if settings.auth_disabled:
        return
    supplied = request.headers.get(settings.api_key_header) or key
    if supplied and any(hmac.compare_digest(supplied.encode(), k.encode()) for k in settings.keys):
        return
    raise HTTPException(
        status_code=401,
        detail=f"missing or invalid API key in header {settings.api_key_header}",
        headers={"WWW-Authenticate": "ApiKey"},
    )
