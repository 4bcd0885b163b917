"""Stage: serving. Request and response models of the HTTP API, with limits and OpenAPI examples.

Pure Pydantic; reads and writes nothing. The shipment, event and order models are derived from the data
contract (`serving.http.fields.request_model`): field names, types, vocabularies and required flags are the
contract's, so a bad request gets a 422 naming the field before any model runs. The contract's row rules
are then checked on the request's rows by `serving.online.inputs.check_rows`, as for a file in batch
scoring.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeAlias

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from features.contract.schema import TableSpec
from serving.http.fields import STRICT, request_model
from serving.online.inputs import (
    EARLIEST,
    EVENTS_SPEC,
    LATEST,
    MAX_PROMISE_DAYS,
    MAX_TEXT,
    SCORED_COLUMNS,
    SHIPMENTS_SPEC,
)

__all__ = [
    "EtaPrediction",
    "EtaRequest",
    "EtaResponse",
    "EventIn",
    "ForecastPoint",
    "ForecastResponse",
    "HealthResponse",
    "ModelsResponse",
    "ReadyResponse",
    "ReloadResponse",
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

Id = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:|/-]*$")]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]


def _in_range(value: dt.datetime, field: str) -> dt.datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{field} must lie in [2000-01-01, 2100-01-01) UTC")
    return value.astimezone(dt.UTC)


if TYPE_CHECKING:  # built at import from the contract: to a type checker, any model
    ShipmentIn: TypeAlias = Any
    EventIn: TypeAlias = Any
    OrderIn: TypeAlias = Any
else:
    ShipmentIn = request_model(
        "ShipmentIn",
        SHIPMENTS_SPEC,
        SCORED_COLUMNS,
        doc="One open shipment, in the data contract's `shipments` columns (`transitcast contract`).",
    )
    EventIn = request_model(
        "EventIn",
        EVENTS_SPEC,
        tuple(EVENTS_SPEC.schema),
        doc="One milestone scan of a shipment of the request, in the contract's `shipment_events` columns.",
    )


class EtaRequest(BaseModel):
    """Shipments to score and, optionally, their milestone scans (for the in-transit ETA)."""

    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={
            "examples": [{"shipments": [ShipmentIn.model_config["json_schema_extra"]["examples"][0]]}]
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


def _check_order_dates(order: Any) -> Any:
    order.created_at = _in_range(order.created_at, "created_at")
    days = (order.promised_date - order.created_at.date()).days
    if not 0 <= days <= MAX_PROMISE_DAYS:
        raise ValueError(f"promised_date must be 0 to {MAX_PROMISE_DAYS} days after created_at's date")
    return order


# Routing orders: shipment columns of the contract (see `serving.decisions.routing.ORDER_COLUMNS`).
_ORDER_REQUIRED = ("created_at", "origin_hub", "destination_country", "weight_kg", "declared_value_usd")
_ORDER_OPTIONAL = ("sku_id", "hs_code", "item_count", "incoterm", "destination_region")
if not TYPE_CHECKING:
    OrderIn = request_model(
        "OrderIn",
        SHIPMENTS_SPEC,
        (*_ORDER_REQUIRED, "promised_date", *_ORDER_OPTIONAL),
        doc="An order to route (see `serving.decisions.routing.ORDER_COLUMNS`).",
        required={
            **dict.fromkeys((*_ORDER_REQUIRED, "promised_date"), True),
            **dict.fromkeys(_ORDER_OPTIONAL, False),
        },
        defaults={"item_count": 1, "incoterm": "DDP"},
        extra_fields={
            "order_id": (Id, Field(description="unique order id", examples=["ORD-1"])),
            "units": (
                int | None,
                Field(
                    default=None,
                    ge=1,
                    le=100_000,
                    description="units the warehouse must have (default item_count)",
                ),
            ),
        },
        validators={"_check_dates": model_validator(mode="after")(_check_order_dates)},
    )


class StockIn(BaseModel):
    """Units on hand of a SKU in an overseas warehouse."""

    model_config = ConfigDict(**STRICT)

    warehouse_id: Code
    sku_id: Code
    on_hand_units: int = Field(ge=0, le=100_000_000)


class RoutingOptions(BaseModel):
    """What the recommendation optimises (`serving.decisions.routing.RoutingConfig`)."""

    model_config = ConfigDict(**STRICT)

    on_time_target: float = Field(default=0.9, gt=0, lt=1)
    late_penalty_usd: float = Field(default=15.0, ge=0, le=100_000)
    include_warehouse: bool = True


class RouteRequest(BaseModel):
    """Orders to route, optional warehouse stock, optional routing options."""

    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={
            "examples": [{"orders": [OrderIn.model_config["json_schema_extra"]["examples"][0]]}]
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


class HealthResponse(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class ReadyResponse(BaseModel):
    """Whether models are loaded (`ready`) or not yet (`loading`, with the last load error)."""

    status: Literal["ready", "loading"]
    model_version: str | None = None
    error: str | None = None


class ReloadResponse(BaseModel):
    """What a forced reload did: swapped in new models or kept the current ones (with the error)."""

    swapped: bool
    model_version: str
    error: str | None


def _request_schema(spec: TableSpec, columns: tuple[str, ...]) -> dict[str, pl.DataType]:
    """Dtypes of request fields as Polars reads them (vocabularies as text, cast by the contract's parser)."""
    return {c: pl.String() if isinstance(spec.schema[c], pl.Enum) else spec.schema[c] for c in columns}


_SHIPMENT_SCHEMA = _request_schema(SHIPMENTS_SPEC, SCORED_COLUMNS)
_EVENT_SCHEMA = _request_schema(EVENTS_SPEC, tuple(EVENTS_SPEC.schema))
_ORDER_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String(),
    "units": pl.Int64(),
    **_request_schema(SHIPMENTS_SPEC, (*_ORDER_REQUIRED, "promised_date", *_ORDER_OPTIONAL)),
}


def _frame(models: list[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame([m.model_dump() for m in models], schema=schema, orient="row")


def shipments_frame(shipments: list[Any]) -> pl.DataFrame:
    """Request shipments (`ShipmentIn`) as raw contract `shipments` rows (typed by `check_rows`)."""
    return _frame(shipments, _SHIPMENT_SCHEMA)


def events_frame(events: list[Any]) -> pl.DataFrame:
    """Request events (`EventIn`) as raw contract `shipment_events` rows (typed by `check_rows`)."""
    return _frame(events, _EVENT_SCHEMA)


def orders_frame(orders: list[Any]) -> pl.DataFrame:
    """Request orders as the frame `recommend_routes` reads (HS code 000000 when absent)."""
    frame = _frame(orders, _ORDER_SCHEMA)
    if frame["units"].null_count() == frame.height:
        frame = frame.drop("units")
    return frame.with_columns(pl.col("hs_code").fill_null("000000"))
