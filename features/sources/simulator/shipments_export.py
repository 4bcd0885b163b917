"""Stage: simulate. The realised shipment tables, as a forwarder's export at "now" shows them.

Reads nothing. `realised_tables` turns the bookings and their drawn timelines into the raw contract tables
`shipments`, `shipment_events` (scans up to "now", some dropped), `customs_declarations` (parcels that
reached import customs) and `lanes` (every contracted lane with its contract days and rates). A domestic
world relabels its warehouse parcels with the contract's domestic mode and keeps only its own lanes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from features.contract.schema import SHIPMENT_MODES, SHIPMENT_STATUSES, TABLES
from features.sources.simulator.bookings import Bookings
from features.sources.simulator.bookings_lanes import HUB_RATE_FACTOR, contract_table, lane_index
from features.sources.simulator.customs import build_declarations
from features.sources.simulator.events import EventLabels, Timeline, build_events
from features.sources.simulator.world import (
    COURIER_IDS,
    DESTINATIONS,
    HUBS,
    MODE_CODES,
    MODE_PROFILES,
    WAREHOUSES,
    lines,
)

if TYPE_CHECKING:
    from features.sources.simulator.shipments import ShipmentConfig

__all__ = ["realised_tables"]

_WH = MODE_CODES["overseas_warehouse"]
_MODES = tuple(sorted(MODE_CODES, key=MODE_CODES.__getitem__))
# The contract's mode of a parcel booked and delivered within one country (a domestic world).
# TODO(contract): drop the fallback once `domestic_parcel` is a contract mode on main.
_DOMESTIC_MODE = "domestic_parcel" if "domestic_parcel" in SHIPMENT_MODES else "overseas_warehouse"


def _mode_labels(config: ShipmentConfig) -> list[str]:
    """Contract mode names by simulator mode code (a domestic world relabels its warehouse parcels)."""
    if config.domestic_country is None:
        return list(_MODES)
    return [_DOMESTIC_MODE if m == "overseas_warehouse" else m for m in _MODES]


def _timestamp(epoch_us: int, t: np.ndarray) -> pl.Series:
    """Days since epoch -> UTC timestamps rounded to the minute (nulls for NaN)."""
    missing = np.isnan(t)
    minutes = np.round(np.where(missing, 0.0, t) * 1440.0).astype(np.int64)
    s = pl.Series(epoch_us + minutes * 60_000_000).cast(TABLES["shipments"].schema["created_at"])
    if not missing.any():
        return s
    return pl.select(pl.when(pl.Series(missing)).then(None).otherwise(s)).to_series()


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    return pl.select(pl.lit(prefix) + pl.Series(numbers).cast(pl.String).str.zfill(width)).to_series()


def _locations() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Scan locations (hubs, warehouses, customs offices + mail facility per country, regions).

    Returns:
        (names, first office index per destination, first region index per destination).
    """
    names = [h.code for h in HUBS] + [w.warehouse_id for w in WAREHOUSES]
    offices, regions = [], []
    for d in DESTINATIONS:
        offices.append(len(names))
        names += [*d.offices, d.offices[0][:3] + "9"]  # customs offices, then the mail facility
    for d in DESTINATIONS:
        regions.append(len(names))
        names += [r.code for r in d.regions]
    return names, np.array(offices), np.array(regions)


def realised_tables(
    bk: Bookings,
    tl: Timeline,
    epoch: dt.date,
    now: float,
    config: ShipmentConfig,
    skus: pl.DataFrame,
    rng: np.random.Generator,
) -> dict[str, pl.DataFrame]:
    """The raw tables as a forwarder's export at `now` shows them."""
    b = bk.booking
    n = b.t0.size
    epoch_us = (epoch - dt.date(1970, 1, 1)).days * 86_400_000_000
    is_wh = b.mode == _WH
    countries = ["CN", *[d.country for d in DESTINATIONS]]
    wh_country = np.array([countries.index(w.country) for w in WAREHOUSES])
    origin_country = np.where(is_wh, wh_country[np.maximum(bk.warehouse, 0)], 0)
    locations, office_start, region_start = _locations()
    n_offices = np.array([len(d.offices) for d in DESTINATIONS])
    region_in_dest = bk.region - (region_start[b.dest] - region_start[0])
    office = office_start[b.dest] + np.where(
        b.mode == MODE_CODES["postal"], n_offices[b.dest], region_in_dest % n_offices[b.dest]
    )
    region = region_start[0] + bk.region
    office = np.where(is_wh, region, office)  # domestic parcels meet no customs office
    origin_location = np.where(is_wh, len(HUBS) + np.maximum(bk.warehouse, 0), b.origin)
    shipment_id = _ids("SH", np.arange(1, n + 1), 8)
    labels = EventLabels(
        shipment_id=shipment_id,
        epoch_us=epoch_us,
        countries=countries,
        locations=locations,
        origin_country=origin_country,
        destination_country=b.dest + 1,
        origin_location=origin_location,
        office_location=office,
        region_location=region,
    )
    drop_p = np.array([MODE_PROFILES[m].drop_scan_p for m in MODE_CODES])[b.mode]
    events = build_events(tl, drop_p, now, labels, rng)

    end_t = tl.slots[-1]
    done = end_t <= now
    status = np.where(done, tl.terminal + 1, 0)
    delivered = np.where(done & (tl.terminal == 0), end_t, np.nan)
    country_s, location_s = pl.Series(countries), pl.Series(locations)
    seller_width = max(4, len(str(config.n_sellers)))
    columns = {
        "shipment_id": shipment_id,
        "created_at": _timestamp(epoch_us, b.t0),
        "origin_country": country_s.gather(origin_country),
        "origin_hub": location_s.gather(origin_location),
        "destination_country": country_s.gather(b.dest + 1),
        "destination_region": location_s.gather(region),
        "mode": pl.Series(_mode_labels(config)).gather(b.mode.astype(np.int64)),
        "carrier": pl.Series([ln.carrier for ln in lines()]).gather(b.line),
        "weight_kg": bk.weight_kg,
        "declared_value_usd": bk.declared_value_usd,
        "hs_code": skus.get_column("hs_code").gather(bk.sku),
        "item_count": bk.items,
        "incoterm": pl.Series(["DDP", "DAP", "DDU"]).gather(bk.incoterm.astype(np.int64)),
        "promised_date": pl.Series((epoch - dt.date(1970, 1, 1)).days + bk.promised_day).cast(pl.Int32),
        "shipping_cost_usd": bk.cost_usd,
        "delivered_at": _timestamp(epoch_us, delivered),
        "status": pl.Series(list(SHIPMENT_STATUSES)).gather(status.astype(np.int64)),
        "seller_id": _ids("S", bk.seller + 1, seller_width),
        "sku_id": skus.get_column("sku_id").gather(bk.sku),
        "warehouse_id": pl.Series([w.warehouse_id for w in WAREHOUSES] + [None]).gather(
            np.where(is_wh & (config.domestic_country is None), bk.warehouse, len(WAREHOUSES))
        ),
    }
    spec = TABLES["shipments"]
    shipments = pl.DataFrame(columns).select(pl.col(c).cast(t) for c, t in spec.schema.items())
    facts = _customs_facts(bk, tl, shipments, epoch_us, office, locations)
    export_at = dt.datetime.combine(epoch, dt.time(), dt.UTC) + dt.timedelta(days=now)
    declarations = build_declarations(facts, export_at)
    return {
        "shipments": shipments,
        "shipment_events": events,
        "customs_declarations": declarations,
        "lanes": _lanes(config),
    }


def _customs_facts(
    bk: Bookings,
    tl: Timeline,
    shipments: pl.DataFrame,
    epoch_us: int,
    office: np.ndarray,
    locations: list[str],
) -> pl.DataFrame:
    """One row per parcel that reached import customs, with what the declaration needs."""
    b = bk.booking
    reached = (b.mode != _WH) & ~((tl.lost_stage >= 0) & (tl.lost_stage < 5))
    rows = np.flatnonzero(reached)
    ls = lines()
    declarant = np.where(b.mode == MODE_CODES["postal"], 900 + b.dest, b.line + 1)
    courier = pl.Series([COURIER_IDS.get(ln.carrier) for ln in ls], dtype=pl.String).gather(b.line[rows])
    decided = np.where(np.isnan(tl.slots[7]), tl.decided_at, tl.slots[7])[rows]
    ddp = bk.incoterm[rows] == 0
    return (
        shipments[rows]
        .select(
            "shipment_id", "destination_country", "hs_code", "declared_value_usd", "weight_kg", "seller_id"
        )
        .with_columns(
            declared_at=_timestamp(epoch_us, tl.declared_at[rows]),
            decision_at=_timestamp(epoch_us, decided),
            outcome=pl.Series(tl.customs.outcome[rows]),
            is_inspected=pl.Series(tl.customs.is_inspected[rows]),
            is_fraud=pl.Series(tl.customs.is_fraud[rows]),
            severity=pl.Series(b.risk.severity[rows]),
            true_value_usd=pl.Series(bk.true_value_usd[rows]),
            is_formal=pl.Series(bk.is_formal[rows]),
            duty_rate=pl.Series(np.round(bk.duty_rate[rows], 4)),
            importer_id=pl.when(pl.Series(ddp))
            .then(pl.lit("I") + pl.col("seller_id").str.slice(1))
            .otherwise(_ids("P", bk.buyer[rows], 7)),
            declarant_id=_ids("B", declarant[rows], 4),
            courier_id=courier,
            office_id=pl.Series(locations).gather(office[rows]),
        )
    )


def _lanes(config: ShipmentConfig) -> pl.DataFrame:
    """Every contracted lane (hub x cross-border line, warehouse x local line): contract days and rates.

    A domestic world has only the local lines within its country, under its domestic mode.
    """
    ls = lines()
    slot, li = lane_index()
    is_wh = slot >= len(HUBS)
    names = [h.code for h in HUBS] + [w.warehouse_id for w in WAREHOUSES]
    countries = ["CN"] * len(HUBS) + [w.country for w in WAREHOUSES]
    rate = np.where(is_wh, 1.0, HUB_RATE_FACTOR[np.minimum(slot, len(HUBS) - 1)])
    spec = TABLES["lanes"]
    lanes = (
        pl.DataFrame(
            {
                "origin_hub": [names[x] for x in slot],
                "origin_country": [countries[x] for x in slot],
                "destination_country": [ls[i].country for i in li],
                "mode": [ls[i].mode for i in li],
                "carrier": [ls[i].carrier for i in li],
                "contract_transit_days": contract_table(config.transit_scale)[slot, li],
                "base_rate_usd": np.round(np.array([ls[i].base_rate_usd for i in li]) * rate, 2),
                "per_kg_rate_usd": np.round(np.array([ls[i].per_kg_rate_usd for i in li]) * rate, 2),
            }
        )
        .with_columns(pl.col("mode").replace(dict(zip(_MODES, _mode_labels(config), strict=True))))
        .select(pl.col(c).cast(t) for c, t in spec.schema.items())
        .sort(spec.sort_by)
    )
    country = config.domestic_country
    if country is None:
        return lanes
    return lanes.filter(
        (pl.col("origin_country") == country)
        & (pl.col("destination_country") == country)
        & (pl.col("mode") == _DOMESTIC_MODE)
    )
