"""Stage: simulate. The lanes bookings are priced and promised on, and the customs policy per day.

Reads nothing. `lane_index` lists every lane (origin slot x carrier line), `contract_table` the lane's
contract transit days (median door-to-door days of a normal world, drawn once with a fixed seed),
`HUB_RATE_FACTOR` the rate surcharge of trucked feeder hubs and `policy_tables` the de minimis threshold
and duty rate per destination x day with the policy regime shifts.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import polars as pl

from features.sources.simulator.customs import CustomsRisk, inspection_probability
from features.sources.simulator.events import Booking, Context, build_calendars, draw_timeline
from features.sources.simulator.world import (
    DESTINATIONS,
    HUBS,
    MODE_CODES,
    MODE_PROFILES,
    POLICY_CHANGES,
    WAREHOUSES,
    lines,
    mode_profile_arrays,
    warehouse_countries,
)

__all__ = ["HUB_RATE_FACTOR", "contract_table", "lane_index", "policy_tables"]

_WH = MODE_CODES["overseas_warehouse"]
_CONTRACT_SEED = 20_240_101
_CONTRACT_DRAWS = 96
HUB_RATE_FACTOR = np.array([1.0 + 0.05 * (h.feeder_days >= 0.3) for h in HUBS])  # trucked feeder hubs


def policy_tables(epoch: dt.date, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """De minimis threshold (USD) and duty rate per destination x day, with the policy regime shifts."""
    de_minimis = np.tile(np.array([[d.de_minimis_usd] for d in DESTINATIONS]), (1, n_days))
    duty = np.tile(np.array([[d.duty_rate] for d in DESTINATIONS]), (1, n_days))
    codes = [d.country for d in DESTINATIONS]
    for change in POLICY_CHANGES:
        first = max((change.date - epoch).days, 0)
        for c in change.countries:
            de_minimis[codes.index(c), first:] = change.de_minimis_usd
            if change.duty_rate is not None:
                duty[codes.index(c), first:] = change.duty_rate
    return de_minimis, duty


@lru_cache(maxsize=1)
def lane_index() -> tuple[np.ndarray, np.ndarray]:
    """Every lane as (origin slot, line): hubs x cross-border lines, warehouses (slots 6..) x local lines."""
    origin, line = [], []
    for i, ln in enumerate(lines()):
        if ln.mode == "overseas_warehouse":
            for w, wh in enumerate(WAREHOUSES):
                if ln.carrier in wh.carriers and ln.country in warehouse_countries(wh.warehouse_id):
                    origin.append(len(HUBS) + w)
                    line.append(i)
        else:
            origin += list(range(len(HUBS)))
            line += [i] * len(HUBS)
    return np.array(origin), np.array(line)


@lru_cache(maxsize=4)
def contract_table(transit_scale: float = 1.0) -> np.ndarray:
    """Contract transit days per (origin slot, line): the lane's median door-to-door days in a normal world.

    Normal world: no congestion, full origin capacity, no disruption, weekends but no holidays, a typical
    parcel (informal entry, average risk, not remote). Drawn once with a fixed seed: the same for every run.

    Args:
        transit_scale: multiplier of every stage duration (`ShipmentConfig.transit_scale`).

    Returns:
        Array (origin slots, lines), NaN where there is no lane; days rounded to half days.
    """
    origin_slot, line = lane_index()
    ls = lines()
    n_lanes, draws = origin_slot.size, _CONTRACT_DRAWS
    rep = np.repeat(np.arange(n_lanes), draws)
    rng = np.random.default_rng(_CONTRACT_SEED)
    codes = [d.country for d in DESTINATIONS]
    mode = np.array([MODE_CODES[ls[i].mode] for i in line])[rep]
    dest = np.array([codes.index(ls[i].country) for i in line])[rep]
    is_wh = mode == _WH
    warehouse = np.maximum(origin_slot[rep] - len(HUBS), 0)
    prof = mode_profile_arrays()
    strict = np.array([d.strictness for d in DESTINATIONS])[dest]
    p_inspect = inspection_probability(
        strict + prof["inspect_shift"][mode] + 0.4,
        np.zeros(rep.size, bool),
        np.full(rep.size, 0.73),
        np.zeros(rep.size, bool),
    )
    zero = np.zeros(rep.size)
    risk = CustomsRisk(
        p_inspect=np.where(is_wh, 0.0, p_inspect),
        is_under=zero > 0,
        severity=zero.astype(np.int8),
        seize_p=zero,
        refuse_p=zero,
        clear_days=np.where(is_wh, 0.0, prof["clear_days"][mode]),
        hold_days=np.where(is_wh, 0.0, prof["hold_days"][mode] * np.exp(0.4 * strict)),
    )
    tz = np.array([d.tz_hours for d in DESTINATIONS], dtype=float)[dest]
    t0 = (
        rng.integers(0, 28, rep.size)
        + np.where(is_wh, rng.uniform(8, 20, rep.size) - tz, rng.uniform(1, 14, rep.size)) / 24.0
        + 7.0
    )
    lastmile = np.array([1 if MODE_PROFILES[m].lastmile == "post" else 2 for m in MODE_CODES])[mode]
    wh_dest = np.array([codes.index(w.country) for w in WAREHOUSES])
    booking = Booking(
        t0=t0,
        mode=mode.astype(np.int8),
        origin=np.where(is_wh, warehouse, origin_slot[rep]),
        dest=dest,
        line=line[rep],
        zone=np.where(is_wh, 1 + (rng.random(rep.size) < 0.5), 0),
        remote_days=zero,
        tz=tz,
        p_fail=np.array([d.fail_rate for d in DESTINATIONS])[dest] * prof["fail_factor"][mode],
        p_lost=zero,
        origin_cal=3 * wh_dest[warehouse] + 2,
        customs_cal=3 * dest,
        lastmile_cal=3 * dest + lastmile,
        risk=risk,
    )
    n_days, no_days = 150, pl.DataFrame(schema={"country": pl.String, "date": pl.Date})
    nominal = Context(
        epoch_weekday=0,
        origin_capacity=np.ones(n_days),
        origin_load=np.ones(n_days),
        dest_load=np.ones((len(DESTINATIONS), n_days)),
        line_extra=np.zeros((len(ls), n_days)),
        line_bump=np.zeros((len(ls), n_days)),
        work=build_calendars(dt.date(2024, 1, 1), n_days, no_days, no_days),
        transit_factor=None if transit_scale == 1.0 else np.full(n_days, transit_scale),
    )
    tl = draw_timeline(booking, nominal, rng, full=False)
    transit = np.where(tl.terminal == 0, tl.slots[-1] - t0, np.nan).reshape(n_lanes, draws)
    table = np.full((len(HUBS) + len(WAREHOUSES), len(ls)), np.nan)
    table[origin_slot, line] = np.round(np.nanmedian(transit, axis=1) * 2.0) / 2.0
    return table
