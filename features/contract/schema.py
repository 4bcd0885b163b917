"""Stage: contract. The canonical tables every source is mapped to, in code.

Reads and writes nothing. Every other stage imports its dtypes, vocabularies and table specs from here:
the simulator and the adapters write these columns, ingest validates against them, feature builders
read them. Column suffixes carry units and types (`_id`, `_at` UTC timestamp, `_date`, `_days`, `_kg`,
`_usd`, `_country` ISO 3166-1 alpha-2, `is_`/`has_` booleans).

A table is a `TableSpec`: its columns (dtype, required or optional, nullable, unit, description, example),
its key, and its row rules (see `features.contract.rules`). `docs/data-contract.md` is written from these
specs. The vocabularies (modes, statuses, events, ...) are declared in `features.contract.vocabularies`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import polars as pl

from features.contract.vocabularies import (
    CUSTOMS_OUTCOMES,
    EVENT_RANK,
    EVENT_TYPES,
    INCOTERMS,
    MODES,
    NOT_SHIPPED_STATUSES,
    REPLENISHMENT_MODES,
    SHIPMENT_MODES,
    SHIPMENT_STATUSES,
    TERMINAL_EVENTS,
    UNDELIVERED_STATUSES,
    CustomsOutcome,
    EventType,
    Incoterm,
    Mode,
    ShipmentStatus,
)

# The vocabularies are declared in `features.contract.vocabularies`; they are re-exported here because
# every table spec below uses them.
__all__ = [
    "CUSTOMS_OUTCOMES",
    "EVENT_RANK",
    "EVENT_TYPES",
    "INCOTERMS",
    "MODES",
    "SHIPMENT_MODES",
    "REPLENISHMENT_MODES",
    "SHIPMENT_STATUSES",
    "TERMINAL_EVENTS",
    "TABLES",
    "TABLE_ORDER",
    "UTC",
    "ColumnSpec",
    "TableName",
    "TableSpec",
    "CustomsOutcome",
    "EventType",
    "Incoterm",
    "Mode",
    "ShipmentStatus",
    "empty_frame",
    "table_spec",
]

UTC: Final = "UTC"
TIMESTAMP: Final = pl.Datetime("us", UTC)

TableName = Literal[
    "shipments",
    "shipment_events",
    "customs_declarations",
    "warehouse_sales",
    "replenishments",
    "skus",
    "warehouses",
    "lanes",
]


# ---------------------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnSpec:
    """One contract column.

    Attributes:
        name: column name, with its unit/type suffix.
        dtype: the exact Polars dtype after ingest.
        description: what the column means, for users mapping their own data.
        example: an example value as it would appear in a CSV file.
        required: the raw file must contain the column. An optional column may be left out: a nullable one
            is then added as nulls; a non-nullable one (a business column many sources lack, such as
            `carrier` or `hs_code`) stays absent from the validated table, and the features that read it
            are not built (never a constant standing in for data). When present, it keeps all its rules.
        nullable: a null value is allowed.
        unit: unit of measure, if any.
    """

    name: str
    dtype: pl.DataType
    description: str
    example: str
    required: bool = True
    nullable: bool = False
    unit: str = ""

    @property
    def omittable(self) -> bool:
        """The column may be left out, and then stays absent (optional and not nullable)."""
        return not self.required and not self.nullable


@dataclass(frozen=True)
class TableSpec:
    """One contract table: columns, key and the names of its row rules.

    Attributes:
        name: table name, also the raw file stem (`shipments.csv`, `shipments/*.parquet`, ...).
        grain: what one row is.
        columns: the contract columns in output order.
        key: columns that identify a row; duplicates are quarantined (first occurrence kept).
        sort_by: output order, so that re-ingesting gives byte-identical files.
        foreign_keys: (column, parent table, parent column) checked when the parent table is ingested too.
        passthrough_prefix: extra source-specific columns with this prefix are kept as strings.
    """

    name: TableName
    grain: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    sort_by: tuple[str, ...]
    foreign_keys: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)
    passthrough_prefix: str | None = None

    @property
    def schema(self) -> pl.Schema:
        """The output schema (contract columns only)."""
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns that a raw file must contain."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def omittable_columns(self) -> tuple[str, ...]:
        """Optional columns that stay absent when a source leaves them out (see `ColumnSpec.required`)."""
        return tuple(c.name for c in self.columns if c.omittable)

    def for_columns(self, present: Iterable[str]) -> TableSpec:
        """This spec without the omittable columns absent from `present` (the spec a source's file meets)."""
        names = set(present)
        kept = tuple(c for c in self.columns if not c.omittable or c.name in names)
        return self if len(kept) == len(self.columns) else replace(self, columns=kept)

    def column(self, name: str) -> ColumnSpec:
        """The spec of one column (KeyError if unknown)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, dtype: pl.DataType, description: str, example: str, **kw: object) -> ColumnSpec:
    return ColumnSpec(name, dtype, description, example, **kw)  # type: ignore[arg-type]


_OPT = {"required": False, "nullable": True}
_BUSINESS = {"required": False}  # may be left out by a source; when present, every value is set

SHIPMENTS = TableSpec(
    name="shipments",
    grain="one parcel or consignment sent by a seller to a buyer",
    columns=(
        _c("shipment_id", pl.String(), "unique shipment (tracking) id", "SH00000001"),
        _c("created_at", TIMESTAMP, "order booked with the carrier (UTC)", "2025-03-01T08:15:00Z"),
        _c("origin_country", pl.String(), "ISO-2 country the parcel leaves from", "CN"),
        _c("origin_hub", pl.String(), "export hub / city code", "SZX"),
        _c("destination_country", pl.String(), "ISO-2 destination country", "US"),
        _c("destination_region", pl.String(), "region/state inside the destination", "US-CA"),
        _c(
            "mode",
            Mode,
            f"logistics mode, one of {', '.join(SHIPMENT_MODES)} (or {'/'.join(REPLENISHMENT_MODES)})",
            "dedicated_line",
        ),
        _c("carrier", pl.String(), "carrier or line operator", "YunExpress", **_BUSINESS),
        _c("weight_kg", pl.Float64(), "chargeable weight", "0.42", unit="kg", **_BUSINESS),
        _c("declared_value_usd", pl.Float64(), "customs declared value", "23.50", unit="USD", **_BUSINESS),
        _c("hs_code", pl.String(), "6-digit Harmonized System code", "851830", **_BUSINESS),
        _c("item_count", pl.Int32(), "items in the parcel (>= 1)", "2", **_BUSINESS),
        _c("incoterm", Incoterm, "who pays duties: DDP (seller) or DAP/DDU (buyer), ...", "DDP", **_BUSINESS),
        _c(
            "promised_date",
            pl.Date(),
            "latest delivery date promised to the buyer, in the destination's local calendar",
            "2025-03-12",
        ),
        _c("shipping_cost_usd", pl.Float64(), "freight paid to the carrier", "4.10", unit="USD", **_BUSINESS),
        _c(
            "delivered_at",
            TIMESTAMP,
            "delivery scan (UTC); null while open and when "
            + ", ".join((*UNDELIVERED_STATUSES, *NOT_SHIPPED_STATUSES)),
            "2025-03-10T14:02:00Z",
            nullable=True,
        ),
        _c("status", ShipmentStatus, "one of " + ", ".join(SHIPMENT_STATUSES), "delivered"),
        _c("seller_id", pl.String(), "seller (merchant) id", "S0042", **_OPT),
        _c("sku_id", pl.String(), "main SKU in the parcel", "SKU0007", **_OPT),
        _c(
            "warehouse_id",
            pl.String(),
            "overseas warehouse that fulfilled it (mode overseas_warehouse)",
            "WH-US-LAX",
            **_OPT,
        ),
    ),
    key=("shipment_id",),
    sort_by=("created_at", "shipment_id"),
)

SHIPMENT_EVENTS = TableSpec(
    name="shipment_events",
    grain="one milestone scan of one shipment",
    columns=(
        _c("shipment_id", pl.String(), "the shipment scanned (must exist in shipments)", "SH00000001"),
        _c("event", EventType, "milestone, one of " + ", ".join(EVENT_TYPES), "linehaul_departed"),
        _c("event_at", TIMESTAMP, "scan time (UTC)", "2025-03-03T22:40:00Z"),
        _c("country", pl.String(), "ISO-2 country of the scan", "CN"),
        _c("location", pl.String(), "facility / city of the scan", "SZX", **_OPT),
        _c(
            "leg_id",
            pl.String(),
            "leg of a multi-leg shipment (parallel inbound legs, hops); scans are ordered within shipment x "
            "leg; null or absent: one chain",
            "L1",
            **_OPT,
        ),
    ),
    key=("shipment_id", "leg_id", "event", "event_at"),
    sort_by=("shipment_id", "event_at", "event", "leg_id"),
    foreign_keys=(("shipment_id", "shipments", "shipment_id"),),
)

CUSTOMS_DECLARATIONS = TableSpec(
    name="customs_declarations",
    grain="one import declaration",
    columns=(
        _c("declaration_id", pl.String(), "unique declaration id", "D000000001"),
        _c(
            "shipment_id",
            pl.String(),
            "shipment declared (null for declarations without one)",
            "SH00000001",
            nullable=True,
        ),
        _c("declared_at", TIMESTAMP, "declaration lodged (UTC)", "2025-03-06T03:00:00Z"),
        _c("destination_country", pl.String(), "ISO-2 importing country", "US"),
        _c("hs_code", pl.String(), "6-digit HS code declared", "851830"),
        _c("declared_value_usd", pl.Float64(), "declared customs value", "23.50", unit="USD"),
        _c("is_inspected", pl.Boolean(), "the declaration was selected for inspection / held", "false"),
        _c("outcome", CustomsOutcome, "one of " + ", ".join(CUSTOMS_OUTCOMES), "released"),
        _c(
            "released_at",
            TIMESTAMP,
            "release from customs (UTC); null while held or unknown",
            "2025-03-06T09:30:00Z",
            nullable=True,
        ),
        _c("origin_country", pl.String(), "ISO-2 country of origin of the goods", "CN", **_OPT),
        _c("duty_usd", pl.Float64(), "duties and taxes assessed", "0.0", unit="USD", **_OPT),
        _c("net_mass_kg", pl.Float64(), "net mass of the goods", "0.40", unit="kg", **_OPT),
        _c("tax_rate_pct", pl.Float64(), "tariff rate applied", "8.0", unit="%", **_OPT),
        _c("importer_id", pl.String(), "importer of record", "I0001", **_OPT),
        _c("declarant_id", pl.String(), "customs broker / declarant", "B0001", **_OPT),
        _c("seller_id", pl.String(), "overseas seller", "S0042", **_OPT),
        _c("courier_id", pl.String(), "express courier (null when not a courier shipment)", "C01", **_OPT),
        _c("office_id", pl.String(), "customs office", "LAX1", **_OPT),
        _c("is_fraud", pl.Boolean(), "inspection found under-declaration / fraud (label)", "false", **_OPT),
        _c(
            "fraud_severity",
            pl.Int8(),
            "0 none, 1 fraud, 2 critical fraud (label, never a feature)",
            "0",
            **_OPT,
        ),
    ),
    key=("declaration_id",),
    sort_by=("declared_at", "declaration_id"),
    foreign_keys=(("shipment_id", "shipments", "shipment_id"),),
    passthrough_prefix="attr_",
)

WAREHOUSE_SALES = TableSpec(
    name="warehouse_sales",
    grain="one SKU in one overseas warehouse on one day",
    columns=(
        _c("date", pl.Date(), "calendar day (warehouse local date)", "2025-03-01"),
        _c("warehouse_id", pl.String(), "overseas warehouse", "WH-US-LAX"),
        _c("sku_id", pl.String(), "stock keeping unit", "SKU0007"),
        _c(
            "units_sold",
            pl.Int64(),
            "units shipped to buyers that day (censored by stock)",
            "3",
            unit="units",
        ),
        _c(
            "on_hand_end",
            pl.Int64(),
            "units on hand at the end of the day",
            "41",
            unit="units",
            nullable=True,
        ),
        _c("is_stockout", pl.Boolean(), "the SKU ran out during the day (sales are censored)", "false"),
        _c("price_usd", pl.Float64(), "selling price that day", "19.99", unit="USD", **_OPT),
        _c("is_promo", pl.Boolean(), "a promotion ran that day", "false", **_OPT),
    ),
    key=("date", "warehouse_id", "sku_id"),
    sort_by=("warehouse_id", "sku_id", "date"),
    foreign_keys=(("sku_id", "skus", "sku_id"), ("warehouse_id", "warehouses", "warehouse_id")),
)

REPLENISHMENTS = TableSpec(
    name="replenishments",
    grain="one inbound bulk shipment of one SKU to one overseas warehouse",
    columns=(
        _c("replenishment_id", pl.String(), "unique replenishment id", "R000001"),
        _c("warehouse_id", pl.String(), "receiving warehouse", "WH-US-LAX"),
        _c("sku_id", pl.String(), "SKU replenished", "SKU0007"),
        _c("units", pl.Int64(), "units shipped (>= 1)", "600", unit="units"),
        _c("mode", Mode, "air, rail, sea or road", "sea"),
        _c("shipped_at", TIMESTAMP, "left the origin (UTC)", "2025-01-10T00:00:00Z"),
        _c(
            "received_at",
            TIMESTAMP,
            "received into stock (UTC); null while open",
            "2025-02-14T00:00:00Z",
            nullable=True,
        ),
        _c("origin_hub", pl.String(), "origin hub / port", "SZX", **_OPT),
        _c("customs_days", pl.Float64(), "import clearance time", "2.5", unit="days", **_OPT),
        _c("freight_cost_usd", pl.Float64(), "freight paid", "310.0", unit="USD", **_OPT),
    ),
    key=("replenishment_id",),
    sort_by=("shipped_at", "replenishment_id"),
    foreign_keys=(("sku_id", "skus", "sku_id"), ("warehouse_id", "warehouses", "warehouse_id")),
)

SKUS = TableSpec(
    name="skus",
    grain="one stock keeping unit",
    columns=(
        _c("sku_id", pl.String(), "stock keeping unit", "SKU0007"),
        _c("category", pl.String(), "product category", "electronics"),
        _c("hs_code", pl.String(), "6-digit HS code", "851830"),
        _c("unit_cost_usd", pl.Float64(), "landed purchase cost per unit", "6.20", unit="USD"),
        _c("price_usd", pl.Float64(), "list selling price", "19.99", unit="USD"),
        _c("weight_kg", pl.Float64(), "unit weight", "0.35", unit="kg", **_OPT),
        _c("case_pack", pl.Int32(), "units per case (order multiple)", "12", **_OPT),
        _c("min_order_units", pl.Int32(), "minimum order quantity", "48", **_OPT),
        _c("launch_date", pl.Date(), "first day on sale", "2024-06-01", **_OPT),
    ),
    key=("sku_id",),
    sort_by=("sku_id",),
)

WAREHOUSES = TableSpec(
    name="warehouses",
    grain="one overseas warehouse",
    columns=(
        _c("warehouse_id", pl.String(), "overseas warehouse", "WH-US-LAX"),
        _c("country", pl.String(), "ISO-2 country of the warehouse", "US"),
        _c("capacity_units", pl.Int64(), "storage capacity", "250000", unit="units"),
        _c("region", pl.String(), "region/state", "US-CA", **_OPT),
        _c(
            "holding_cost_usd_per_unit_week",
            pl.Float64(),
            "storage cost per unit and week",
            "0.05",
            unit="USD",
            **_OPT,
        ),
    ),
    key=("warehouse_id",),
    sort_by=("warehouse_id",),
)

LANES = TableSpec(
    name="lanes",
    grain="one contracted lane: origin hub x destination x mode x carrier",
    columns=(
        _c("origin_hub", pl.String(), "export hub / port", "SZX"),
        _c("origin_country", pl.String(), "ISO-2 country of the hub", "CN"),
        _c("destination_country", pl.String(), "ISO-2 destination", "US"),
        _c("mode", Mode, "logistics mode", "express"),
        _c("carrier", pl.String(), "carrier", "DHL"),
        _c(
            "contract_transit_days",
            pl.Float64(),
            "transit time quoted in the contract (0: same day)",
            "5",
            unit="days",
        ),
        _c("base_rate_usd", pl.Float64(), "fixed fee per parcel", "8.0", unit="USD"),
        _c("per_kg_rate_usd", pl.Float64(), "rate per chargeable kg", "9.5", unit="USD/kg"),
    ),
    key=("origin_hub", "destination_country", "mode", "carrier"),
    sort_by=("origin_hub", "destination_country", "mode", "carrier"),
)

TABLES: Final[dict[str, TableSpec]] = {
    t.name: t
    for t in (
        SHIPMENTS,
        SHIPMENT_EVENTS,
        CUSTOMS_DECLARATIONS,
        WAREHOUSE_SALES,
        REPLENISHMENTS,
        SKUS,
        WAREHOUSES,
        LANES,
    )
}
# Parents before children, so foreign keys are checked against validated parents.
TABLE_ORDER: Final[tuple[str, ...]] = (
    "skus",
    "warehouses",
    "lanes",
    "shipments",
    "shipment_events",
    "customs_declarations",
    "warehouse_sales",
    "replenishments",
)


def table_spec(name: str) -> TableSpec:
    """The spec of a contract table.

    Raises:
        KeyError: with the list of known tables when `name` is not one.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; the contract tables are: {', '.join(TABLES)}") from None


def empty_frame(name: str) -> pl.DataFrame:
    """An empty frame with the exact contract schema of table `name`."""
    return pl.DataFrame(schema=table_spec(name).schema)
