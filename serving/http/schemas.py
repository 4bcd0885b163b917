"""Stage: serving. Request and response models of the HTTP API, with limits and OpenAPI examples.

Pure Pydantic; reads and writes nothing. Requests are validated here (lengths, ranges, vocabularies of the
data contract, time-zone-aware timestamps, a bounded calendar range), so that a bad request gets a 422
naming the field before any model runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Self, get_args

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from features.contract.vocabularies import EventName, IncotermName, ModeName

__all__ = [
    "EVENT_TYPES",
    "INCOTERMS",
    "MODES",
    "EtaPrediction",
    "EtaRequest",
    "EtaResponse",
    "EventIn",
    "ForecastPoint",
    "ForecastResponse",
    "ModelsResponse",
    "OrderIn",
    "RouteOption",
    "RouteRequest",
    "RouteResponse",
    "RoutingOptions",
    "ShipmentIn",
    "StockIn",
    "events_frame",
    "orders_frame",
    "shipments_frame",
]

# The contract's vocabularies as Literal types for the OpenAPI schema, declared once in
# features.contract.vocabularies.
Mode = ModeName
IncotermT = IncotermName
EventType = EventName
MODES: tuple[str, ...] = get_args(Mode)
INCOTERMS: tuple[str, ...] = get_args(IncotermT)
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_MAX_PROMISE_DAYS = 365
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:|/-]*$")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
HsCode = Annotated[str, Field(pattern=r"^[0-9]{6,10}$", description="HS code, 6 to 10 digits")]


def _in_range(value: dt.datetime, field: str) -> dt.datetime:
    if not _EARLIEST <= value < _LATEST:
        raise ValueError(f"{field} must lie in [2000-01-01, 2100-01-01) UTC")
    return value.astimezone(dt.UTC)


def _check_promise(created_at: dt.datetime, promised: dt.date) -> None:
    days = (promised - created_at.date()).days
    if not 0 <= days <= _MAX_PROMISE_DAYS:
        raise ValueError(f"promised_date must be 0 to {_MAX_PROMISE_DAYS} days after created_at's date")


class ShipmentIn(BaseModel):
    """One open shipment, in the data contract's `shipments` columns."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [
                {
                    "shipment_id": "SH-DEMO-1",
                    "created_at": "2025-11-28T09:30:00Z",
                    "origin_country": "CN",
                    "origin_hub": "SZX",
                    "destination_country": "US",
                    "destination_region": "US-CA",
                    "mode": "dedicated_line",
                    "carrier": "YunExpress",
                    "weight_kg": 0.42,
                    "declared_value_usd": 23.5,
                    "hs_code": "851830",
                    "item_count": 1,
                    "incoterm": "DDP",
                    "promised_date": "2025-12-12",
                }
            ]
        },
    )

    shipment_id: Id
    created_at: AwareDatetime
    origin_country: Country = "CN"
    origin_hub: Code
    destination_country: Country
    destination_region: Code | None = None
    mode: Mode
    carrier: Code
    weight_kg: float = Field(gt=0, le=30_000)
    declared_value_usd: float = Field(ge=0, le=10_000_000)
    hs_code: HsCode
    item_count: int = Field(default=1, ge=1, le=100_000)
    incoterm: IncotermT = "DDP"
    promised_date: dt.date

    @model_validator(mode="after")
    def _check_dates(self) -> Self:
        self.created_at = _in_range(self.created_at, "created_at")
        _check_promise(self.created_at, self.promised_date)
        return self


class EventIn(BaseModel):
    """One milestone scan of a shipment of the same request."""

    model_config = ConfigDict(**_STRICT)

    shipment_id: Id
    event: EventType
    event_at: AwareDatetime
    country: Country

    @model_validator(mode="after")
    def _check_time(self) -> Self:
        self.event_at = _in_range(self.event_at, "event_at")
        return self


class EtaRequest(BaseModel):
    """Shipments to score and, optionally, their milestone scans (for the in-transit ETA)."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [{"shipments": [ShipmentIn.model_config["json_schema_extra"]["examples"][0]]}]  # type: ignore[index]
        },
    )

    shipments: list[ShipmentIn] = Field(min_length=1, max_length=100_000)
    events: list[EventIn] | None = Field(default=None, max_length=1_000_000)
    as_of: AwareDatetime | None = Field(
        default=None, description="scoring moment of the in-transit ETA (default: latest input time)"
    )

    @model_validator(mode="after")
    def _check_refs(self) -> Self:
        ids = [s.shipment_id for s in self.shipments]
        seen: set[str] = set()
        for i, sid in enumerate(ids):
            if sid in seen:
                raise ValueError(f"shipments[{i}].shipment_id {sid!r} is duplicated")
            seen.add(sid)
        for i, e in enumerate(self.events or []):
            if e.shipment_id not in seen:
                raise ValueError(f"events[{i}].shipment_id {e.shipment_id!r} is not among the shipments")
        if self.as_of is not None:
            self.as_of = _in_range(self.as_of, "as_of")
        return self


class EtaPrediction(BaseModel):
    """Predictions for one shipment (days are counted from `created_at`)."""

    shipment_id: str
    eta_days_q50: float | None
    eta_days_q80: float | None
    eta_days_q95: float | None
    p_late: float | None = Field(description="P(delivered after promised_date)")
    p_inspection: float | None = Field(description="P(import customs inspection)")
    clearance_days_q50: float | None
    clearance_days_q80: float | None
    clearance_days_q95: float | None
    remaining_days_q50: float | None = Field(description="in-transit: days left after the latest scan")
    remaining_days_q80: float | None
    remaining_days_q95: float | None
    promise_days: float | None
    promise_date: dt.date | None = Field(description="date to quote for the configured on-time target")
    is_unknown_lane: bool = Field(description="no history and no contract for the lane: fallback used")
    model_version: str


class EtaResponse(BaseModel):
    """Predictions in the order of the request's shipments."""

    model_version: str
    data_version: str | None
    predictions: list[EtaPrediction]


class OrderIn(BaseModel):
    """An order to route (see `serving.decisions.routing.ORDER_COLUMNS`)."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [
                {
                    "order_id": "ORD-1",
                    "created_at": "2025-11-28T09:30:00Z",
                    "origin_hub": "SZX",
                    "destination_country": "US",
                    "weight_kg": 0.8,
                    "declared_value_usd": 35.0,
                    "promised_date": "2025-12-12",
                    "hs_code": "851830",
                }
            ]
        },
    )

    order_id: Id
    created_at: AwareDatetime
    origin_hub: Code
    destination_country: Country
    weight_kg: float = Field(gt=0, le=30_000)
    declared_value_usd: float = Field(ge=0, le=10_000_000)
    promised_date: dt.date
    sku_id: Code | None = None
    units: int | None = Field(default=None, ge=1, le=100_000)
    hs_code: HsCode | None = None
    item_count: int = Field(default=1, ge=1, le=100_000)
    incoterm: IncotermT = "DDP"
    destination_region: Code | None = None

    @model_validator(mode="after")
    def _check_dates(self) -> Self:
        self.created_at = _in_range(self.created_at, "created_at")
        _check_promise(self.created_at, self.promised_date)
        return self


class StockIn(BaseModel):
    """Units on hand of a SKU in an overseas warehouse."""

    model_config = ConfigDict(**_STRICT)

    warehouse_id: Code
    sku_id: Code
    on_hand_units: int = Field(ge=0, le=100_000_000)


class RoutingOptions(BaseModel):
    """What the recommendation optimises (`serving.decisions.routing.RoutingConfig`)."""

    model_config = ConfigDict(**_STRICT)

    on_time_target: float = Field(default=0.9, gt=0, lt=1)
    late_penalty_usd: float = Field(default=15.0, ge=0, le=100_000)
    include_warehouse: bool = True


class RouteRequest(BaseModel):
    """Orders to route, optional warehouse stock, optional routing options."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [{"orders": [OrderIn.model_config["json_schema_extra"]["examples"][0]]}]  # type: ignore[index]
        },
    )

    orders: list[OrderIn] = Field(min_length=1, max_length=100)
    stock: list[StockIn] | None = Field(default=None, max_length=100_000)
    options: RoutingOptions = RoutingOptions()

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [o.order_id for o in self.orders]
        if len(set(ids)) != len(ids):
            raise ValueError("orders: order_id must be unique")
        return self


class RouteOption(BaseModel):
    """One way to ship an order, with its numbers."""

    order_id: str
    rank: int
    is_recommended: bool
    option_id: str
    source: str
    mode: str
    carrier: str | None
    origin_hub: str | None
    warehouse_id: str | None
    freight_usd: float | None
    duties_usd: float | None
    eta_days_q50: float | None
    eta_days_q80: float | None
    eta_days_q95: float | None
    days_to_promise: float | None
    p_late: float | None
    p_on_time: float | None
    late_cost_usd: float | None
    expected_cost_usd: float | None
    is_feasible: bool
    reason: str


class RouteResponse(BaseModel):
    """Ranked options per order (rank 1 is the recommendation)."""

    model_version: str
    options: list[RouteOption]


class ForecastPoint(BaseModel):
    """Weekly demand forecast at one horizon."""

    horizon: int
    week_start: dt.date
    demand_mean: float | None
    demand_q50: float | None
    demand_q80: float | None
    demand_q90: float | None
    demand_q95: float | None


class ForecastResponse(BaseModel):
    """The latest weekly demand forecast of a SKU in a warehouse."""

    warehouse_id: str
    sku_id: str
    forecast_week: str
    cutoff_date: dt.date | None
    volume_class: str | None
    model_version: str | None
    data_version: str | None
    points: list[ForecastPoint]


class ModelsResponse(BaseModel):
    """What is being served."""

    model_version: str
    source: str
    tasks: dict[str, str]
    data_version: str | None
    snapshot_version: str
    snapshot_as_of: dt.datetime
    loaded_at: dt.datetime


def shipments_frame(shipments: list[ShipmentIn]) -> pl.DataFrame:
    """Request shipments as a contract `shipments` frame (types cast by the Predictor)."""
    rows: list[dict[str, Any]] = [s.model_dump() for s in shipments]
    return pl.DataFrame(rows, schema=_SHIPMENT_SCHEMA, orient="row")


def events_frame(events: list[EventIn]) -> pl.DataFrame:
    """Request events as a contract `shipment_events` frame."""
    return pl.DataFrame(
        [e.model_dump() for e in events],
        schema={
            "shipment_id": pl.String,
            "event": pl.String,
            "event_at": pl.Datetime("us", "UTC"),
            "country": pl.String,
        },
        orient="row",
    )


_SHIPMENT_SCHEMA: dict[str, Any] = {
    "shipment_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "origin_country": pl.String,
    "origin_hub": pl.String,
    "destination_country": pl.String,
    "destination_region": pl.String,
    "mode": pl.String,
    "carrier": pl.String,
    "weight_kg": pl.Float64,
    "declared_value_usd": pl.Float64,
    "hs_code": pl.String,
    "item_count": pl.Int32,
    "incoterm": pl.String,
    "promised_date": pl.Date,
}


_ORDER_SCHEMA: dict[str, Any] = {
    "order_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "origin_hub": pl.String,
    "destination_country": pl.String,
    "weight_kg": pl.Float64,
    "declared_value_usd": pl.Float64,
    "promised_date": pl.Date,
    "sku_id": pl.String,
    "units": pl.Int64,
    "hs_code": pl.String,
    "item_count": pl.Int32,
    "incoterm": pl.String,
    "destination_region": pl.String,
}


def orders_frame(orders: list[OrderIn]) -> pl.DataFrame:
    """Request orders as the frame `serving.decisions.routing.recommend_routes` reads (HS code 000000 when absent)."""
    frame = pl.DataFrame([o.model_dump() for o in orders], schema=_ORDER_SCHEMA, orient="row")
    if frame["units"].null_count() == frame.height:
        frame = frame.drop("units")
    return frame.with_columns(pl.col("hs_code").fill_null("000000"))
