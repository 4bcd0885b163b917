"""Stage: simulate. Milestone timelines of the simulated shipments, and their scans as an export shows them.

Reads nothing. `draw_timeline` draws the time of every milestone of a batch of bookings given the world
state (`Context`: origin capacity, congestion, lane disruptions, working calendars); the realised run and
the oracle's Monte-Carlo redraws call the same function. `build_events` turns one realised timeline into
the contract's `shipment_events`: missing postal scans, right-censored at "now".

Times are float days since the simulation epoch (00:00 UTC of the start date). Destination customs and
last mile work on local working days (weekends, public holidays, strikes); the clock only ever waits on a
closed day, so an extra holiday can never make a parcel earlier.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import polars as pl

from features.contract.schema import EVENT_TYPES, TABLES, EventType
from features.sources.simulator.customs import CustomsDraw, CustomsRisk, draw_customs
from features.sources.simulator.world import DESTINATIONS, HUBS, MODE_CODES, lines, mode_profile_arrays

__all__ = [
    "N_SLOTS",
    "SLOT_EVENTS",
    "TERMINAL_KINDS",
    "Booking",
    "Context",
    "EventLabels",
    "Timeline",
    "build_calendars",
    "build_events",
    "draw_timeline",
]

# Milestone slots of a timeline, in EVENT_RANK order; the last slot is the terminal event.
SLOT_EVENTS: tuple[str, ...] = (
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
    "out_for_delivery",
    "delivery_failed",
    "out_for_delivery",
    "delivery_failed",
    "delivered",
)
N_SLOTS = len(SLOT_EVENTS)
_DEP, _ARR, _ENTER, _HELD, _RELEASED, _LM = 3, 4, 5, 6, 7, 8
TERMINAL_KINDS = ("delivered", "returned", "lost")
_WH = MODE_CODES["overseas_warehouse"]
_ZONE_DAYS = np.array([0.4, 0.4, 1.3, 2.3])  # overseas-warehouse trunk days by zone (index = zone)
_LOST_STAGES_CROSS = np.array([0, 1, 2, 3, 4, 8, 9])
_LOST_STAGES_LOCAL = np.array([0, 1, 3, 4, 8, 9, 9])
_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Booking:
    """Everything fixed when a parcel is booked (one element per shipment).

    Attributes:
        t0: creation time (days since epoch). mode: `MODE_CODES`. origin: hub index (cross-border) or
        warehouse index. dest: destination index. line: index in `world.lines()`. zone: warehouse delivery
        zone (0 cross-border). remote_days: median extra last-mile days. tz: destination UTC offset (hours).
        p_fail: failure probability of one delivery attempt. p_lost: probability the parcel is lost.
        origin_cal / customs_cal / lastmile_cal: calendar rows (warehouse, customs, last mile).
        risk: the customs risk.
    """

    t0: np.ndarray
    mode: np.ndarray
    origin: np.ndarray
    dest: np.ndarray
    line: np.ndarray
    zone: np.ndarray
    remote_days: np.ndarray
    tz: np.ndarray
    p_fail: np.ndarray
    p_lost: np.ndarray
    origin_cal: np.ndarray
    customs_cal: np.ndarray
    lastmile_cal: np.ndarray
    risk: CustomsRisk

    def take(self, idx: np.ndarray) -> Booking:
        """The bookings at positions `idx` (repeats allowed, for Monte-Carlo redraws)."""
        parts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Booking(**{k: (v.take(idx) if k == "risk" else v[idx]) for k, v in parts.items()})


@dataclass(frozen=True)
class Context:
    """The world state the timelines run in (known to the oracle, latent to any model).

    Attributes:
        epoch_weekday: weekday of day 0 (0 = Monday).
        origin_capacity: share of normal Chinese first-mile capacity per day (Chinese New Year, Golden Week).
        origin_load: origin congestion per day (booked volume relative to its baseline).
        dest_load: destination congestion per destination x day (arriving volume relative to baseline).
        line_extra: extra line-haul days per line x departure day (lane disruptions, capacity crunches).
        line_bump: extra probability of missing a departure per line x day.
        work: working day flags per calendar x day; calendar 3*d + 0/1/2 is destination d's
            customs / postal last mile / express last mile.
        transit_factor: multiplier of every stage duration by booking day (faster or drifting worlds);
            waits for departures and working days are not scaled. None: 1 everywhere.
    """

    epoch_weekday: int
    origin_capacity: np.ndarray
    origin_load: np.ndarray
    dest_load: np.ndarray
    line_extra: np.ndarray
    line_bump: np.ndarray
    work: np.ndarray
    transit_factor: np.ndarray | None = None
    cum: np.ndarray = dataclasses.field(init=False)
    kth: np.ndarray = dataclasses.field(init=False)
    nxt: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        n_cal, n = self.work.shape
        cum = np.zeros((n_cal, n), np.int64)
        cum[:, 1:] = np.cumsum(self.work, axis=1)[:, :-1]
        kth = np.full((n_cal, n), n - 1, np.int64)
        idx = np.where(self.work, np.arange(n), n - 1)
        nxt = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
        for c in range(n_cal):
            days = np.flatnonzero(self.work[c])
            kth[c, : days.size] = days
        object.__setattr__(self, "cum", cum.ravel())
        object.__setattr__(self, "kth", kth.ravel())
        object.__setattr__(self, "nxt", np.ascontiguousarray(nxt).ravel())

    @property
    def n_days(self) -> int:
        """Length of every daily table."""
        return int(self.work.shape[1])


@dataclass(frozen=True)
class Timeline:
    """One draw of the milestones of a batch of bookings.

    Attributes:
        slots: `N_SLOTS` arrays of times (days since epoch, NaN when the milestone does not happen); only
            the terminal one when drawn with `full=False`.
        terminal: index in `TERMINAL_KINDS` of the terminal event (its time is the last slot).
        customs: the customs draw; declared_at / decided_at: declaration and decision times.
        lost_stage: the slot after which scans stop for lost parcels (-1 otherwise).
    """

    slots: list[np.ndarray]
    terminal: np.ndarray
    customs: CustomsDraw
    declared_at: np.ndarray
    decided_at: np.ndarray
    lost_stage: np.ndarray


@lru_cache(maxsize=1)
def _line_tables() -> dict[str, np.ndarray]:
    """Static arrays of hubs and lines: feeder days, departure-day offsets by weekday, line-haul times."""
    ls = lines()
    offset = np.zeros((len(ls), 7, 2), np.int64)
    for i, line in enumerate(ls):
        for wd in range(7):
            for after in (0, 1):
                k = after
                while (wd + k) % 7 not in line.weekdays:
                    k += 1
                offset[i, wd, after] = k
    return {
        "feeder": np.array([h.feeder_days for h in HUBS]),
        "processing": np.array([h.processing_factor for h in HUBS]),
        "offset": offset.ravel(),
        "hour": np.array([ln.departure_hour / 24.0 for ln in ls]),
        "days": np.array([ln.linehaul_days for ln in ls]),
        "sigma": np.array([ln.linehaul_sigma for ln in ls]),
    }


def build_calendars(
    epoch: dt.date, n_days: int, holidays: pl.DataFrame, post_closures: pl.DataFrame
) -> np.ndarray:
    """Working-day flags of every destination's customs, postal and express last mile.

    Args:
        epoch: day 0.
        n_days: number of days.
        holidays: `country`, `date` of days off for everyone (public holidays, extra closures).
        post_closures: `country`, `date` of days the postal last mile does not deliver (strikes).

    Returns:
        Boolean array (3 x destinations, n_days); row 3*d + k, k = 0 customs, 1 postal, 2 express.
    """
    weekday = (epoch.weekday() + np.arange(n_days)) % 7
    work = np.ones((3 * len(DESTINATIONS), n_days), bool)
    for d, dest in enumerate(DESTINATIONS):
        work[3 * d] &= ~np.isin(weekday, dest.customs_weekend)
        work[3 * d + 1 : 3 * d + 3] &= ~np.isin(weekday, dest.lastmile_weekend)
        for frame, rows in ((holidays, (0, 1, 2)), (post_closures, (1,))):
            days = frame.filter(pl.col("country") == dest.country).get_column("date")
            idx = np.array([(x - epoch).days for x in days.to_list()], dtype=np.int64)
            idx = idx[(idx >= 0) & (idx < n_days)]
            for r in rows:
                work[3 * d + r, idx] = False
    return work


@lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
    inv = NormalDist().inv_cdf
    return np.array([inv((k + 0.5) / 65_536) for k in range(65_536)])


def _uniforms(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """(k, n) uniforms in (0, 1) with 32-bit resolution, from raw generator bits (fast)."""
    raw = rng.bit_generator.random_raw((k * n + 1) // 2).view(np.uint32)[: k * n]
    return (raw.reshape(k, n) + 0.5) * 2.0**-32


def _normals(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """(k, n) standard normals quantised to 65,536 levels (|z| <= 4.3), by table lookup (fast)."""
    raw = rng.bit_generator.random_raw((k * n + 3) // 4).view(np.uint16)[: k * n]
    return _normal_table()[raw.reshape(k, n)]


def _day(t: np.ndarray, n_days: int) -> np.ndarray:
    return np.clip(np.floor(t), 0, n_days - 1).astype(np.int64)


def _add_working_days(
    ctx: Context, cal: np.ndarray, t: np.ndarray, tz: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """`t` plus `days` of local working time on calendar `cal` (closed days stop the clock)."""
    n = ctx.n_days
    local = t + tz / 24.0
    d = _day(local, n)
    flat = cal * n + d
    w = ctx.cum[flat] + np.where(ctx.work.ravel()[flat], local - d, 0.0) + days
    k = np.floor(w)
    day = ctx.kth[cal * n + np.clip(k, 0, n - 1).astype(np.int64)]
    return np.maximum(day + (w - k) - tz / 24.0, t)


def _next_morning(
    ctx: Context, cal: np.ndarray, t: np.ndarray, tz: np.ndarray, extra: np.ndarray
) -> np.ndarray:
    """Local day index of the first working morning after `t` (same day before 06:00), plus `extra` days."""
    n = ctx.n_days
    local = t + tz / 24.0
    d = np.floor(local)
    d = np.clip(d + (local - d > 0.25), 0, n - 1).astype(np.int64)
    d = ctx.nxt[cal * n + d]
    k = np.clip(ctx.cum[cal * n + d] + extra, 0, n - 1)
    return ctx.kth[cal * n + k].astype(float)


def _departure(line: np.ndarray, t: np.ndarray, ctx: Context, after: bool = False) -> np.ndarray:
    """Next scheduled departure of `line` at or after `t` (strictly the next day's if `after`)."""
    lt = _line_tables()
    hour = lt["hour"][line]
    d = np.floor(t)
    wd = (ctx.epoch_weekday + d.astype(np.int64)) % 7
    late = np.ones_like(wd) if after else (t - d > hour).astype(np.int64)
    return d + lt["offset"][line * 14 + wd * 2 + late] + hour


def draw_timeline(b: Booking, ctx: Context, rng: np.random.Generator, full: bool = True) -> Timeline:
    """Draw every milestone time of the bookings `b` in the world `ctx`.

    The number of random draws depends only on the number of bookings, so two worlds that differ only in
    their calendars see the same random parts. Rare branches (warehouse pick-ups, offloads, repeated
    delivery attempts, losses) are computed on their rows only.

    Args:
        b: the bookings.
        ctx: the world state.
        rng: random stream.
        full: return every milestone slot; False returns only the terminal one (for the oracle).

    Returns:
        The drawn timeline.
    """
    n, nd = b.t0.shape[0], ctx.n_days
    p, lt = mode_profile_arrays(), _line_tables()
    m = b.mode
    cross = m != _WH
    local = np.flatnonzero(~cross)
    z = _normals(rng, 9, n)
    u = _uniforms(rng, 25, n)  # rows 0-4 serve the cross-border or the warehouse branch, never both
    hub = np.minimum(b.origin, len(HUBS) - 1)

    # First mile and export: slower when the origin is congested or short of staff (Chinese New Year).
    day0 = _day(b.t0, nd)
    speed = 1.0 if ctx.transit_factor is None else ctx.transit_factor[day0]
    slow_o = speed * ctx.origin_load[day0] ** 0.7 / ctx.origin_capacity[day0]
    picked = b.t0 + p["pickup_days"][m] * slow_o * np.exp(0.5 * z[0])
    at_hub = picked + (p["to_hub_days"][m] + lt["feeder"][hub]) * slow_o * np.exp(0.4 * z[1])
    # Overseas warehouses ship on working days, same day before the 14:00 cut-off, with peak backlogs.
    load_d0 = ctx.dest_load.ravel()[b.dest[local] * nd + day0[local]]
    backlog = np.floor(-np.log1p(-u[0, local]) * 1.5 * np.maximum(load_d0 - 1.0, 0.0)).astype(np.int64)
    t0, tz = b.t0[local], b.tz[local]
    wh_day = _next_morning(ctx, b.origin_cal[local], t0 - 8.0 / 24.0, tz, backlog)
    picked[local] = np.maximum(wh_day + (17.0 + 3.0 * u[1, local] - tz) / 24.0, t0)
    at_hub[local] = picked[local] + 0.08 + 0.15 * u[2, local]
    hub_day = _day(at_hub, nd)  # export processing runs at the capacity of the day the parcel reaches the hub
    slow_x = speed * ctx.origin_load[hub_day] ** 0.7 / ctx.origin_capacity[hub_day]
    exported = at_hub + p["export_days"][m] * lt["processing"][hub] * slow_x * np.exp(0.5 * z[2])

    # Line-haul: next scheduled departure, offloads when full, disruptions by departure day.
    ready = exported + 0.08 + p["consolidation_days"][m] * u[0]
    ready_day = _day(ready, nd)
    departed = _departure(b.line, ready, ctx)
    p_bump = p["bump_p"][m] * ctx.origin_load[ready_day] + ctx.line_bump.ravel()[b.line * nd + ready_day]
    bumps = (u[1] < p_bump).astype(np.int64) + (u[2] < p_bump)
    for k in (1, 2):
        again = np.flatnonzero(bumps >= k)
        departed[again] = _departure(b.line[again], departed[again], ctx, after=True)
    departed[local] = at_hub[local] + 0.05 + 0.15 * u[3, local]
    extra = ctx.line_extra.ravel()[b.line * nd + _day(departed, nd)] * (0.6 + 0.8 * u[3])
    linehaul = lt["days"][b.line] * np.exp(lt["sigma"][b.line] * z[3]) + extra
    linehaul[local] = _ZONE_DAYS[b.zone[local]] * np.exp(0.3 * z[3, local])
    arrived = departed + linehaul * speed

    # Import customs on destination working days; congestion of the destination at arrival.
    load_d = ctx.dest_load.ravel()[b.dest * nd + _day(arrived, nd)]
    slow_d = load_d**0.6
    entered = arrived + p["import_days"][m] * speed * slow_d * np.exp(0.6 * z[4])
    customs = draw_customs(b.risk, slow_d, u[21:25], z[7:9])
    held = entered + 0.03 + 0.2 * u[4]
    start = np.where(customs.is_inspected, held, entered)
    decided = _add_working_days(ctx, b.customs_cal, start, b.tz, customs.working_days * speed)
    cleared = ~cross | (customs.outcome <= 1)
    # Postal items are declared by the import post; brokers and lines file while the flight is in the air.
    declared = np.where(m == MODE_CODES["postal"], entered, np.maximum(arrived - 0.1 - 0.15 * u[3], departed))

    # Last mile: handover, remote regions, working mornings (overflow at peaks), up to three attempts.
    handover = decided + p["handover_days"][m] * speed * slow_d * np.exp(0.5 * z[5])
    handover[local] = arrived[local] + 0.05 + 0.15 * u[4, local]
    last_mile = handover + b.remote_days * speed * np.exp(0.3 * z[6])
    overflow = np.floor(-np.log1p(-u[5]) * np.maximum(load_d - 1.0, 0.0) * 0.8).astype(np.int64)
    ofd = [np.full(n, np.nan) for _ in range(_MAX_ATTEMPTS)]
    scan = [np.full(n, np.nan) for _ in range(_MAX_ATTEMPTS)]
    rows, t, skip = np.arange(n), last_mile, overflow
    failed = np.zeros(n, np.int64)
    for k in range(_MAX_ATTEMPTS):
        day = _next_morning(ctx, b.lastmile_cal[rows], t, b.tz[rows], skip)
        ofd[k][rows] = day + (7.5 + 2.0 * u[8 + k, rows] - b.tz[rows]) / 24.0
        scan[k][rows] = ofd[k][rows] + (1.0 + 8.0 * u[11 + k, rows]) / 24.0
        fail = u[14 + k, rows] < b.p_fail[rows]
        failed[rows[fail]] += 1
        rows = rows[fail]
        if k + 1 < _MAX_ATTEMPTS:
            t, skip = scan[k][rows], (u[6 + k, rows] < 0.3).astype(np.int64)
    end = np.choose(np.minimum(failed, _MAX_ATTEMPTS - 1), scan)
    terminal = np.where(failed == _MAX_ATTEMPTS, 1, 0).astype(np.int8)
    end[terminal == 1] += 5.0 + 7.0 * u[20, terminal == 1]  # back to sender after three failed attempts
    seized, refused = cross & (customs.outcome == 3), cross & (customs.outcome == 4)
    terminal[seized], terminal[refused] = 2, 1
    end = np.where(seized | refused, decided, end)

    # Lost parcels: scans stop after a random stage, the carrier declares the loss weeks later.
    stage_pick = (u[18] * 7).astype(np.int64)
    stages = np.where(cross, _LOST_STAGES_CROSS[stage_pick], _LOST_STAGES_LOCAL[stage_pick])
    lost = np.flatnonzero((u[17] < b.p_lost) & ((stages < _ENTER) | cleared))
    reached = [picked, at_hub, exported, departed, arrived, entered, held, decided, last_mile, ofd[0]]
    last_seen = np.choose(stages[lost], [x[lost] for x in reached])
    end[lost] = last_seen + 20.0 + 20.0 * u[19, lost]
    terminal[lost] = 2
    lost_stage = np.full(n, -1, np.int8)
    lost_stage[lost] = stages[lost]
    if not full:
        return Timeline([end], terminal, customs, declared, decided, lost_stage)

    nan = np.full(n, np.nan)
    inspected = cross & customs.is_inspected
    slots = [
        picked,
        at_hub,
        np.where(cross, exported, nan),
        departed,
        arrived,
        np.where(cross, entered, nan),
        np.where(inspected, held, nan),
        np.where(cross & cleared, decided, nan),
        np.where(cleared, last_mile, nan),
        *(x for k in range(_MAX_ATTEMPTS) for x in (ofd[k], scan[k])),
    ]
    for k in range(_MAX_ATTEMPTS):  # attempt k's scan is a failure only if another attempt followed
        slots[_LM + 1 + 2 * k] = np.where(cleared & (failed >= k), slots[_LM + 1 + 2 * k], np.nan)
        slots[_LM + 2 + 2 * k] = np.where(cleared & (failed > k), slots[_LM + 2 + 2 * k], np.nan)
    slots.append(end)
    gone = np.zeros(n, bool)
    gone[lost] = True
    running = np.full(n, -np.inf)
    for s_, x in enumerate(slots):  # scans stop after the lost stage; guard against float round-off
        if s_ < N_SLOTS - 1:
            x = np.where(gone & (s_ > lost_stage), np.nan, x)
        running = np.fmax(running, x)
        slots[s_] = np.where(np.isnan(x), np.nan, running)
    return Timeline(slots, terminal, customs, declared, decided, lost_stage)


@dataclass(frozen=True)
class EventLabels:
    """Names the scans carry, per shipment (in `shipment_id` order).

    Attributes:
        shipment_id: the ids.
        epoch_us: microseconds since 1970 of the simulation epoch.
        countries / locations: vocabularies; the other arrays index into them.
        origin_country / destination_country: country of the origin-side / destination-side scans.
        origin_location / office_location / region_location: hub or warehouse, customs office, region.
    """

    shipment_id: pl.Series
    epoch_us: int
    countries: list[str]
    locations: list[str]
    origin_country: np.ndarray
    destination_country: np.ndarray
    origin_location: np.ndarray
    office_location: np.ndarray
    region_location: np.ndarray


def build_events(
    timeline: Timeline, drop_p: np.ndarray, now: float, labels: EventLabels, rng: np.random.Generator
) -> pl.DataFrame:
    """The `shipment_events` table of one realised timeline, as exported at `now`.

    Args:
        timeline: the realised timeline of all shipments (in `shipment_id` order).
        drop_p: per shipment, the probability that an intermediate scan is missing (postal tracking).
        now: export moment (days since epoch); later scans are not known yet.
        labels: ids, countries and locations of the scans.
        rng: random stream for the missing scans.

    Returns:
        Events with exactly the contract schema, sorted by shipment and time.
    """
    n = timeline.terminal.shape[0]
    times = np.stack(timeline.slots, axis=1)
    with np.errstate(invalid="ignore"):
        visible = times <= now
    visible[:, : _LM + 1] &= rng.random((n, _LM + 1)) >= drop_p[:, None]
    ship, slot = np.nonzero(visible)
    minutes = np.round(times[ship, slot] * 1440.0).astype(np.int64)
    del times, visible
    slot_code = np.array([EVENT_TYPES.index(e) for e in SLOT_EVENTS])
    terminal_code = np.array([EVENT_TYPES.index(e) for e in TERMINAL_KINDS])
    is_terminal = slot == N_SLOTS - 1
    code = np.where(is_terminal, terminal_code[timeline.terminal[ship]], slot_code[slot])
    lost_stage = timeline.lost_stage[ship]
    at_origin = (slot <= _DEP) | (is_terminal & (lost_stage >= 0) & (lost_stage <= _DEP))
    at_customs = ((slot >= _ARR) & (slot <= _RELEASED)) | (
        is_terminal & (lost_stage < 0) & (timeline.customs.outcome[ship] >= 3)
    )
    country = np.where(at_origin, labels.origin_country[ship], labels.destination_country[ship])
    location = np.where(
        at_origin,
        labels.origin_location[ship],
        np.where(at_customs, labels.office_location[ship], labels.region_location[ship]),
    )
    spec = TABLES["shipment_events"]
    return pl.DataFrame(
        {
            "shipment_id": labels.shipment_id.gather(pl.Series(ship.astype(np.uint32))),
            "event": _names(list(EVENT_TYPES), code, EventType),
            "event_at": pl.Series(labels.epoch_us + minutes * 60_000_000).cast(spec.schema["event_at"]),
            "country": _names(labels.countries, country, pl.String()),
            "location": _names(labels.locations, location, pl.String()),
        }
    )


def _names(vocabulary: list[str], codes: np.ndarray, dtype: pl.DataType) -> pl.Series:
    return pl.Series(vocabulary, dtype=pl.String()).cast(dtype).gather(pl.Series(codes.astype(np.uint32)))
