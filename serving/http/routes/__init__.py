"""Stage: serving. The API's routes, one module per resource; `api_routers` assembles them.

`ops` (health, readiness, metrics) is open; everything under `/v1` needs an API key (`require_api_key`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.http.deps import require_api_key
from serving.http.routes import admin, eta, forecast, models, ops, route

__all__ = ["api_routers"]


def api_routers() -> list[APIRouter]:
    """The open operations router and the authenticated `/v1` router."""
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
    for module in (eta, route, forecast, models, admin):
        v1.include_router(module.router)
    return [ops.router, v1]
