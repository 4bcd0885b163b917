"""Stage: serving. The HTTP API: `create_app(settings)` builds a FastAPI app around one served Predictor.

Reads the models and feature snapshot the settings point at (local folder or MLflow alias, resolved by the
caller: `pipelines.cli.serving`) in the app's lifespan, never at import. Writes nothing but logs and
metrics (`serving.http.observability`).

The rooms: `settings` (environment), `deps` (dependencies declared once), `holder` (the served Predictor
and its hot swap), `batching` (online micro-batching), `routes/` (one module per resource: eta, route,
forecast, models, admin, ops), `schemas` and `fields` (request/response models derived from the data
contract), `observability` (request log, metrics, body limit).

Endpoints: `POST /v1/eta`, `POST /v1/route`, `GET /v1/forecast/{warehouse_id}/{sku_id}`, `GET /v1/models`,
`POST /v1/admin/reload`, `GET /healthz`, `GET /readyz`, `GET /metrics`. Everything under `/v1` needs an API
key in the `X-API-Key` header unless authentication was explicitly turned off. Every JSON answer goes
through its route's `response_model`, so the documented schema is checked against what is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from serving.http.batching import MicroBatcher
from serving.http.holder import Loader, ModelHolder, load_predictor, source_version
from serving.http.observability import ApiMetrics, BodySizeLimit, RequestLog
from serving.http.routes import api_routers
from serving.http.settings import ApiSettings
from serving.online.inputs import require_valid

__all__ = ["create_app"]


def create_app(
    settings: ApiSettings,
    *,
    loader: Loader = load_predictor,
    versioner: Callable[[ApiSettings], str] = source_version,
) -> FastAPI:
    """The API around the models `settings` point at; they are loaded in the lifespan, not here.

    Args:
        settings: API settings (keys, limits, model source, poll interval).
        loader: builds the Predictor (default: `serving.http.holder.load_predictor`).
        versioner: fingerprints the model source for hot swap (default: `source_version`).

    Raises:
        ValueError: the settings name no model source (`ApiSettings.model_source`), when the default
            loader is used.
    """
    if loader is load_predictor:
        settings.model_source()
    metrics = ApiMetrics()
    holder = ModelHolder(settings, loader, versioner, metrics)
    # Requests of one micro-batch may share shipment ids: each request's ids are checked by `EtaRequest`.
    batcher = MicroBatcher(
        settings.batch_window_ms / 1000,
        settings.batch_max_rows,
        metrics,
        partial(require_valid, unique_key=False),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:  # noqa: ARG001
        await holder.reload(force=True)
        poller = asyncio.create_task(holder.poll(settings.poll_seconds)) if settings.poll_seconds else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await batcher.close()

    app = FastAPI(
        title="transitcast",
        version="1",
        summary="Shipment ETA, delay and customs risk, routing and demand forecasts",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.batcher = batcher
    for router in api_routers():
        app.include_router(router)
    app.add_middleware(RequestLog, metrics=metrics)  # type: ignore[arg-type]
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)  # type: ignore[arg-type]
    return app
