"""Stage: simulate. The shipment side of the simulator: world state, realised tables and the oracle.

Reads nothing (the static world comes from `world`, calendars from `features.reference.calendar`).
Writes nothing: `simulate_shipments` returns the raw contract tables `shipments`, `shipment_events`,
`customs_declarations` and `lanes` as a forwarder's export at `end` would show them (right-censored: open
parcels are `in_transit`, later scans unknown), and the oracle (evaluation only).

Pieces: `bookings` draws who ships what, where, how and when (`bookings_catalogue`: the SKUs shipped,
`bookings_lanes`: lanes, contract days and customs policy); `events` draws the milestone timelines and
writes the scans; `customs` decides inspections, holds, outcomes and duties; `shipments_export` writes the
realised tables. This module draws the world
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

from features.reference.calendar import country_holidays, daily_calendar
from features.sources.simulator.bookings import Bookings, draw_bookings
from features.sources.simulator.bookings_catalogue import catalog_from_skus, sku_catalog
from features.sources.simulator.events import Context, build_calendars, draw_timeline
from features.sources.simulator.shipments_export import realised_tables
from features.sources.simulator.world import DESTINATIONS, MODE_CODES, WAREHOUSES, lines, warehouse_countries

__all__ = ["ShipmentConfig", "simulate_shipments"]

log = logging.getLogger(__name__)

_HORIZON_DAYS = 420  # timelines of parcels booked before "now" are followed this far past it
_ARRIVAL_LAG = np.array([8, 5, 2, 0])  # typical booking-to-arrival days by mode, for destination load
_WH = MODE_CODES["overseas_warehouse"]
_QUANTILES = (0.5, 0.8, 0.95)
_DAYS_SCHEMA = {"country": pl.String, "date": pl.Date}


class ShipmentConfig(BaseModel):
    """Settings of the shipment simulator. Defaults give the demo size (a few seconds).

    Attributes:
        n_shipments: parcels booked between start and end.
        n_sellers: Chinese sellers (ids `S0001`...), with Zipf-like sizes.
        n_skus: SKUs `SKU0001`... of the default catalogue `bookings_catalogue.sku_catalog` (when no
            `skus` are given).
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
            and HS codes agree across tables); default `bookings_catalogue.sku_catalog(config.n_skus)`.

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
    tables = realised_tables(bookings, timeline, start, float(n_sim), config, catalog, scan_rng)
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
