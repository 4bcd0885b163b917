"""Stage: features. Lane statistics of the booking features: keys, fallback levels, quotes, expected days.

Reads frames (no I/O). The point-in-time statistics themselves are computed by `features.history`; this
module says which ones the booking features hold and how they combine:

* per lane (`lane_keys`: `origin_hub x destination_country x mode x carrier`, without `carrier` when the
  data has none): transit-day quantiles of the last delivered parcels, the slowdown medians, the on-time
  rate, booked volumes and days since the last delivery;
* the hierarchical fallback for thin lanes, finest first (`fallback_levels`): `destination_region x mode`
  and `destination_country x mode`, each with transit quantiles, observation count and on-time rate, then
  `mode`, whose transit quantiles only feed the expected transit days (at any moment they are one value per
  mode, which the `mode` feature already encodes, so they are not features of their own);
* `contract_transit_days` from the `lanes` table (a same-day quote is 0), and the expected transit days:
  the lane P80 when the lane has `min_lane_obs` deliveries, else the contract days, else the region P80
  when the region has `min_lane_obs` deliveries, else the coarser levels' P80, else the promised days.

Example:
    >>> from features.booking_config import BookingFeatureConfig
    >>> [spec.prefix for spec in lane_specs(BookingFeatureConfig())][:4]
    ['lane', 'lane', 'lane_booked', 'region_mode']
"""

from __future__ import annotations

import threading
from functools import lru_cache

import polars as pl

from features.booking_config import BookingFeatureConfig, fallback_levels, lane_keys
from features.history import AsOfStats, LastDays, LastN, quantile_label

__all__ = [
    "MODE_LEVEL",
    "contract_days",
    "derived_names",
    "expected_transit_days",
    "lane_feature_names",
    "lane_specs",
    "transit_quantile_name",
]

MODE_LEVEL = "mode"
"""Prefix of the coarsest fallback level: its transit quantiles feed only the expected transit days."""


def _transit_windows(cfg: BookingFeatureConfig) -> tuple[LastN, ...]:
    """Lane transit windows: the main one (mean, std, quantiles) and the two medians of the slowdown."""
    quantiles: dict[int, set[float]] = {cfg.transit_n: set(cfg.transit_quantiles)}
    for n in (cfg.slowdown_short_n, cfg.slowdown_long_n):
        quantiles.setdefault(n, set()).add(0.5)
    return tuple(
        LastN(
            value="transit_days",
            n=n,
            stats=("mean", "std") if n == cfg.transit_n else (),
            quantiles=tuple(sorted(qs)),
        )
        for n, qs in quantiles.items()
    )


@lru_cache(maxsize=16)
def lane_specs(cfg: BookingFeatureConfig) -> tuple[AsOfStats, ...]:
    """The as-of statistics of the lane and of its fallback levels, for a resolved config."""
    short, long = cfg.congestion_days
    volume = sorted({*cfg.volume_days, short, long})
    lane = lane_keys(cfg)
    fallback = [
        spec
        for prefix, keys in fallback_levels(cfg)
        for spec in (
            AsOfStats(
                prefix=prefix,
                by=keys,
                observed_at="delivered_at",
                last_n=(
                    LastN(
                        value="transit_days",
                        n=cfg.fallback_n,
                        stats=("mean",),
                        quantiles=cfg.transit_quantiles,
                    ),
                ),
                n_obs=True,
            ),
            AsOfStats(
                prefix=prefix,
                by=keys,
                observed_at="late_known_at",
                last_n=(LastN(value="on_time", n=cfg.fallback_n, stats=("rate",)),),
            ),
        )[: 1 if prefix == MODE_LEVEL else 2]
    ]
    return (
        AsOfStats(
            prefix="lane",
            by=lane,
            observed_at="delivered_at",
            last_n=_transit_windows(cfg),
            n_obs=True,
            days_since_last=True,
        ),
        AsOfStats(
            prefix="lane",
            by=lane,
            observed_at="late_known_at",
            last_n=(LastN(value="on_time", n=cfg.on_time_n, stats=("rate",)),),
        ),
        AsOfStats(
            prefix="lane_booked",
            by=lane,
            observed_at="created_at",
            last_days=tuple(LastDays(days=d) for d in volume),
        ),
        *fallback,
    )


def lane_feature_names(cfg: BookingFeatureConfig) -> tuple[str, ...]:
    """The lane statistics that are features: every one but the mode level's (see the module doc)."""
    return tuple(n for spec in lane_specs(cfg) if spec.prefix != MODE_LEVEL for n in spec.names)


def transit_quantile_name(prefix: str, n: int, q: float) -> str:
    """Name of the transit-day quantile `q` over the last `n` parcels of a statistics group."""
    return f"{prefix}_transit_days_{quantile_label(q)}_last{n}"


def derived_names(cfg: BookingFeatureConfig) -> tuple[str, ...]:
    """Names of the slowdown and the congestion ratio."""
    short, long = cfg.congestion_days
    return (
        f"lane_transit_days_q50_last{cfg.slowdown_short_n}_minus_last{cfg.slowdown_long_n}",
        f"lane_congestion_{short}d_vs_{long}d",
    )


def expected_transit_days(cfg: BookingFeatureConfig) -> pl.Expr:
    """Lane P80 (enough history), contract days, then the fallback levels' P80 (finest first), promised days.

    The finest fallback level (`region_mode`) counts only with `min_lane_obs` observations, like the lane;
    the coarser ones as soon as they have any.
    """
    p80 = 0.8 if 0.8 in cfg.transit_quantiles else max(cfg.transit_quantiles)
    lane = pl.col(transit_quantile_name("lane", cfg.transit_n, p80))
    candidates = [
        pl.when(pl.col("lane_n_obs") >= cfg.min_lane_obs).then(lane),
        pl.col("contract_transit_days"),
    ]
    for i, (prefix, _keys) in enumerate(fallback_levels(cfg)):
        level = pl.col(transit_quantile_name(prefix, cfg.fallback_n, p80))
        thin = i == 0 and len(fallback_levels(cfg)) > 1
        candidates.append(
            pl.when(pl.col(f"{prefix}_n_obs") >= cfg.min_lane_obs).then(level) if thin else level
        )
    promised = pl.col("promised_days").cast(pl.Float64)
    return pl.coalesce(*candidates, promised).alias("expected_transit_days")


_CONTRACTS: list[tuple[pl.DataFrame, tuple[str, ...], pl.DataFrame]] = []  # one entry: lanes, keys, table
_CONTRACTS_LOCK = threading.Lock()


def contract_days(lanes: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """`contract_transit_days` per lane (first row of a duplicated lane), kept for the last `lanes` frame.

    The cache holds the frame itself, so an identity match is the same (immutable) frame: repeated
    scoring against one `lanes` table deduplicates it once.
    """
    with _CONTRACTS_LOCK:
        if _CONTRACTS and _CONTRACTS[0][0] is lanes and _CONTRACTS[0][1] == keys:
            return _CONTRACTS[0][2]
    if "carrier" in keys:
        table = lanes.select(*keys, "contract_transit_days").unique(
            list(keys), keep="first", maintain_order=True
        )
    else:  # shipments without a carrier: the median quote of the lane's carriers
        table = lanes.group_by(list(keys), maintain_order=True).agg(pl.col("contract_transit_days").median())
    with _CONTRACTS_LOCK:
        _CONTRACTS[:] = [(lanes, keys, table)]
    return table
