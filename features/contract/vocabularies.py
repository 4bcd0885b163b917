"""Stage: contract. Every categorical vocabulary of the data contract, declared once.

Reads and writes nothing. Each vocabulary is a `Literal` alias (so type checkers and the HTTP API's OpenAPI
schema see the allowed values), the tuple of its values (`get_args` of the alias, in declaration order) and
the fixed `pl.Enum` built from the tuple (so category codes are identical in training and serving). The
contract schema, the HTTP schemas, the decisions (routing, restock) and the simulator all import from here;
nothing restates a value list.

New values are appended at the end of a vocabulary so the codes of existing values never move.

Example:
    >>> SHIPMENT_MODES[:3], CROSS_BORDER_PARCEL_MODES == SHIPMENT_MODES[:3]
    (('postal', 'dedicated_line', 'express'), True)
    >>> Mode.categories.to_list()[-1]
    'road'
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import polars as pl

__all__ = [
    "CROSS_BORDER_PARCEL_MODES",
    "CUSTOMS_OUTCOMES",
    "DOMESTIC_MODE",
    "EVENT_RANK",
    "EVENT_TYPES",
    "INCOTERMS",
    "MODES",
    "NOT_SHIPPED_STATUSES",
    "REPLENISHMENT_MODES",
    "SHIPMENT_MODES",
    "SHIPMENT_STATUSES",
    "TERMINAL_EVENTS",
    "UNDELIVERED_STATUSES",
    "WAREHOUSE_INBOUND_MODES",
    "WAREHOUSE_MODE",
    "CrossBorderParcelModeName",
    "CustomsOutcome",
    "CustomsOutcomeName",
    "EventName",
    "EventType",
    "Incoterm",
    "IncotermName",
    "Mode",
    "ModeName",
    "ReplenishmentModeName",
    "ShipmentModeName",
    "ShipmentStatus",
    "ShipmentStatusName",
]

# ---------------------------------------------------------------------------------------------------------
# Logistics modes
# ---------------------------------------------------------------------------------------------------------
CrossBorderParcelModeName = Literal["postal", "dedicated_line", "express"]
"""Parcel modes that ship one order across a border (the routing options from the origin)."""
ShipmentModeName = Literal[
    CrossBorderParcelModeName,
    "overseas_warehouse",  # fulfilled from stock already in the destination country
    "domestic_parcel",  # a parcel that never crosses a border (origin country == destination country)
]
ReplenishmentModeName = Literal["air", "rail", "sea", "road"]
ModeName = Literal[ShipmentModeName, ReplenishmentModeName]

CROSS_BORDER_PARCEL_MODES: Final[tuple[str, ...]] = get_args(CrossBorderParcelModeName)
SHIPMENT_MODES: Final[tuple[str, ...]] = get_args(ShipmentModeName)
REPLENISHMENT_MODES: Final[tuple[str, ...]] = get_args(ReplenishmentModeName)
WAREHOUSE_MODE: Final[ShipmentModeName] = "overseas_warehouse"
DOMESTIC_MODE: Final[ShipmentModeName] = "domestic_parcel"
# Inbound bulk modes the restock plan compares by default, slowest (cheapest) first; road has no lane from
# the origin to most overseas warehouses.
WAREHOUSE_INBOUND_MODES: Final[tuple[ReplenishmentModeName, ...]] = ("sea", "rail", "air")
Mode = pl.Enum([*SHIPMENT_MODES, *REPLENISHMENT_MODES])
MODES: Final[tuple[str, ...]] = get_args(ModeName)

# ---------------------------------------------------------------------------------------------------------
# Shipment status
# ---------------------------------------------------------------------------------------------------------
ShipmentStatusName = Literal[
    "in_transit",
    "delivered",
    "returned",
    "lost",
    "cancelled",  # the order was cancelled before it shipped: no transit, no lateness, not a target
]
SHIPMENT_STATUSES: Final[tuple[str, ...]] = get_args(ShipmentStatusName)
UNDELIVERED_STATUSES: Final[tuple[ShipmentStatusName, ...]] = ("returned", "lost")
"""Shipped but never reached the buyer: late by definition."""
NOT_SHIPPED_STATUSES: Final[tuple[ShipmentStatusName, ...]] = ("cancelled",)
"""Never shipped: neither on time nor late, left out of every target and of the punctuality history."""
ShipmentStatus = pl.Enum(list(SHIPMENT_STATUSES))

# ---------------------------------------------------------------------------------------------------------
# Incoterms
# ---------------------------------------------------------------------------------------------------------
IncotermName = Literal["DDP", "DAP", "DDU", "DPU", "EXW", "FCA", "CPT", "CIP", "FAS", "FOB", "CFR", "CIF"]
INCOTERMS: Final[tuple[str, ...]] = get_args(IncotermName)
Incoterm = pl.Enum(list(INCOTERMS))

# ---------------------------------------------------------------------------------------------------------
# Milestone events
# ---------------------------------------------------------------------------------------------------------
EventName = Literal[
    "picked_up",
    "arrived_origin_hub",
    "export_cleared",
    "linehaul_departed",
    "linehaul_arrived",
    "import_customs_entered",
    "customs_held",
    "customs_released",
    "last_mile_received",
    "out_for_delivery",
    "delivery_failed",
    "delivered",
    "returned",
    "lost",
]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventName)
# Milestones in the order a parcel can reach them. Equal ranks may alternate (a failed delivery attempt is
# followed by another out-for-delivery scan). A terminal event ends the history of its leg.
# A test checks that its keys are exactly `EVENT_TYPES`, in order.
EVENT_RANK: Final[dict[str, int]] = {
    "picked_up": 0,
    "arrived_origin_hub": 1,
    "export_cleared": 2,
    "linehaul_departed": 3,
    "linehaul_arrived": 4,
    "import_customs_entered": 5,
    "customs_held": 6,
    "customs_released": 7,
    "last_mile_received": 8,
    "out_for_delivery": 9,
    "delivery_failed": 9,
    "delivered": 10,
    "returned": 10,
    "lost": 10,
}
TERMINAL_EVENTS: Final[tuple[EventName, ...]] = ("delivered", "returned", "lost")
EventType = pl.Enum(list(EVENT_TYPES))

# ---------------------------------------------------------------------------------------------------------
# Customs outcomes
# ---------------------------------------------------------------------------------------------------------
CustomsOutcomeName = Literal["released", "duty_reassessed", "held", "seized", "returned"]
CUSTOMS_OUTCOMES: Final[tuple[str, ...]] = get_args(CustomsOutcomeName)
CustomsOutcome = pl.Enum(list(CUSTOMS_OUTCOMES))
