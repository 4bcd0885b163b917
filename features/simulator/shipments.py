"""Stage: simulate. The shipment side of the simulator: world state, realised tables and the oracle.

Reads nothing (the static world comes from `world`, calendars from `features.calendar`). Writes nothing:
`simulate_shipments` returns the raw contract tables `shipments`, `shipment_events`,
`customs_declarations` and `lanes` as a forwarder's export at `end` would show them (right-censored: open
parcels are `in_transit`, later scans unknown), and the oracle (evaluation only): the true booking-time
distribution of each parcel's door-to-door transit days, its probabilities of being late and inspected,
and the disruptions that happened.

World state: congestion comes from the simulated volume itself (origin load per day, destination load per
arrival day); weeks-long regime shifts are drawn per seed: lane disruptions (a carrier's line to a country
takes days longer), capacity crunches (air capacity to a region), last-mile strikes (the national post
stops delivering) and customs crackdowns (inspection rates jump).
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.calendar import country_holidays, daily_calendar
from features.schema import INCOTERMS, SHIPMENT_MODES, SHIPMENT_STATUSES, TABLES
from features.simulator.bookings import Bookings, contract_days, draw_bookings
from features.simulator.customs import build_declarations
from features.simulator.events import (
    Context,
    EventLabels,
    Timeline,
    build_calendars,
    build_events,
    draw_timeline,
)
from features.simulator.world import (
    COURIER_IDS,
    DESTINATIONS,
    HUBS,
    MODE_CODES,
    MODE_PROFILES,
    WAREHOUSES,
    lines,
    sku_catalog,
)

__all__ = ["ShipmentConfig", "simulate_shipments"]

log = logging.getLogger(__name__)

_HORIZON_DAYS = 420  # timelines of parcels booked before "now" are followed this far past it
_ARRIVAL_LAG = np.array([8, 5, 2, 0])  # typical booking-to-arrival days by mode, for destination load
_WH = MODE_CODES["overseas_warehouse"]
_QUANTILES = (0.5, 0.8, 0.95)


class ShipmentConfig(BaseModel):
    """Settings of the shipment simulator. Defaults give the demo size (a few seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_shipments: int = Field(100_000, ge=1, le=99_999_999, description="parcels booked in the window")
    n_sellers: int = Field(800, ge=1, le=99_999)
    n_skus: int = Field(200, ge=1, le=9_999, description="SKU0001... shared with the demand side")
    annual_growth: float = Field(0.25, ge=-0.9, le=5.0, description="yearly growth of the parcel volume")
    warehouse_seller_share: float = Field(0.35, ge=0.0, le=1.0, description="sellers with overseas stock")
    under_declaration_scale: float = Field(1.0, ge=0.0, le=3.0, description="scales sellers' under-declaring")
    lane_disruptions_per_year: float = Field(6.0, ge=0.0, description="a line gets days slower for weeks")
    capacity_crunches_per_year: float = Field(2.0, ge=0.0, description="air capacity to a region short")
    last_mile_strikes_per_year: float = Field(1.5, ge=0.0, description="a national post stops delivering")
    customs_crackdowns_per_year: float = Field(2.0, ge=0.0, description="a country inspects far more")
    extra_closures: tuple[tuple[str, dt.date], ...] = Field(
        (), description="extra destination days off (country, date) on top of public holidays (what-if)"
    )
    oracle_draws: int = Field(64, ge=1, le=4096, description="Monte-Carlo redraws per parcel for the oracle")
    oracle_chunk_rows: int = Field(262_144, ge=1_024, description="parcel draws per oracle batch (memory)")
    threads: int = Field(2, ge=1, le=64, description="threads for the oracle batches")


def simulate_shipments(
    config: ShipmentConfig, start: dt.date, end: dt.date, rng: np.random.Generator
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Simulate the parcels booked from `start` to `end` and export them as seen at the end of `end`.

    Args:
        config: simulator settings.
        start: first booking day (the epoch; times are UTC).
        end: last booking day and "now": events after the end of that day are not in the tables.
        rng: random stream; the same state gives identical tables.

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
    bookings = draw_bookings(config, calendar.head(n_sim), crackdown, booking_rng)
    origin_load, dest_load = _loads(bookings, n_sim, n_days)
    holidays = pl.concat([
        country_holidays([d.country for d in DESTINATIONS], start, calendar.get_column("date")[-1])
        .select("country", "date"),
        pl.DataFrame(list(config.extra_closures), schema={"country": pl.String, "date": pl.Date}, orient="row"),
    ])
    ctx = Context(
        epoch_weekday=start.weekday(),
        origin_capacity=calendar.get_column("origin_capacity").to_numpy(),
        origin_load=origin_load,
        dest_load=dest_load,
        line_extra=line_extra,
        line_bump=line_bump,
        work=build_calendars(start, n_days, holidays, strikes),
    )
    log.info("drawing timelines of %s shipments", f"{bookings.booking.t0.size:,}")
    timeline = draw_timeline(bookings.booking, ctx, timeline_rng)
    tables = _realised_tables(bookings, timeline, start, float(n_sim), scan_rng)
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
    strikes = pl.DataFrame(closures, schema={"country": pl.String, "date": pl.Date}, orient="row")
    log_frame = pl.DataFrame(
        log_rows,
        schema={"kind": pl.String, "target": pl.String, "start_date": pl.Date, "end_date": pl.Date,
                "magnitude": pl.Float64},
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
    minutes = np.round(np.nan_to_num(t, nan=0.0) * 1440.0).astype(np.int64)
    s = pl.Series(epoch_us + minutes * 60_000_000).cast(TABLES["shipments"].schema["created_at"])
    return s.scatter(np.flatnonzero(np.isnan(t)), None) if np.isnan(t).any() else s


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    return pl.select(pl.lit(prefix) + pl.Series(numbers).cast(pl.String).str.zfill(width)).to_series()


def _realised_tables(
    bk: Bookings, tl: Timeline, epoch: dt.date, now: float, rng: np.random.Generator
) -> dict[str, pl.DataFrame]:
    b = bk.booking
    n = b.t0.size
    epoch_us = int((dt.datetime.combine(epoch, dt.time(), dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
                   / dt.timedelta(microseconds=1))
    ls = lines()
    is_wh = b.mode == _WH
    catalog = sku_catalog(len(set(sku_catalog().get_column("sku_id"))) if False else 200)
    del catalog
    end_t = tl.slots[-1]
    done = end_t <= now
    status = np.where(done, tl.terminal + 1, 0)
    delivered = np.where(done & (tl.terminal == 0), end_t, np.nan)

    countries = ["CN", *[d.country for d in DESTINATIONS]]
    wh_dest = np.array([countries.index(w.country) for w in WAREHOUSES])
    origin_country = np.where(is_wh, wh_dest[np.maximum(bk.warehouse, 0)], 0)
    locations = [h.code for h in HUBS] + [w.warehouse_id for w in WAREHOUSES]
    office_start = len(locations)
    office_offset = np.cumsum([0] + [len(d.offices) + 1 for d in DESTINATIONS])
    for d in DESTINATIONS:
        locations += [*d.offices, d.offices[0][:3] + "9"]  # customs offices, then the mail facility
    region_start = len(locations)
    locations += [r.code for d in DESTINATIONS for r in d.regions]
    region_office = np.array([i % len(d.offices) for d in DESTINATIONS for i in range(len(d.regions))])
    office = np.where(
        b.mode == MODE_CODES["postal"],
        len(DESTINATIONS[0].offices) * 0 + office_offset[b.dest] + np.array([len(d.offices) for d in DESTINATIONS])[b.dest],
        office_offset[b.dest] + region_office[bk.region],
    ) + office_start
    origin_location = np.where(is_wh, len(HUBS) + np.maximum(bk.warehouse, 0), b.origin)
    shipment_id = _ids("SH", np.arange(1, n + 1), 8)
    labels = EventLabels(
        shipment_id=shipment_id, epoch_us=epoch_us, countries=countries, locations=locations,
        origin_country=origin_country, destination_country=b.dest + 1, origin_location=origin_location,
        office_location=office, region_location=region_start + bk.region,
    )
    drop_p = np.array([MODE_PROFILES[m].drop_scan_p for m in MODE_CODES])[b.mode]
    events = build_events(tl, drop_p, now, labels, rng)

    skus = sku_catalog(int(bk.sku.max()) + 1 if n else 1)
    names = {
        "countries": pl.Series(countries),
        "locations": pl.Series(locations),
        "carrier": pl.Series([ln.carrier for ln in ls]),
        "hs_code": skus.get_column("hs_code"),
    }
    n_sellers_width = max(4, len(str(int(bk.seller.max()) + 1 if n else 1)))
    seller_id = _ids("S", bk.seller + 1, n_sellers_width)
    spec = TABLES["shipments"]
    shipments = pl.DataFrame({
        "shipment_id": shipment_id,
        "created_at": _timestamp(epoch_us, b.t0),
        "origin_country": names["countries"].gather(origin_country),
        "origin_hub": names["locations"].gather(origin_location),
        "destination_country": names["countries"].gather(b.dest + 1),
        "destination_region": names["locations"].gather(region_start + bk.region),
        "mode": pl.Series(list(SHIPMENT_MODES)).gather(b.mode.astype(np.int64)),
        "carrier": names["carrier"].gather(b.line),
        "weight_kg": bk.weight_kg,
        "declared_value_usd": bk.declared_value_usd,
        "hs_code": names["hs_code"].gather(bk.sku),
        "item_count": bk.items,
        "incoterm": pl.Series(["DDP", "DAP", "DDU"]).gather(bk.incoterm.astype(np.int64)),
        "promised_date": pl.Series(bk.promised_day).cast(pl.Int32).cast(pl.Date) + pl.lit(0) * 0
        if False else pl.Series([epoch]).cast(pl.Date).gather(np.zeros(n, np.int64)) ,
        "shipping_cost_usd": bk.cost_usd,
        "delivered_at": _timestamp(epoch_us, delivered),
        "status": pl.Series(list(SHIPMENT_STATUSES)).gather(status.astype(np.int64)),
        "seller_id": seller_id,
        "sku_id": skus.get_column("sku_id").gather(bk.sku),
        "warehouse_id": pl.Series([w.warehouse_id for w in WAREHOUSES] + [None]).gather(
            np.where(is_wh, bk.warehouse, len(WAREHOUSES))),
    })
    shipments = shipments.with_columns(
        (pl.col("promised_date") + pl.duration(days=pl.Series(bk.promised_day)))
    ).select([pl.col(c).cast(t) for c, t in spec.schema.items()])
    declarations = _declarations(bk, tl, shipments, epoch_us, now, names)
    return {
        "shipments": shipments,
        "shipment_events": events,
        "customs_declarations": declarations,
        "lanes": _lanes(),
    }
