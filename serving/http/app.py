"""Stage: serving. The HTTP API: `create_app(settings)` builds a FastAPI app around one Predictor.

Reads the models and feature snapshot (local folder or MLflow alias, see `serving.online.predictor`) in the app's
lifespan, never at import; the latest weekly demand forecast (`<forecasts_dir>/<YYYY-Www>/forecast.parquet`)
on request. Writes nothing but logs and metrics (`serving.http.observability`).

Endpoints: `POST /v1/eta`, `POST /v1/route`, `GET /v1/forecast/{warehouse_id}/{sku_id}`, `GET /v1/models`,
`POST /v1/admin/reload`, `GET /healthz`, `GET /readyz`, `GET /metrics`. Everything under `/v1` needs an API
key in the `X-API-Key` header unless authentication was explicitly turned off.

Hot swap: a background task polls the model source every `poll_seconds` (registry alias versions, or the
local models' fingerprints); when it changed (and stayed so for one more poll), the new Predictor is loaded
in a worker thread *beside* the old one and swapped in with one reference assignment. A request holds the
Predictor it started with, so none fails or is dropped during a swap. `POST /v1/admin/reload` does the
same at once.

Online micro-batching: single-shipment requests that arrive together are scored in one Predictor call
(`MicroBatcher`), so throughput grows with concurrency while each request still gets its own rows back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST

from serving.http.observability import ApiMetrics, BodySizeLimit, RequestLog
from serving.http.schemas import (
    EtaRequest,
    EtaResponse,
    ForecastResponse,
    ModelsResponse,
    RouteRequest,
    RouteResponse,
    events_frame,
    orders_frame,
    shipments_frame,
)
from serving.http.settings import ApiSettings
from serving.online.predictor import BOOKING_TASKS, INTRANSIT_TASK, Predictor, registry_versions
from serving.online.snapshot import SNAPSHOT_DIR

__all__ = ["MicroBatcher", "ModelHolder", "app_from_env", "create_app", "get_predictor"]

log = logging.getLogger(__name__)

Loader = Callable[[ApiSettings], Predictor]
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"


def load_predictor(settings: ApiSettings) -> Predictor:
    """The Predictor the settings point at (MLflow alias if set, else the local models folder)."""
    if settings.model_alias:
        return Predictor.from_registry(
            settings.model_alias,
            tracking_uri=settings.mlflow_tracking_uri,
            snapshot_dir=settings.models_dir / SNAPSHOT_DIR,
            promise_target=settings.promise_target,
        )
    return Predictor.from_dir(settings.models_dir, promise_target=settings.promise_target)


def source_version(settings: ApiSettings) -> str:
    """A cheap fingerprint of what `load_predictor` would load (changes when the champion moves)."""
    if settings.model_alias:
        versions = registry_versions(settings.model_alias, tracking_uri=settings.mlflow_tracking_uri)
        return ",".join(f"{t}:{v}" for t, v in sorted(versions.items()))
    digest = hashlib.sha256()
    for name in (*BOOKING_TASKS, INTRANSIT_TASK, SNAPSHOT_DIR):
        for meta in ("metadata.json", "snapshot.json"):
            path = settings.models_dir / name / meta
            if path.exists():
                digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


class ModelHolder:
    """The served Predictor, replaced atomically when the model source changes.

    Args:
        settings: API settings (model source).
        loader: builds a Predictor from the settings (tests pass their own).
        versioner: fingerprints the model source; a change triggers a reload.
        metrics: swap counter and load time gauge.
    """

    def __init__(
        self,
        settings: ApiSettings,
        loader: Loader = load_predictor,
        versioner: Callable[[ApiSettings], str] = source_version,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.loader = loader
        self.versioner = versioner
        self.metrics = metrics
        self.predictor: Predictor | None = None
        self.source_version: str | None = None
        self.last_error: str | None = None
        self._pending: str | None = None
        self._lock = asyncio.Lock()

    async def reload(self, *, force: bool = False) -> bool:
        """Load the models beside the current ones and swap them in if the source changed (or `force`).

        Returns:
            Whether a new Predictor was swapped in. A failed load keeps the current one.
        """
        async with self._lock:
            try:
                version = await asyncio.to_thread(self.versioner, self.settings)
                if not force and self.predictor is not None:
                    if version == self.source_version:
                        return False
                    if version != self._pending:  # reload once the source is stable for one poll
                        self._pending = version
                        return False
                predictor = await asyncio.to_thread(self.loader, self.settings)
            except Exception as exc:  # noqa: BLE001 - keep serving the current models whatever failed
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("model load failed, keeping the current models: %s", self.last_error)
                return False
            self.predictor, self.source_version, self.last_error = predictor, version, None
            if self.metrics is not None:
                self.metrics.model_swaps.inc()
                self.metrics.model_loaded_at.set(time.time())
            log.info("serving models %s", predictor.info.model_version)
            return True

    async def poll(self, seconds: float) -> None:
        """Reload when the source changed and then stayed the same for one more check (`seconds` apart),
        so a folder being rewritten file by file is not loaded half-way."""
        while True:
            await asyncio.sleep(seconds)
            await self.reload()


@dataclass
class _Item:
    predictor: Predictor
    frame: pl.DataFrame
    future: asyncio.Future[pl.DataFrame]


class MicroBatcher:
    """Groups concurrent scoring requests into one Predictor call (one worker task per event loop).

    Args:
        window_s: how long to wait for more requests after the first one.
        max_rows: most rows in one call.
        metrics: rows-per-batch histogram.
    """

    def __init__(self, window_s: float, max_rows: int, metrics: ApiMetrics | None = None) -> None:
        self.window_s = window_s
        self.max_rows = max_rows
        self.metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def score(self, predictor: Predictor, frame: pl.DataFrame) -> pl.DataFrame:
        """`predictor.predict_shipments(frame)`, possibly computed together with other requests."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        future: asyncio.Future[pl.DataFrame] = loop.create_future()
        self._queue.put_nowait(_Item(predictor, frame, future))
        return await future

    async def close(self) -> None:
        """Stop the worker."""
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _collect(self, queue: asyncio.Queue[_Item]) -> list[_Item]:
        items = [await queue.get()]
        rows = items[0].frame.height
        deadline = asyncio.get_running_loop().time() + self.window_s
        while rows < self.max_rows:
            left = deadline - asyncio.get_running_loop().time()
            try:
                item = queue.get_nowait() if left <= 0 else await asyncio.wait_for(queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            items.append(item)
            rows += item.frame.height
        return items

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = await self._collect(queue)
            groups: dict[int, list[_Item]] = {}
            for item in items:  # during a swap, requests hold different predictors
                groups.setdefault(id(item.predictor), []).append(item)
            for group in groups.values():
                await self._execute(group)

    async def _execute(self, items: list[_Item]) -> None:
        live = [i for i in items if not i.future.done()]
        if not live:
            return
        predictor = live[0].predictor
        heights = [i.frame.height for i in live]
        # Booking features never read shipment_id; unique internal ids let requests share ids.
        frame = pl.concat([i.frame for i in live], how="vertical_relaxed").with_columns(
            pl.format("b{}", pl.int_range(pl.len())).alias("shipment_id")
        )
        if self.metrics is not None:
            self.metrics.batch_rows.observe(frame.height)
        try:
            out = await asyncio.to_thread(predictor.predict_shipments, frame)
        except ValueError as exc:
            if len(live) > 1:  # let each request get its own error
                for item in live:
                    await self._execute([item])
                return
            _settle(live[0].future, exc=_unprocessable(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            for item in live:
                _settle(item.future, exc=exc)
            return
        offset = 0
        for item, h in zip(live, heights, strict=True):
            part = out.slice(offset, h).with_columns(item.frame.get_column("shipment_id"))
            _settle(item.future, result=part)
            offset += h


def _settle(
    future: asyncio.Future[pl.DataFrame],
    result: pl.DataFrame | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


# ---------------------------------------------------------------------------------------------------------
# Dependencies (async: FastAPI would run plain functions in its thread pool, a GIL hop per request)
# ---------------------------------------------------------------------------------------------------------
_api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


async def get_settings(request: Request) -> ApiSettings:
    """The app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_predictor(request: Request) -> Predictor:
    """The Predictor being served (503 while none is loaded)."""
    predictor = request.app.state.holder.predictor
    if predictor is None:
        raise HTTPException(status_code=503, detail="models are not loaded yet")
    return predictor  # type: ignore[no-any-return]


async def require_api_key(
    request: Request, key: Annotated[str | None, Depends(_api_key_scheme)] = None
) -> None:
    """401 unless the request carries a configured API key (or authentication is off)."""
    settings: ApiSettings = request.app.state.settings
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


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]


# ---------------------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------------------
ops = APIRouter(tags=["operations"])
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@ops.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@ops.get("/readyz", summary="Readiness", responses={503: {"description": "models not loaded"}})
async def readyz(request: Request, response: Response) -> dict[str, Any]:
    """Ready when models are loaded."""
    holder: ModelHolder = request.app.state.holder
    if holder.predictor is None:
        response.status_code = 503
        return {"status": "loading", "error": holder.last_error}
    return {"status": "ready", "model_version": holder.predictor.info.model_version}


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _json(payload: dict[str, Any], frame: pl.DataFrame, key: str) -> Response:
    """A JSON response with `frame` rows under `key` (Polars writes the rows; no per-row Python)."""
    head = json.dumps(payload)[:-1]
    body = f'{head}, "{key}": {frame.write_json()}}}' if payload else f'{{"{key}": {frame.write_json()}}}'
    return Response(body, media_type="application/json")


@v1.post(
    "/eta",
    response_model=EtaResponse,
    summary="ETA quantiles, p_late, customs risk and a promise date for one or many shipments",
    responses={401: {"description": "no or wrong API key"}, 413: {"description": "body too large"}},
)
async def eta(body: EtaRequest, request: Request, predictor: PredictorDep, settings: SettingsDep) -> Response:
    """Score open shipments; with `events`, also the in-transit remaining days after the latest scan."""
    if len(body.shipments) > settings.max_batch:
        raise _unprocessable(f"body.shipments: at most {settings.max_batch} shipments per request")
    if body.events and len(body.events) > settings.max_events:
        raise _unprocessable(f"body.events: at most {settings.max_events} events per request")
    frame = shipments_frame(body.shipments)
    try:
        if body.events:
            out = await asyncio.to_thread(
                predictor.predict_shipments, frame, events_frame(body.events), as_of=body.as_of
            )
        else:
            out = await request.app.state.batcher.score(predictor, frame)
    except ValueError as exc:
        raise _unprocessable(str(exc)) from exc
    request.app.state.metrics.rows.labels("/v1/eta").inc(out.height)
    request.scope.setdefault("state", {})["rows"] = out.height
    info = predictor.info
    return _json({"model_version": info.model_version, "data_version": info.data_version}, out, "predictions")


@v1.post(
    "/route",
    response_model=RouteResponse,
    summary="Ranked ways to ship an order: mode, carrier or warehouse, cost, ETA, P(late)",
)
async def route(body: RouteRequest, request: Request, predictor: PredictorDep) -> Response:
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
        raise _unprocessable(str(exc)) from exc
    request.app.state.metrics.rows.labels("/v1/route").inc(out.height)
    cols = list(RouteResponse.model_fields["options"].annotation.__args__[0].model_fields)  # type: ignore[union-attr]
    out = out.with_columns(pl.lit(None).alias(c) for c in cols if c not in out.columns).select(cols)
    return _json({"model_version": predictor.info.model_version}, out, "options")


def _latest_forecast(folder: Path) -> Path | None:
    files = sorted(folder.glob("*/forecast.parquet"), key=lambda p: p.parent.name)
    return files[-1] if files else None


@v1.get(
    "/forecast/{warehouse_id}/{sku_id}",
    response_model=ForecastResponse,
    summary="The latest weekly demand forecast (16 weeks, quantiles) of a SKU in a warehouse",
    responses={404: {"description": "no forecast yet, or none for this warehouse x SKU"}},
)
async def forecast(
    warehouse_id: Annotated[str, PathParam(min_length=1, max_length=32, pattern=_ID_PATTERN)],
    sku_id: Annotated[str, PathParam(min_length=1, max_length=32, pattern=_ID_PATTERN)],
    settings: SettingsDep,
) -> ForecastResponse:
    """Read from the newest `<forecasts_dir>/<YYYY-Www>/forecast.parquet`."""
    path = _latest_forecast(settings.forecasts_dir)
    if path is None:
        raise HTTPException(
            status_code=404,
            detail=f"no demand forecast in {settings.forecasts_dir}: run the weekly demand forecast first",
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
    points = rows.select(
        "horizon", "week_start", "demand_mean", "demand_q50", "demand_q80", "demand_q90", "demand_q95"
    ).to_dicts()
    return ForecastResponse(
        warehouse_id=warehouse_id,
        sku_id=sku_id,
        forecast_week=str(first.get("forecast_week") or path.parent.name),
        cutoff_date=first.get("cutoff_date"),
        volume_class=None if first.get("volume_class") is None else str(first["volume_class"]),
        model_version=first.get("model_version"),
        data_version=first.get("data_version"),
        points=points,  # type: ignore[arg-type]
    )


@v1.get("/models", response_model=ModelsResponse, summary="Model, data and snapshot versions being served")
async def models(predictor: PredictorDep) -> ModelsResponse:
    """What is being served."""
    info = predictor.info
    return ModelsResponse(
        model_version=info.model_version,
        source=info.source,
        tasks=info.tasks,
        data_version=info.data_version,
        snapshot_version=info.snapshot_version,
        snapshot_as_of=info.snapshot_as_of,
        loaded_at=info.loaded_at,
    )


@v1.post("/admin/reload", summary="Reload the models now (hot swap)", tags=["operations"])
async def reload_models(request: Request) -> dict[str, Any]:
    """Load the current model source beside the served models and swap them in."""
    holder: ModelHolder = request.app.state.holder
    swapped = await holder.reload(force=True)
    if holder.predictor is None:
        raise HTTPException(status_code=503, detail=f"models could not be loaded: {holder.last_error}")
    return {
        "swapped": swapped,
        "model_version": holder.predictor.info.model_version,
        "error": holder.last_error,
    }


# ---------------------------------------------------------------------------------------------------------
# App factory
# ---------------------------------------------------------------------------------------------------------
def create_app(
    settings: ApiSettings,
    *,
    loader: Loader = load_predictor,
    versioner: Callable[[ApiSettings], str] = source_version,
) -> FastAPI:
    """The API around the models `settings` point at; they are loaded in the lifespan, not here.

    Args:
        settings: API settings (keys, limits, model source, poll interval).
        loader: builds the Predictor (default: `load_predictor`).
        versioner: fingerprints the model source for hot swap (default: `source_version`).
    """
    metrics = ApiMetrics()
    holder = ModelHolder(settings, loader, versioner, metrics)
    batcher = MicroBatcher(settings.batch_window_ms / 1000, settings.batch_max_rows, metrics)

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
    app.include_router(ops)
    app.include_router(v1)
    app.add_middleware(RequestLog, metrics=metrics)  # type: ignore[arg-type]
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)  # type: ignore[arg-type]
    return app


def app_from_env() -> FastAPI:
    """`create_app(ApiSettings())`: the factory `transitcast serve` gives uvicorn."""
    return create_app(ApiSettings())
