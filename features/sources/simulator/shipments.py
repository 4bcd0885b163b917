"""Stage: simulate. The shipment side of the simulator: world state, realised tables and the oracle.

Reads nothing (the static world comes from `world`, calendars from `features.reference.calendar`). Writes nothing:
`simulate_shipments` returns the raw contract tables `shipments`, `shipment_events`,
`customs_declarations` and `lanes` as a forwarder's export at `end` would show them (right-censored: open
parcels are `in_transit`, later scans unknown), and the oracle (evaluation only).

Pieces: `bookings` draws who ships what, where, how and when; `events` draws the milestone timelines and
writes the scans; `customs` decides inspections, holds, outcomes and duties. This module draws the world
state the timelines run in: congestion from the simulated volume itself (origin load per booking day,
destination load per arrival day) and weeks-long regime shifts (lane disruptions: a carrier's line to a
country takes days longer; capacity crunches: air capacity to a region; last-mile strikes: the national
post stops delivering; customs crackdowns: inspection rates jump).

Oracle `shipments`: per parcel, `oracle_draws` redraws of everything random given what was fixed at
booking (including the latent congestion and disruption state). `eta_days_*` describe door-to-door days
(delivered_at - created_at) over the draws that end delivered, `p_late` is P(delivery date (UTC) after
`promised_date` | delivered), `p_inspection` the exact inspection probability, `p_delivered` the share of
draws that end delivered (not returned or lost). Oracle `shipment_disruptions` lists the regime shifts.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contract.schema import SHIPMENT_MODES, SHIPMENT_STATUSES, TABLES
from features.reference.calendar import country_holidays, daily_calendar
from features.sources.simulator.bookings import (
    HUB_RATE_FACTOR,
    Bookings,
    catalog_from_skus,
    contract_table,
    draw_bookings,
    lane_index,
    sku_catalog,
)
from features.sources.simulator.customs import build_declarations
from features.sources.simulator.events import (
    Context,
    EventLabels,
    Timeline,
    build_calendars,
    build_events,
    draw_timeline,
)
from features.sources.simulator.world import (
    COURIER_IDS,
    DESTINATIONS,
    HUBS,
    MODE_CODES,
    MODE_PROFILES,
    WAREHOUSES,
    lines,
    warehouse_countries,
)

__all__ = ["ShipmentConfig", "simulate_shipments"]

log = logging.getLogger(__name__)

_HORIZON_DAYS = 420  # timelines of parcels booked before "now" are followed this far past it
_ARRIVAL_LAG = np.array([8, 5, 2, 0])  # typical booking-to-arrival days by mode, for destination load
_WH = MODE_CODES["overseas_warehouse"]
_QUANTILES = (0.5, 0.8, 0.95)
_DAYS_SCHEMA = {"country": pl.String, "date": pl.Date}
_MODES = tuple(sorted(MODE_CODES, key=MODE_CODES.__getitem__))
# The contract's mode of a parcel booked and delivered within one country (a domestic world).
# TODO(contract): drop the fallback once `domestic_parcel` is a contract mode on main.
_DOMESTIC_MODE = "domestic_parcel" if "domestic_parcel" in SHIPMENT_MODES else "overseas_warehouse"


def _mode_labels(config: ShipmentConfig) -> list[str]:
    """Contract mode names by simulator mode code (a domestic world relabels its warehouse parcels)."""
    if config.domestic_country is None:
        return list(_MODES)
    return [_DOMESTIC_MODE if m == "overseas_warehouse" else m for m in _MODES]


class ShipmentConfig(BaseModel):
    """Settings of the shipment simulator. Defaults give the demo size (a few seconds).

    Attributes:
        n_shipments: parcels booked between start and end.
        n_sellers: Chinese sellers (ids `S0001`...), with Zipf-like sizes.
        n_skus: SKUs `SKU0001`... of the default catalogue `world.sku_catalog` (when no `skus` are given).
        annual_growth: yearly growth of the booked volume.
        warehouse_seller_share: share of sellers who keep stock in the overseas warehouses.
        under_declaration_scale: scales how often low-quality sellers under-declare values.
        lane_disruptions_per_year: a carrier's line to a country gets days slower for 3-8 weeks.
        capacity_crunches_per_year: air capacity to a region is short for 2-6 weeks.
        last_mile_strikes_per_year: a national post stops delivering on most days for 1-3 weeks.
        customs_crackdowns_per_year: a country inspects far more parcels for 4-10 weeks.
        extra_closures: extra destination days off (country, date) besides public holidays (what-if runs).
        transit_scale: multiplier of every stage duration (0.5: twice as fast); contract days and promises
            follow it. Waits for scheduled departures and working days are not scaled.
        drift_scale / drift_days: stage durations ramp linearly from 1x to `drift_scale` x over the last
            `drift_days` booking days (0: no drift); contract days and promises do not follow.
        domestic_country: a single-country domestic world: every parcel is booked in and delivered within
            this country from its fulfilment centres (origin = destination, short transit, no customs).
        oracle_draws: Monte-Carlo redraws per parcel for the oracle.
        oracle_chunk_rows: parcel draws per oracle batch (bounds memory).
        threads: threads running the oracle batches.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_shipments: int = Field(default=100_000, ge=1, le=99_999_999)
    n_sellers: int = Field(default=800, ge=1, le=99_999)
    n_skus: int = Field(default=200, ge=1, le=9_999)
    annual_growth: float = Field(default=0.25, ge=-0.9, le=5.0)
    warehouse_seller_share: float = Field(default=0.4, ge=0.0, le=1.0)
    under_declaration_scale: float = Field(default=1.0, ge=0.0, le=3.0)
    lane_disruptions_per_year: float = Field(default=6.0, ge=0.0)
    capacity_crunches_per_year: float = Field(default=2.0, ge=0.0)
    last_mile_strikes_per_year: float = Field(default=1.5, ge=0.0)
    customs_crackdowns_per_year: float = Field(default=2.0, ge=0.0)
    extra_closures: tuple[tuple[str, dt.date], ...] = Field(default=())
    transit_scale: float = Field(default=1.0, gt=0.1, le=5.0)
    drift_scale: float = Field(default=1.0, gt=0.1, le=5.0)
    drift_days: int = Field(default=0, ge=0)
    domestic_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    oracle_draws: int = Field(default=64, ge=1, le=4_096)
    oracle_chunk_rows: int = Field(default=65_536, ge=1_024)
    threads: int = Field(default=2, ge=1, le=64)

    @model_validator(mode="after")
    def _check_domestic(self) -> ShipmentConfig:
        country = self.domestic_country
        if country is None:
            return self
        served = {c for w in WAREHOUSES for c in warehouse_countries(w.warehouse_id) if c == w.country}
        dest = next((d for d in DESTINATIONS if d.country == country), None)
        if dest is None or country not in served or any(r.near_warehouse is None for r in dest.regions):
            raise ValueError(
                f"domestic_country {country!r} has no fulfilment centre serving all its regions; "
                f"choose one of {', '.join(sorted(served))}"
            )
        return self

    def transit_factor(self, n_sim: int, n_days: int) -> np.ndarray | None:
        """Stage-duration multiplier per day (booking day index), or None when the world runs at 1x."""
        if self.transit_scale == 1.0 and (self.drift_days == 0 or self.drift_scale == 1.0):
            return None
        factor = np.full(n_days, self.transit_scale)
        if self.drift_days > 0:
            k = min(self.drift_days, n_sim)
            ramp = 1.0 + (self.drift_scale - 1.0) * np.arange(1, k + 1) / self.drift_days
            factor[n_sim - k : n_sim] *= ramp
            factor[n_sim:] *= ramp[-1]
        return factor


def simulate_shipments(
    config: ShipmentConfig,
    start: dt.date,
    end: dt.date,
    rng: np.random.Generator,
    skus: pl.DataFrame | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Simulate the parcels booked from `start` to `end` and export them as seen at the end of `end`.

    Args:
        config: simulator settings.
        start: first booking day (the epoch; times are UTC).
        end: last booking day and "now": events after the end of that day are not in the tables.
        rng: random stream; the same state gives identical tables.
        skus: the SKU catalogue to ship (a contract `skus` table, e.g. the demand side's, so that SKU ids
            and HS codes agree across tables); default `world.sku_catalog(config.n_skus)`.

    Returns:
        (raw tables `shipments`, `shipment_events`, `customs_declarations`, `lanes` with exactly the
        contract schemas; oracle tables `shipments` (shipment_id, eta_days_mean, eta_days_q50/q80/q95,
        p_late, p_inspection, p_delivered) and `shipment_disruptions`).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    disruption_rng, booking_rng, timeline_rng, scan_rng, oracle_rng = rng.spawn(5)
    n_sim = (end - start).days + 1
    n_days = n_sim + _HORIZON_DAYS
    calendar = daily_calendar(start, start + dt.timedelta(days=n_days - 1))
    line_extra, line_bump, crackdown, strikes, disruptions = _draw_disruptions(
        config, start, n_sim, n_days, disruption_rng
    )
    catalog = sku_catalog(config.n_skus) if skus is None else catalog_from_skus(skus)
    bookings = draw_bookings(config, calendar.head(n_sim), crackdown, catalog, booking_rng)
    origin_load, dest_load = _loads(bookings, n_sim, n_days)
    holidays = pl.concat(
        [
            country_holidays(
                [d.country for d in DESTINATIONS], start, calendar.get_column("date")[-1]
            ).select("country", "date"),
            pl.DataFrame(list(config.extra_closures), schema=_DAYS_SCHEMA, orient="row"),
        ]
    )
    ctx = Context(
        epoch_weekday=start.weekday(),
        origin_capacity=calendar.get_column("origin_capacity").to_numpy(),
        origin_load=origin_load,
        dest_load=dest_load,
        line_extra=line_extra,
        line_bump=line_bump,
        work=build_calendars(start, n_days, holidays, strikes),
        transit_factor=config.transit_factor(n_sim, n_days),
    )
    log.info("drawing timelines of %s shipments", f"{bookings.booking.t0.size:,}")
    timeline = draw_timeline(bookings.booking, ctx, timeline_rng)
    tables = _realised_tables(bookings, timeline, start, float(n_sim), config, catalog, scan_rng)
    if config.domestic_country is not None:
        log.info("domestic world: every parcel within %s", config.domestic_country)
    log.info("oracle: %d redraws per shipment", config.oracle_draws)
    oracle = _oracle(bookings, ctx, config, tables["shipments"].get_column("shipment_id"), oracle_rng)
    return tables, {"shipments": oracle, "shipment_disruptions": disruptions}


# ---------------------------------------------------------------------------------------------------------
# World state
# ---------------------------------------------------------------------------------------------------------
def _draw_disruptions(
    config: ShipmentConfig, epoch: dt.date, n_sim: int, n_days: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pl.DataFrame, pl.DataFrame]:
    """Regime shifts: extra line-haul days and offload risk per line x day, crackdowns, strike days."""
    ls = lines()
    years = n_sim / 365.25
    share = np.array([d.share for d in DESTINATIONS])
    countries = [d.country for d in DESTINATIONS]
    line_extra = np.zeros((len(ls), n_days))
    line_bump = np.zeros((len(ls), n_days))
    crackdown = np.zeros((len(DESTINATIONS), n_days))
    closures: list[tuple[str, dt.date]] = []
    log_rows: list[tuple[str, str, dt.date, dt.date, float]] = []

    def window(low: int, high: int) -> tuple[int, int]:
        s = int(rng.integers(0, n_sim))
        return s, s + int(rng.integers(low, high + 1))

    cross = [i for i, ln in enumerate(ls) if ln.mode != "overseas_warehouse"]
    weight = share[[countries.index(ls[i].country) for i in cross]]
    for _ in range(rng.poisson(config.lane_disruptions_per_year * years)):
        i = int(rng.choice(cross, p=weight / weight.sum()))
        (s, e), extra = window(21, 56), float(rng.uniform(2.0, 7.0)) * (1.5 if ls[i].kind == "rail" else 1.0)
        line_extra[i, s:e] += extra
        line_bump[i, s:e] += 0.1
        log_rows.append(("lane_disruption", f"{ls[i].carrier}>{ls[i].country}", *_dates(epoch, s, e), extra))
    groups = sorted({d.group for d in DESTINATIONS})
    group_share = np.array([share[[d.group == g for d in DESTINATIONS]].sum() for g in groups])
    mode_factor = {"postal": 1.5, "dedicated_line": 1.0, "express": 0.5}
    for _ in range(rng.poisson(config.capacity_crunches_per_year * years)):
        g = groups[int(rng.choice(len(groups), p=group_share / group_share.sum()))]
        (s, e), extra = window(14, 42), float(rng.uniform(1.0, 4.0))
        for i, ln in enumerate(ls):
            if ln.kind == "air" and DESTINATIONS[countries.index(ln.country)].group == g:
                line_extra[i, s:e] += extra * mode_factor[ln.mode]
                line_bump[i, s:e] += 0.25
        log_rows.append(("capacity_crunch", g, *_dates(epoch, s, e), extra))
    for _ in range(rng.poisson(config.last_mile_strikes_per_year * years)):
        d = int(rng.choice(len(DESTINATIONS), p=share / share.sum()))
        s, e = window(5, 21)
        closed = np.flatnonzero(rng.random(e - s) < 0.75) + s
        closures += [(countries[d], epoch + dt.timedelta(days=int(x))) for x in closed]
        log_rows.append(("last_mile_strike", countries[d], *_dates(epoch, s, e), float(closed.size)))
    for _ in range(rng.poisson(config.customs_crackdowns_per_year * years)):
        d = int(rng.choice(len(DESTINATIONS), p=share / share.sum()))
        (s, e), shift = window(28, 70), float(rng.uniform(0.7, 1.5))
        crackdown[d, s:e] += shift
        log_rows.append(("customs_crackdown", countries[d], *_dates(epoch, s, e), shift))
    strikes = pl.DataFrame(closures, schema=_DAYS_SCHEMA, orient="row")
    log_frame = pl.DataFrame(
        log_rows,
        schema={
            "kind": pl.String,
            "target": pl.String,
            "start_date": pl.Date,
            "end_date": pl.Date,
            "magnitude": pl.Float64,
        },
        orient="row",
    ).sort("start_date", "kind", "target")
    return line_extra, line_bump, crackdown, strikes, log_frame


def _dates(epoch: dt.date, s: int, e: int) -> tuple[dt.date, dt.date]:
    return epoch + dt.timedelta(days=s), epoch + dt.timedelta(days=e - 1)


def _relative_load(counts: np.ndarray, window: int) -> np.ndarray:
    """Trailing `window`-day mean volume relative to its 91-day centred median (1 = normal)."""
    cum = np.concatenate([[0.0], np.cumsum(counts, dtype=float)])
    idx = np.arange(counts.size)
    mean = (cum[idx + 1] - cum[np.maximum(idx + 1 - window, 0)]) / np.minimum(idx + 1, window)
    baseline = pl.Series(mean).rolling_median(window_size=91, center=True, min_samples=1).to_numpy()
    return np.clip((mean + 1.0) / (baseline + 1.0), 0.7, 3.0)


def _loads(bookings: Bookings, n_sim: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Origin load per booking day and destination load per arrival day, from the booked volume."""
    b = bookings.booking
    day = np.floor(b.t0).astype(np.int64)
    origin = np.ones(n_days)
    origin[:n_sim] = _relative_load(np.bincount(day[b.mode != _WH], minlength=n_sim)[:n_sim], 3)
    arrival = np.minimum(day + _ARRIVAL_LAG[b.mode], n_days - 1)
    counts = np.bincount(b.dest * n_days + arrival, minlength=len(DESTINATIONS) * n_days)
    counts = counts.reshape(len(DESTINATIONS), n_days)
    dest = np.ones((len(DESTINATIONS), n_days))
    lag = int(_ARRIVAL_LAG.max())
    for d in range(len(DESTINATIONS)):
        dest[d, lag:n_sim] = _relative_load(counts[d, :n_sim], 7)[lag:]
    return origin, dest


# ---------------------------------------------------------------------------------------------------------
# Realised tables
# ---------------------------------------------------------------------------------------------------------
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


def _realised_tables(
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


# ---------------------------------------------------------------------------------------------------------
# Oracle
# ---------------------------------------------------------------------------------------------------------
def _oracle_batch(
    bk: Bookings, ctx: Context, rows: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Booking-time transit distribution of `rows` from `draws` redraws of everything random."""
    b = bk.booking
    tl = draw_timeline(b.take(np.repeat(rows, draws)), ctx, rng, full=False)
    end = tl.slots[-1].reshape(rows.size, draws)
    ok = (tl.terminal == 0).reshape(rows.size, draws)
    transit = np.where(ok, end - b.t0[rows, None], np.inf)
    late = ok & (np.floor(end) > bk.promised_day[rows, None])
    count = ok.sum(axis=1)
    safe = np.maximum(count, 1)
    out = np.full((rows.size, 6), np.nan)
    out[:, 0] = np.where(ok, transit, 0.0).sum(axis=1) / safe
    transit.sort(axis=1)
    for j, q in enumerate(_QUANTILES, start=1):
        pos = q * (safe - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, safe - 1)
        a = np.take_along_axis(transit, lo[:, None], 1)[:, 0]
        c = np.take_along_axis(transit, hi[:, None], 1)[:, 0]
        with np.errstate(invalid="ignore"):
            out[:, j] = a + (pos - lo) * (c - a)
    out[:, 4] = late.sum(axis=1) / safe
    out[count == 0, :5] = np.nan
    out[:, 5] = count / draws
    return out


def _oracle(
    bk: Bookings, ctx: Context, config: ShipmentConfig, shipment_id: pl.Series, rng: np.random.Generator
) -> pl.DataFrame:
    """The oracle `shipments` frame: true booking-time transit distribution, lateness, inspection risk."""
    n = bk.booking.t0.size
    per_batch = max(1, config.oracle_chunk_rows // config.oracle_draws)
    starts = list(range(0, n, per_batch))
    streams = rng.spawn(len(starts))

    def run(i: int) -> np.ndarray:
        rows = np.arange(starts[i], min(starts[i] + per_batch, n))
        return _oracle_batch(bk, ctx, rows, config.oracle_draws, streams[i])

    with ThreadPoolExecutor(max_workers=config.threads) as pool:
        parts = list(pool.map(run, range(len(starts))))
    stats = np.concatenate(parts) if parts else np.zeros((0, 6))
    cols = ["eta_days_mean", "eta_days_q50", "eta_days_q80", "eta_days_q95", "p_late", "p_delivered"]
    frame = pl.DataFrame({c: stats[:, j] for j, c in enumerate(cols)}).with_columns(pl.all().fill_nan(None))
    return frame.select(
        pl.lit(shipment_id).alias("shipment_id"),
        *cols[:5],
        pl.Series("p_inspection", bk.booking.risk.p_inspect),
        "p_delivered",
    )
