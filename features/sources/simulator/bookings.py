"""Stage: simulate. Who ships what, where, how and when: the booking side of the shipment simulator.

Reads nothing. `draw_bookings` draws the parcels booked between the start and end dates: daily volume
(weekday pattern, growth, 11.11 / Black Friday / Christmas peaks, Chinese New Year dip), sellers (home hub,
catalogue focus, latent declaration quality, mode habits), destination and region, SKU, value, weight,
under-declaration, mode choice (value, weight, destination, warehouse stock), carrier choice (price,
habit), promised date (lane contract days plus the seller's margin), freight cost (chargeable weight, lane
rate, peak surcharges, remote fees) and the customs risk known at booking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from features.sources.simulator.customs import CustomsRisk, inspection_probability
from features.sources.simulator.events import Booking, Context, build_calendars, draw_timeline
from features.sources.simulator.world import (
    CARRIERS,
    DESTINATIONS,
    HS_CHAPTERS,
    HUBS,
    MODE_CODES,
    MODE_PROFILES,
    OTHER_CHAPTER,
    POLICY_CHANGES,
    WAREHOUSES,
    lines,
    mode_profile_arrays,
    warehouse_countries,
)

if TYPE_CHECKING:
    from features.sources.simulator.shipments import ShipmentConfig

__all__ = [
    "HUB_RATE_FACTOR",
    "Bookings",
    "catalog_from_skus",
    "contract_table",
    "draw_bookings",
    "lane_index",
    "policy_tables",
    "sku_catalog",
]

_POSTAL, _WH = MODE_CODES["postal"], MODE_CODES["overseas_warehouse"]
_WEEKDAY_FACTOR = np.array([1.1, 1.12, 1.08, 1.02, 0.95, 0.85, 0.88])
_PEAK_FACTOR = {"singles_day": 2.3, "black_friday_cyber_monday": 1.9, "christmas": 1.4}
_CUSTOMS_LAG_DAYS = 7  # the customs regime that applies is the one when the parcel is expected at import
_CATALOG_SEED = 20_240_611
_CONTRACT_SEED = 20_240_101
_CONTRACT_DRAWS = 96
# (postal, express) utility shifts by destination market.
_MARKET_TILT = {
    "BR": (0.8, 0.0),
    "CL": (0.6, 0.0),
    "NZ": (0.5, 0.0),
    "KZ": (0.5, -0.3),
    "RU": (0.2, -0.5),
    "TH": (0.0, 0.6),
    "MY": (0.0, 0.6),
    "PH": (0.0, 0.4),
    "SG": (-0.3, 0.8),
    "AE": (-0.3, 0.4),
    "SA": (0.0, 0.3),
    "US": (-0.2, 0.0),
    "MX": (0.3, 0.2),
}
HUB_RATE_FACTOR = np.array([1.0 + 0.05 * (h.feeder_days >= 0.3) for h in HUBS])  # trucked feeder hubs


@dataclass(frozen=True)
class Bookings:
    """The booked parcels in creation order (one array element per shipment) and their timeline input."""

    booking: Booking
    seller: np.ndarray
    sku: np.ndarray
    region: np.ndarray
    warehouse: np.ndarray
    items: np.ndarray
    weight_kg: np.ndarray
    true_value_usd: np.ndarray
    declared_value_usd: np.ndarray
    is_formal: np.ndarray
    duty_rate: np.ndarray
    incoterm: np.ndarray
    promised_day: np.ndarray
    cost_usd: np.ndarray
    buyer: np.ndarray


@lru_cache(maxsize=8)
def sku_catalog(n_skus: int = 200) -> pl.DataFrame:
    """The SKUs sellers ship (the same for every seed), ids `SKU0001`...

    Returns:
        Frame with `sku_id`, `category` (HS chapter name), `hs_chapter`, `hs_code`, `unit_value_usd`,
        `unit_weight_kg` and `popularity` (relative sales weight, sums to 1).
    """
    rng = np.random.default_rng(_CATALOG_SEED)
    shares = np.array([c.share for c in HS_CHAPTERS])
    chapter = rng.choice(len(HS_CHAPTERS), size=n_skus, p=shares / shares.sum())
    code = np.array([HS_CHAPTERS[c].codes[rng.integers(len(HS_CHAPTERS[c].codes))] for c in chapter])
    value = np.array([HS_CHAPTERS[c].unit_value_usd for c in chapter]) * rng.lognormal(0.0, 0.5, n_skus)
    weight = np.array([HS_CHAPTERS[c].unit_weight_kg for c in chapter]) * rng.lognormal(0.0, 0.35, n_skus)
    popularity = rng.permutation(1.0 / np.arange(1, n_skus + 1) ** 0.8)
    return pl.DataFrame(
        {
            "sku_id": [f"SKU{i + 1:04d}" for i in range(n_skus)],
            "category": [HS_CHAPTERS[c].name for c in chapter],
            "hs_chapter": [HS_CHAPTERS[c].chapter for c in chapter],
            "hs_code": code,
            "unit_value_usd": np.round(value, 2),
            "unit_weight_kg": np.round(weight, 3),
            "popularity": popularity / popularity.sum(),
        }
    )


def catalog_from_skus(skus: pl.DataFrame) -> pl.DataFrame:
    """The shipping catalogue of a contract `skus` table (e.g. the demand side's), in `sku_catalog` form.

    HS chapters without their own risk profile get the neutral one of chapter 96; a missing weight is the
    chapter's median. Popularity is a fixed Zipf-like weight (the contract does not carry sales).

    Args:
        skus: frame with `sku_id`, `category`, `hs_code`, `price_usd` and optionally `weight_kg`.

    Returns:
        Frame with the columns of `sku_catalog`, in `sku_id` order.
    """
    known = {c.chapter: c for c in HS_CHAPTERS}
    df = skus.sort("sku_id")
    chapter = [c if c in known else OTHER_CHAPTER for c in df.get_column("hs_code").str.slice(0, 2)]
    weight = df.get_column("weight_kg") if "weight_kg" in df.columns else pl.Series([None] * df.height)
    default = pl.Series([known[c].unit_weight_kg for c in chapter])
    rng = np.random.default_rng(_CATALOG_SEED)
    popularity = rng.permutation(1.0 / np.arange(1, df.height + 1) ** 0.8)
    return pl.DataFrame(
        {
            "sku_id": df.get_column("sku_id"),
            "category": df.get_column("category"),
            "hs_chapter": chapter,
            "hs_code": df.get_column("hs_code"),
            "unit_value_usd": df.get_column("price_usd").cast(pl.Float64),
            "unit_weight_kg": weight.cast(pl.Float64).fill_null(default),
            "popularity": popularity / popularity.sum(),
        }
    )


@lru_cache(maxsize=1)
def _region_table() -> dict[str, np.ndarray]:
    regions = [(d, r) for d, dest in enumerate(DESTINATIONS) for r in dest.regions]
    shares = np.array([r.share for _, r in regions])
    dest = np.array([d for d, _ in regions])
    totals = np.bincount(dest, weights=shares)
    cum = np.zeros_like(shares)
    for d in range(len(DESTINATIONS)):
        mask = dest == d
        cum[mask] = d + np.cumsum(shares[mask]) / totals[d]
    wh_ids = [w.warehouse_id for w in WAREHOUSES]
    near = np.array([wh_ids.index(r.near_warehouse) if r.near_warehouse else -1 for _, r in regions])
    return {
        "cum": cum,
        "dest": dest,
        "remote_days": np.array([r.remote_days for _, r in regions]),
        "zone": np.array([r.zone for _, r in regions]),
        "near": near,
        "office": np.array([i % len(DESTINATIONS[d].offices) for i, (d, _) in enumerate(regions)]),
    }


@lru_cache(maxsize=1)
def _line_choices() -> tuple[np.ndarray, np.ndarray]:
    """Candidate lines per (mode, destination) for cross-border modes and per (warehouse, destination)."""
    ls = lines()
    cross = np.full((3, len(DESTINATIONS), 6), -1)
    local = np.full((len(WAREHOUSES), len(DESTINATIONS), 2), -1)
    codes = [d.country for d in DESTINATIONS]
    for i, ln in enumerate(ls):
        d = codes.index(ln.country)
        if ln.mode == "overseas_warehouse":
            for w, wh in enumerate(WAREHOUSES):
                if ln.carrier in wh.carriers:
                    local[w, d, wh.carriers.index(ln.carrier)] = i
        else:
            row = cross[MODE_CODES[ln.mode], d]
            row[np.argmax(row < 0)] = i
    return cross, local


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


def _daily_volume(config: ShipmentConfig, calendar: pl.DataFrame, rng: np.random.Generator) -> np.ndarray:
    n_days = calendar.height
    weekday = calendar.get_column("date").dt.weekday().to_numpy() - 1
    trend = (1.0 + config.annual_growth) ** (np.arange(n_days) / 365.25)
    peak = (
        calendar.get_column("ecommerce_peak")
        .replace_strict(_PEAK_FACTOR, default=1.0, return_dtype=pl.Float64)
        .to_numpy()
    )
    origin = 0.4 + 0.6 * calendar.get_column("origin_capacity").to_numpy()
    if config.domestic_country is not None:  # Chinese holidays do not thin a domestic world's volume
        origin = np.ones(n_days)
    intensity = _WEEKDAY_FACTOR[weekday] * trend * peak * origin * rng.gamma(40.0, 1 / 40.0, n_days)
    return rng.multinomial(config.n_shipments, intensity / intensity.sum())


def _choose(cum: np.ndarray, offset: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF draw in per-group cumulative tables stored as `group + cumulative share`."""
    return np.minimum(np.searchsorted(cum, offset + rng.random(offset.shape[0])), cum.shape[0] - 1)


def _sellers(
    config: ShipmentConfig, sku_chapters: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    k = config.n_sellers
    hub_share = np.array([h.share for h in HUBS])
    chapters = np.unique(sku_chapters)
    share = np.array([HS_CHAPTERS[c].share for c in chapters])
    size = rng.permutation(1.0 / np.arange(1, k + 1) ** 0.9)
    quality = rng.beta(5.0, 1.8, k)
    return {
        "hub": rng.choice(len(HUBS), k, p=hub_share / hub_share.sum()),
        "quality": quality,
        "cum_size": np.cumsum(size / size.sum()),
        "chapter": rng.choice(chapters, k, p=share / share.sum()),
        "warehouse_user": rng.random(k) < config.warehouse_seller_share,
        "tilt": rng.normal(0.0, 0.6, (3, k)),
        "ddp": rng.beta(2.0, 2.0, k),
        "buffer": rng.integers(0, 3, k),
        "carrier": rng.integers(0, 4, k),
        "under_rate": config.under_declaration_scale * 0.3 * (1.0 - quality) ** 1.5,
    }


def _gumbel_choice(utility: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argmax(utility + rng.gumbel(size=utility.shape), axis=1)


def _parcels(
    sellers: dict[str, np.ndarray],
    seller: np.ndarray,
    catalog: pl.DataFrame,
    rng: np.random.Generator,
    only_country: str | None = None,
) -> dict[str, np.ndarray]:
    """Destination, region, SKU (mostly from the seller's focus chapter), items, true value, chargeable kg."""
    n = seller.size
    chapter_codes = [c.chapter for c in HS_CHAPTERS]
    sku_chapter = np.array([chapter_codes.index(c) for c in catalog.get_column("hs_chapter")])
    dest_share = np.array([d.share if only_country in (None, d.country) else 0.0 for d in DESTINATIONS])
    dest = rng.choice(len(DESTINATIONS), n, p=dest_share / dest_share.sum())
    region = _choose(_region_table()["cum"], dest.astype(float), rng)
    by_chapter = np.argsort(sku_chapter, kind="stable")
    popularity = catalog.get_column("popularity").to_numpy()
    sorted_ch = sku_chapter[by_chapter]
    totals = np.bincount(sorted_ch, weights=popularity[by_chapter], minlength=len(HS_CHAPTERS))
    cum_in = np.concatenate(
        [
            np.cumsum(popularity[by_chapter][sorted_ch == c]) / max(totals[c], 1e-12)
            for c in range(len(HS_CHAPTERS))
        ]
    )
    focus = by_chapter[_choose(sorted_ch + cum_in, sellers["chapter"][seller].astype(float), rng)]
    anywhere = np.minimum(np.searchsorted(np.cumsum(popularity), rng.random(n)), catalog.height - 1)
    sku = np.where(rng.random(n) < 0.7, focus, anywhere)
    chapter = sku_chapter[sku]
    items = rng.geometric(0.7, n).astype(np.int32)
    value = catalog.get_column("unit_value_usd").to_numpy()[sku] * items * rng.lognormal(0.0, 0.2, n)
    actual = catalog.get_column("unit_weight_kg").to_numpy()[sku] * items * rng.lognormal(0.0, 0.1, n) + 0.03
    bulk = np.array([c.bulk for c in HS_CHAPTERS])[chapter]
    weight = np.round(np.maximum(actual, actual * bulk * rng.lognormal(-0.25, 0.2, n)), 3)
    return {
        "dest": dest,
        "region": region,
        "sku": sku,
        "chapter": chapter,
        "items": items,
        "true_value": np.round(value, 2),
        "weight": weight,
    }


def _choose_mode(
    parcel: dict[str, np.ndarray],
    tilt: np.ndarray,
    has_wh: np.ndarray,
    us_closed: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Postal for light cheap parcels, express for valuable ones, warehouse stock when the seller has it.

    Destinations tilt the choice: postal where the national post is the usual import channel or the
    market too small for lines, express where it is cheap (short regional flights).
    """
    lv, weight = np.log1p(parcel["true_value"] / 10.0), parcel["weight"]
    market = np.array([_MARKET_TILT.get(d.country, (0.0, 0.0)) for d in DESTINATIONS])[parcel["dest"]]
    utility = np.stack(
        [
            np.where(
                weight > 2.0,
                -np.inf,
                2.0 - 0.8 * lv - 1.5 * weight + tilt[0] + market[:, 0] - 2.5 * us_closed,
            ),
            1.0 + 0.15 * weight,
            -1.6 + 0.9 * lv - 0.3 * weight + tilt[1] + market[:, 1],
            np.where(has_wh, 2.5 + tilt[2], -np.inf),
        ],
        axis=1,
    )
    return _gumbel_choice(utility, rng).astype(np.int8)


def _choose_line(
    mode: np.ndarray,
    parcel: dict[str, np.ndarray],
    near: np.ndarray,
    habit: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Warehouse (nearest, sometimes the other one in the country), zone, and the carrier line.

    Lines are chosen by preference, price of the parcel's weight and the seller's habitual forwarder.
    """
    n, dest = mode.size, parcel["dest"]
    is_wh = mode == _WH
    alt = np.array(
        [
            next((j for j, v in enumerate(WAREHOUSES) if v.country == w.country and j != i), i)
            for i, w in enumerate(WAREHOUSES)
        ]
    )
    home = np.maximum(near, 0)
    moved = (rng.random(n) < 0.15) & (alt[home] != home)
    warehouse = np.where(is_wh, np.where(moved, alt[home], home), -1)
    zone = np.where(is_wh, np.minimum(_region_table()["zone"][parcel["region"]] + moved, 3), 0)
    cross_lines, local_lines = _line_choices()
    candidates = np.full((n, cross_lines.shape[2]), -1)
    candidates[:, : local_lines.shape[2]] = local_lines[np.maximum(warehouse, 0), dest]
    candidates = np.where(is_wh[:, None], candidates, cross_lines[np.minimum(mode, 2), dest])
    ls = lines()
    dedicated = [c[0] for c in CARRIERS["dedicated_line"]]
    carrier = np.array([dedicated.index(ln.carrier) if ln.carrier in dedicated else -1 for ln in ls])
    safe = np.maximum(candidates, 0)
    price = (
        np.array([ln.base_rate_usd for ln in ls])[safe]
        + np.array([ln.per_kg_rate_usd for ln in ls])[safe] * parcel["weight"][:, None]
    )
    utility = (
        np.array([ln.preference for ln in ls])[safe]
        - 1.5 * np.log(price)
        + 0.8 * (carrier[safe] == habit[:, None])
    )
    line = candidates[np.arange(n), _gumbel_choice(np.where(candidates >= 0, utility, -np.inf), rng)]
    return {"warehouse": warehouse, "zone": zone, "line": line}


def draw_bookings(
    config: ShipmentConfig,
    calendar: pl.DataFrame,
    crackdown: np.ndarray,
    catalog: pl.DataFrame,
    rng: np.random.Generator,
) -> Bookings:
    """Draw the parcels booked on the days of `calendar`, in creation order.

    Args:
        config: the shipment simulator settings.
        calendar: `features.reference.calendar.daily_calendar` rows of the booking days (day 0 = epoch).
        crackdown: customs crackdown logit shift per destination x day (days since epoch).
        catalog: the SKUs shipped (`sku_catalog` form).
        rng: random stream.

    Returns:
        The bookings.
    """
    epoch, n_days = calendar.get_column("date")[0], calendar.height
    counts = _daily_volume(config, calendar, rng)
    n = int(counts.sum())
    day = np.repeat(np.arange(n_days), counts)
    codes = [c.chapter for c in HS_CHAPTERS]
    sellers = _sellers(config, np.array([codes.index(c) for c in catalog.get_column("hs_chapter")]), rng)
    seller = np.minimum(np.searchsorted(sellers["cum_size"], rng.random(n)), config.n_sellers - 1)
    parcel = _parcels(sellers, seller, catalog, rng, config.domestic_country)
    dest, region, chapter = parcel["dest"], parcel["region"], parcel["chapter"]
    true_value = parcel["true_value"]
    ch = {
        f: np.array([getattr(c, f) for c in HS_CHAPTERS])[chapter]
        for f in ("risk", "seize_p", "refuse_p", "duty_factor")
    }

    # Customs regime when the parcel reaches import; sellers under-declare, more so above de minimis.
    de_minimis, duty = policy_tables(epoch, n_days + _CUSTOMS_LAG_DAYS)
    flat = dest * (n_days + _CUSTOMS_LAG_DAYS) + day + _CUSTOMS_LAG_DAYS
    threshold = de_minimis.ravel()[flat]
    p_under = np.minimum(sellers["under_rate"][seller] * (1.0 + 1.5 * (true_value > threshold)), 0.9)
    under = rng.random(n) < p_under
    factor = rng.uniform(0.2, 0.8, n)
    declared = np.where(under, np.round(true_value * factor, 2), true_value)

    reg = _region_table()
    us_closed = np.array([d.country == "US" for d in DESTINATIONS])[dest] & (threshold == 0)
    near = reg["near"][region]
    stockable = np.array([c.chapter != "30" for c in HS_CHAPTERS])[chapter]
    has_wh = (near >= 0) & sellers["warehouse_user"][seller] & stockable
    mode = _choose_mode(parcel, sellers["tilt"][:, seller], has_wh, us_closed, rng)
    if config.domestic_country is not None:  # every parcel leaves a fulfilment centre in the country
        mode = np.full(n, _WH, np.int8)
    is_wh = mode == _WH

    # Time of day: Chinese office hours for cross-border bookings, the buyer's day for warehouse orders.
    tz = np.array([d.tz_hours for d in DESTINATIONS], dtype=float)[dest]
    cn_hour = np.where(rng.random(n) < 0.5, rng.normal(11.0, 2.2, n), rng.normal(16.0, 2.5, n))
    buyer_hour = np.mod(rng.normal(14.0, 4.5, n), 24.0)
    t0 = day + np.where(is_wh, buyer_hour - tz, np.clip(cn_hour, 7.0, 23.5) - 8.0) / 24.0
    t0 = np.where(t0 < 0.0, t0 + 1.0, np.where(t0 >= n_days, t0 - 1.0, t0))
    utc_day = np.clip(np.floor(t0).astype(np.int64), 0, n_days - 1)

    route = _choose_line(mode, parcel, near, sellers["carrier"][seller], rng)
    warehouse, zone, line = route["warehouse"], route["zone"], route["line"]
    origin = np.where(is_wh, warehouse, sellers["hub"][seller])

    # Promise (lane contract days + the seller's margin), incoterm and freight cost.
    prof = {f: v[mode] for f, v in mode_profile_arrays().items()}
    contract = contract_table(config.transit_scale)[np.where(is_wh, len(HUBS) + warehouse, origin), line]
    capacity = calendar.get_column("origin_capacity").to_numpy()  # sellers extend quotes around CNY
    remote_days = reg["remote_days"][region]
    quoted = np.ceil(
        contract * (1.0 + prof["quote_margin"])
        + prof["quote_days"]
        + sellers["buffer"][seller]
        + 0.5 * remote_days
        + 3.0 * (1.0 - capacity[utc_day]) * ~is_wh
    )
    ls = lines()
    rate = np.where(is_wh, 1.0, HUB_RATE_FACTOR[np.minimum(origin, len(HUBS) - 1)])
    base = np.round(np.array([ln.base_rate_usd for ln in ls])[line] * rate, 2)  # the `lanes` rates
    per_kg = np.round(np.array([ln.per_kg_rate_usd for ln in ls])[line] * rate, 2)
    is_peak = calendar.get_column("ecommerce_peak").is_not_null().to_numpy()[utc_day]
    cost = (base + per_kg * parcel["weight"]) * (1.0 + prof["peak_surcharge"] * is_peak) * (
        1.0 + 0.25 * np.maximum(zone - 1, 0)
    ) + prof["remote_fee_usd"] * (remote_days > 0)
    ddp = rng.random(n) < sellers["ddp"][seller] * np.array([0.5, 1.0, 0.6, 1.0])[mode] + is_wh
    incoterm = np.where(ddp, 0, np.where(mode == _POSTAL, 2, 1)).astype(np.int8)  # DDP / DAP / DDU

    # Customs risk known at booking (none for domestic warehouse deliveries).
    strict = np.array([d.strictness for d in DESTINATIONS])[dest]
    formal = (declared > threshold) & ~is_wh
    at_import = np.minimum(day + _CUSTOMS_LAG_DAYS, crackdown.shape[1] - 1)
    crack = crackdown.ravel()[dest * crackdown.shape[1] + at_import]
    risk_logit = strict + ch["risk"] + prof["inspect_shift"] + crack + 0.4 * us_closed
    p_inspect = inspection_probability(risk_logit, formal, sellers["quality"][seller], under)
    risk = CustomsRisk(
        p_inspect=np.where(is_wh, 0.0, p_inspect),
        is_under=under & ~is_wh,
        severity=np.where(under, np.where(factor < 0.35, 2, 1), 0).astype(np.int8),
        seize_p=np.where(is_wh, 0.0, ch["seize_p"]),
        refuse_p=np.where(is_wh, 0.0, ch["refuse_p"]),
        clear_days=np.where(is_wh, 0.0, prof["clear_days"] + formal * prof["formal_days"]),
        hold_days=np.where(is_wh, 0.0, prof["hold_days"] * np.exp(0.4 * strict)),
    )
    fail_rate = np.array([d.fail_rate for d in DESTINATIONS])[dest]
    p_fail = np.minimum(
        fail_rate
        * prof["fail_factor"]
        * (1.0 + 0.4 * (remote_days > 0))
        * (1.0 + 0.6 * (formal & (incoterm > 0))),
        0.6,
    )  # buyers refuse to pay duties
    countries = [d.country for d in DESTINATIONS]
    dest_of_wh = np.array([countries.index(w.country) for w in WAREHOUSES])
    lastmile = np.array([1 if MODE_PROFILES[m].lastmile == "post" else 2 for m in MODE_CODES])[mode]

    order = np.argsort(t0, kind="stable")
    booking = Booking(
        t0=t0,
        mode=mode,
        origin=origin,
        dest=dest,
        line=line,
        zone=zone,
        remote_days=remote_days,
        tz=tz,
        p_fail=p_fail,
        p_lost=prof["lost_p"],
        origin_cal=3 * dest_of_wh[np.maximum(warehouse, 0)] + 2,
        customs_cal=3 * dest,
        lastmile_cal=3 * dest + lastmile,
        risk=risk,
    ).take(order)
    return Bookings(
        booking=booking,
        seller=seller[order],
        sku=parcel["sku"][order],
        region=region[order],
        warehouse=warehouse[order],
        items=parcel["items"][order],
        weight_kg=parcel["weight"][order],
        true_value_usd=true_value[order],
        declared_value_usd=declared[order],
        is_formal=formal[order],
        duty_rate=(duty.ravel()[flat] * ch["duty_factor"])[order],
        incoterm=incoterm[order],
        promised_day=(np.floor(t0) + quoted)[order].astype(np.int64),
        cost_usd=np.round(cost, 2)[order],
        buyer=rng.integers(0, 10_000_000, n)[order],
    )
