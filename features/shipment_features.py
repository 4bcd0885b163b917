"""Stage: features. Booking-time features of shipments (delay, ETA and customs models), and their targets.

Reads the contract tables `shipments`, optionally `lanes` and `customs_declarations` (as frames); writes a
frame with one row per shipment, in the input order: `shipment_id`, `created_at`, then the features known at
`created_at` (point in time, see `features.history`). Targets are added by a separate function,
`add_shipment_targets`, so they never mix with features by accident.

Feature groups (names derived from `BookingFeatureConfig`; `booking_feature_set(config)` lists them):

* lane history per `origin_hub x destination_country x mode x carrier`: trailing transit-day quantiles of the
  last delivered parcels (observed at `delivered_at`: open parcels never count), on-time rate (observed at
  delivery, or the day after the promised date for a parcel not delivered by then, so late parcels are not
  under-counted while still open), booked volume in the last 7/28/91 days, congestion (7-day volume over
  its 91-day weekly mean), recent slowdown (last-10 median minus last-100 median), days since the last
  delivery; the same, coarser, per `destination_country x mode` for thin lanes;
* the promise: contract days (`lanes`), promised days, the expected transit days (lane P80 when the lane
  has enough history, else contract, else destination x mode P80, else promised days) and the slack;
* calendar: weekday and hour (UTC), e-commerce peak, Chinese origin capacity, days to Chinese New Year,
  destination public holidays and peak days inside `[created date, created date + expected days]`;
* the parcel: weight, declared value against the destination's de minimis threshold, HS chapter, ...;
* customs history per `HS chapter x destination` from `customs_declarations`: inspection rate (observed
  `inspection_known_after_days` after `declared_at`) and clearance days (`released_at - declared_at`,
  observed at `released_at`; declarations never released are censored out of the clearance statistics).

Example:
    >>> cfg = BookingFeatureConfig()
    >>> "lane_transit_days_q80_last50" in booking_feature_set(cfg).numeric
    True
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from functools import lru_cache

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.booking_calendar import CALENDAR_FEATURES, WINDOW_FEATURES, add_booking_calendar
from features.contract.schema import UTC
from features.customs_rules import add_de_minimis
from features.history import (
    AsOfState,
    AsOfStats,
    LastDays,
    LastN,
    add_trailing_stats,
    add_trailing_stats_from,
    asof_state,
    days_between,
    quantile_label,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURES",
    "BookingFeatureConfig",
    "BookingHistoryState",
    "FeatureSet",
    "add_shipment_targets",
    "booking_feature_set",
    "booking_history_state",
    "build_booking_features",
    "hs_chapter",
    "is_on_time",
    "late_known_at",
    "transit_days",
]

CATEGORICAL_FEATURES: tuple[str, ...] = (
    "mode",
    "carrier",
    "origin_hub",
    "destination_country",
    "destination_region",
    "hs_chapter",
    "incoterm",
    "ecommerce_peak",
)
_PARCEL_NUMERIC = ("weight_kg", "declared_value_usd", "item_count")
_DE_MINIMIS = ("de_minimis_usd", "is_over_de_minimis", "de_minimis_headroom_usd")
_PROMISE = ("contract_transit_days", "promised_days", "expected_transit_days", "promise_slack_days")
_ROW = "__booking_row"


@dataclass(frozen=True)
class FeatureSet:
    """The feature columns a model reads: numeric ones as they are, categorical ones to encode.

    Categorical columns are String or Enum in the frame; the model layer encodes them (fixed `pl.Enum`
    levels for `mode`, `incoterm`, `ecommerce_peak`, `last_event`; a vocabulary saved with the model for
    the String ones). Numeric columns are Int/Float/Boolean.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """All feature columns, numeric first."""
        return (*self.numeric, *self.categorical)


class BookingFeatureConfig(BaseModel):
    """Windows, quantiles and keys of the booking features. The same config always gives the same names.

    Attributes:
        lane_keys: the lane.
        fallback_keys: the coarser key used for thin lanes.
        transit_n / transit_quantiles: last-N delivered parcels and the transit-day quantiles per lane.
        slowdown_short_n / slowdown_long_n: medians compared for the recent slowdown.
        on_time_n: last-N parcels whose punctuality is known, per lane.
        fallback_n: last-N parcels for the fallback key's statistics.
        volume_days: booked-volume windows (days).
        congestion_days: (short, long) windows of the congestion ratio; both are added to the volumes.
        min_lane_obs: delivered parcels a lane needs before its P80 is the expected transit time.
        customs_n / customs_dest_n: last-N declarations per HS chapter x destination / per destination.
        clearance_quantile: quantile of clearance days per HS chapter x destination.
        inspection_known_after_days: delay after `declared_at` at which the inspection flag is known.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane_keys: tuple[str, ...] = ("origin_hub", "destination_country", "mode", "carrier")
    fallback_keys: tuple[str, ...] = ("destination_country", "mode")
    transit_n: int = Field(default=50, ge=2)
    transit_quantiles: tuple[float, ...] = (0.5, 0.8, 0.95)
    slowdown_short_n: int = Field(default=10, ge=1)
    slowdown_long_n: int = Field(default=100, ge=2)
    on_time_n: int = Field(default=100, ge=1)
    fallback_n: int = Field(default=200, ge=2)
    volume_days: tuple[int, ...] = (7, 28)
    congestion_days: tuple[int, int] = (7, 91)
    min_lane_obs: int = Field(default=10, ge=1)
    customs_n: int = Field(default=200, ge=1)
    customs_dest_n: int = Field(default=1000, ge=1)
    clearance_quantile: float = Field(default=0.9, gt=0.0, lt=1.0)
    inspection_known_after_days: float = Field(default=1.0, ge=0.0)


# ---------------------------------------------------------------------------------------------------------
# Expressions on contract columns
# ---------------------------------------------------------------------------------------------------------
def transit_days() -> pl.Expr:
    """Door-to-door days `delivered_at - created_at` (null while not delivered)."""
    return days_between("created_at", "delivered_at").alias("transit_days")


def is_on_time() -> pl.Expr:
    """Delivered on or before `promised_date` (UTC date). False for parcels never delivered."""
    on_time = pl.col("delivered_at").dt.date() <= pl.col("promised_date")
    return on_time.fill_null(False).alias("is_on_time")


def late_known_at() -> pl.Expr:
    """When punctuality is known: at delivery if on time, else at the end of the promised day (UTC)."""
    end_of_promise = (pl.col("promised_date") + pl.duration(days=1)).cast(pl.Datetime("us", UTC))
    return pl.when(is_on_time()).then(pl.col("delivered_at")).otherwise(end_of_promise).alias("late_known_at")


def hs_chapter(col: str = "hs_code") -> pl.Expr:
    """First two digits of the HS code."""
    return pl.col(col).str.slice(0, 2).alias("hs_chapter")


def _promised_days() -> pl.Expr:
    return (pl.col("promised_date") - pl.col("created_at").dt.date()).dt.total_days().cast(pl.Int32)


# ---------------------------------------------------------------------------------------------------------
# Specs and names
# ---------------------------------------------------------------------------------------------------------
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
def _lane_specs(cfg: BookingFeatureConfig) -> tuple[AsOfStats, ...]:
    short, long = cfg.congestion_days
    volume = sorted({*cfg.volume_days, short, long})
    return (
        AsOfStats(
            prefix="lane",
            by=cfg.lane_keys,
            observed_at="delivered_at",
            last_n=_transit_windows(cfg),
            n_obs=True,
            days_since_last=True,
        ),
        AsOfStats(
            prefix="lane",
            by=cfg.lane_keys,
            observed_at="late_known_at",
            last_n=(LastN(value="on_time", n=cfg.on_time_n, stats=("rate",)),),
        ),
        AsOfStats(
            prefix="lane_booked",
            by=cfg.lane_keys,
            observed_at="created_at",
            last_days=tuple(LastDays(days=d) for d in volume),
        ),
        AsOfStats(
            prefix="dest_mode",
            by=cfg.fallback_keys,
            observed_at="delivered_at",
            last_n=(
                LastN(
                    value="transit_days", n=cfg.fallback_n, stats=("mean",), quantiles=cfg.transit_quantiles
                ),
            ),
            n_obs=True,
        ),
        AsOfStats(
            prefix="dest_mode",
            by=cfg.fallback_keys,
            observed_at="late_known_at",
            last_n=(LastN(value="on_time", n=cfg.fallback_n, stats=("rate",)),),
        ),
    )


@lru_cache(maxsize=16)
def _customs_specs(cfg: BookingFeatureConfig) -> tuple[AsOfStats, ...]:
    key = ("hs_chapter", "destination_country")
    return (
        AsOfStats(
            prefix="customs",
            by=key,
            observed_at="inspection_known_at",
            last_n=(LastN(value="is_inspected", n=cfg.customs_n, stats=("rate",)),),
            n_obs=True,
        ),
        AsOfStats(
            prefix="customs",
            by=key,
            observed_at="released_at",
            last_n=(
                LastN(
                    value="clearance_days",
                    n=cfg.customs_n,
                    stats=("mean",),
                    quantiles=(cfg.clearance_quantile,),
                ),
            ),
        ),
        AsOfStats(
            prefix="customs_dest",
            by=("destination_country",),
            observed_at="inspection_known_at",
            last_n=(LastN(value="is_inspected", n=cfg.customs_dest_n, stats=("rate",)),),
        ),
    )


def _q(prefix: str, n: int, q: float) -> str:
    return f"{prefix}_transit_days_{quantile_label(q)}_last{n}"


def _derived_names(cfg: BookingFeatureConfig) -> tuple[str, ...]:
    short, long = cfg.congestion_days
    return (
        f"lane_transit_days_q50_last{cfg.slowdown_short_n}_minus_last{cfg.slowdown_long_n}",
        f"lane_congestion_{short}d_vs_{long}d",
    )


@lru_cache(maxsize=16)
def booking_feature_set(config: BookingFeatureConfig) -> FeatureSet:
    """The numeric and categorical booking features produced by `config`, in output order."""
    history = [n for spec in (*_lane_specs(config), *_customs_specs(config)) for n in spec.names]
    numeric = (
        *_PARCEL_NUMERIC,
        *_DE_MINIMIS,
        *CALENDAR_FEATURES,
        *_PROMISE,
        *WINDOW_FEATURES,
        *history,
        *_derived_names(config),
    )
    return FeatureSet(numeric=tuple(numeric), categorical=CATEGORICAL_FEATURES)


FEATURES = booking_feature_set(BookingFeatureConfig())


# ---------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------
def _shipment_history(shipments: pl.DataFrame, cfg: BookingFeatureConfig) -> pl.DataFrame:
    keys = dict.fromkeys([*cfg.lane_keys, *cfg.fallback_keys])
    return shipments.select(
        "created_at",
        "delivered_at",
        *keys,
        transit_days(),
        is_on_time().alias("on_time"),
        late_known_at(),
    )


def _declaration_history(declarations: pl.DataFrame, cfg: BookingFeatureConfig) -> pl.DataFrame:
    lag = pl.duration(microseconds=round(cfg.inspection_known_after_days * 86_400_000_000))
    return declarations.select(
        hs_chapter(),
        "destination_country",
        "released_at",
        "is_inspected",
        (pl.col("declared_at") + lag).alias("inspection_known_at"),
        days_between("declared_at", "released_at").alias("clearance_days"),
    )


def _add_history(
    df: pl.DataFrame,
    history: pl.DataFrame | None,
    specs: tuple[AsOfStats, ...],
    states: tuple[AsOfState, ...] | None = None,
) -> pl.DataFrame:
    if states is not None:
        for state in states:
            df = add_trailing_stats_from(df, state, at="created_at")
        return df
    for spec in specs:
        if history is None:  # no table: unknown, with the dtypes the statistics would have
            counts = {f"{spec.prefix}_n_obs"} | {
                name
                for w in spec.last_days
                for stat, name in zip(w.stats, w.names(spec.prefix), strict=True)
                if stat == "count"
            }
            df = df.with_columns(
                pl.lit(None, dtype=pl.Int64 if name in counts else pl.Float64).alias(name)
                for name in spec.names
            )
        else:
            df = add_trailing_stats(df, history, spec, at="created_at")
    return df


@dataclass(frozen=True)
class BookingHistoryState:
    """The as-of state of every history statistic of the booking features, over a fixed history.

    Built once by `booking_history_state` (e.g. by the Predictor at load, over the feature snapshot);
    `build_booking_features(rows, state=...)` then gives the same features as
    `build_booking_features(rows, history=..., declarations=...)` on that history, by as-of joins only.

    Attributes:
        config: the feature config the state was built with.
        lane: states of the shipment-history statistics (lane, booked volume, destination x mode).
        customs: states of the customs statistics, or None without declarations.
    """

    config: BookingFeatureConfig
    lane: tuple[AsOfState, ...]
    customs: tuple[AsOfState, ...] | None


def booking_history_state(
    history: pl.DataFrame,
    *,
    declarations: pl.DataFrame | None = None,
    config: BookingFeatureConfig | None = None,
) -> BookingHistoryState:
    """The `BookingHistoryState` of a shipments history (and customs declarations), for repeated scoring.

    Args:
        history: contract `shipments` the lane statistics are computed from.
        declarations: contract `customs_declarations`, for the customs statistics (null without it).
        config: windows and keys; defaults to `BookingFeatureConfig()`.
    """
    cfg = config or BookingFeatureConfig()
    ships = _shipment_history(history, cfg)
    customs = None
    if declarations is not None:
        decl = _declaration_history(declarations, cfg)
        customs = tuple(asof_state(decl, spec) for spec in _customs_specs(cfg))
    return BookingHistoryState(
        config=cfg, lane=tuple(asof_state(ships, spec) for spec in _lane_specs(cfg)), customs=customs
    )


def _expected_transit_days(cfg: BookingFeatureConfig) -> pl.Expr:
    p80 = 0.8 if 0.8 in cfg.transit_quantiles else max(cfg.transit_quantiles)
    lane = pl.col(_q("lane", cfg.transit_n, p80))
    lane = pl.when(pl.col("lane_n_obs") >= cfg.min_lane_obs).then(lane)
    fallback = pl.col(_q("dest_mode", cfg.fallback_n, p80))
    promised = pl.col("promised_days").cast(pl.Float64)
    return pl.coalesce(lane, pl.col("contract_transit_days"), fallback, promised).alias(
        "expected_transit_days"
    )


_CONTRACTS: list[tuple[pl.DataFrame, tuple[str, ...], pl.DataFrame]] = []  # one entry: lanes, keys, table
_CONTRACTS_LOCK = threading.Lock()


def _contracts(lanes: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """`contract_transit_days` per lane (first row of a duplicated lane), kept for the last `lanes` frame.

    The cache holds the frame itself, so an identity match is the same (immutable) frame: repeated
    scoring against one `lanes` table deduplicates it once.
    """
    with _CONTRACTS_LOCK:
        if _CONTRACTS and _CONTRACTS[0][0] is lanes and _CONTRACTS[0][1] == keys:
            return _CONTRACTS[0][2]
    table = lanes.select(*keys, "contract_transit_days").unique(list(keys), keep="first", maintain_order=True)
    with _CONTRACTS_LOCK:
        _CONTRACTS[:] = [(lanes, keys, table)]
    return table


def build_booking_features(
    shipments: pl.DataFrame,
    *,
    history: pl.DataFrame | None = None,
    lanes: pl.DataFrame | None = None,
    declarations: pl.DataFrame | None = None,
    config: BookingFeatureConfig | None = None,
    state: BookingHistoryState | None = None,
) -> pl.DataFrame:
    """Features known at each shipment's `created_at`, one row per shipment in the input order.

    The lane statistics come from `history` (by default `shipments` itself): every shipment the system
    knows of, with its current delivery state. Each row sees only what was observed strictly before its own
    `created_at`, so training passes the whole table once, and scoring new bookings passes them as
    `shipments` with the known table as `history` (only the recent part of it is then rolled over).

    Args:
        shipments: contract `shipments` rows to enrich (validated).
        history: contract `shipments` to compute the lane statistics from; defaults to `shipments`.
        lanes: contract `lanes` table, for `contract_transit_days` (null without it).
        declarations: contract `customs_declarations`, for the customs history (null columns without it).
        config: windows and keys; defaults to `BookingFeatureConfig()`.
        state: `booking_history_state(history, declarations=..., config=...)` built beforehand: the
            statistics are then as-of joins on it (same values, far cheaper for repeated small calls);
            `history` and `declarations` must not be given with it, and `config` must be its config.

    Returns:
        `shipment_id`, `created_at`, then `booking_feature_set(config).names`. Lane statistics are null when
        the lane has no earlier observation (counts are 0), so thin lanes show as nulls plus small
        `lane_n_obs`; the `dest_mode_*` columns are their fallback.
    """
    cfg = config or BookingFeatureConfig()
    if state is not None:
        if history is not None or declarations is not None:
            raise ValueError("build_booking_features: pass either `state` or `history`/`declarations`")
        if state.config != cfg:
            raise ValueError("build_booking_features: `state` was built with another feature config")
    features = booking_feature_set(cfg)
    df = (
        shipments.with_row_index(_ROW)
        .sort("created_at", maintain_order=True)
        .with_columns(hs_chapter(), _promised_days().alias("promised_days"))
    )
    if state is not None:
        df = _add_history(df, None, _lane_specs(cfg), state.lane)
        df = _add_history(df, None, _customs_specs(cfg), state.customs)
    else:
        ships = _shipment_history(shipments if history is None else history, cfg)
        df = _add_history(df, ships, _lane_specs(cfg))
        if declarations is not None:
            declarations = _declaration_history(declarations, cfg)
        df = _add_history(df, declarations, _customs_specs(cfg))
    if lanes is not None:
        df = df.join(
            _contracts(lanes, cfg.lane_keys), on=list(cfg.lane_keys), how="left", maintain_order="left"
        )
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("contract_transit_days"))
    short, long = cfg.congestion_days
    slowdown, congestion = _derived_names(cfg)
    q50_short = pl.col(_q("lane", cfg.slowdown_short_n, 0.5))
    q50_long = pl.col(_q("lane", cfg.slowdown_long_n, 0.5))
    vol_long = pl.col(f"lane_booked_count_{long}d")
    expected = _expected_transit_days(cfg)
    df = df.with_columns(  # one query: the slack repeats the expected days' expression (same arithmetic)
        (q50_short - q50_long).alias(slowdown),
        pl.when(vol_long > 0)
        .then(pl.col(f"lane_booked_count_{short}d") / (vol_long * short / long))
        .alias(congestion),
        expected,
        (pl.col("promised_days") - expected).alias("promise_slack_days"),
    )
    df = add_de_minimis(add_booking_calendar(df, window_days="expected_transit_days"))
    return df.sort(_ROW).select("shipment_id", "created_at", *features.names)


def add_shipment_targets(df: pl.DataFrame, *, as_of: dt.datetime | None = None) -> pl.DataFrame:
    """Add the targets of the booking models (kept apart from the features).

    Adds `transit_days` (float days `delivered_at - created_at`, null if not delivered), `is_observed`
    (delivered: the transit time is known) and `is_late`: delivered after `promised_date`; true for a parcel
    returned or lost (it never reached the buyer by the promise); for an open parcel null, or true when
    `as_of` is given and the promised day ended before it (it is already known to be late).

    Args:
        df: frame with `created_at`, `delivered_at`, `promised_date` and `status`.
        as_of: the data's "now", to label open parcels already past their promise.

    Example:
        >>> import datetime as dt
        >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        >>> df = pl.DataFrame({"created_at": [t, t], "delivered_at": [t + dt.timedelta(days=3), None],
        ...                    "promised_date": [dt.date(2025, 1, 3)] * 2,
        ...                    "status": ["delivered", "in_transit"]})
        >>> add_shipment_targets(df).select("transit_days", "is_late", "is_observed").rows()
        [(3.0, True, True), (None, None, False)]
    """
    delivered = pl.col("delivered_at").is_not_null()
    open_late: pl.Expr = pl.lit(None, dtype=pl.Boolean)
    if as_of is not None:
        past_promise = pl.col("promised_date") < pl.lit(as_of).dt.date()
        open_late = pl.when(past_promise).then(True)
    is_late = (
        pl.when(delivered)
        .then(pl.col("delivered_at").dt.date() > pl.col("promised_date"))
        .when(pl.col("status").cast(pl.String).is_in(["returned", "lost"]))
        .then(True)
        .otherwise(open_late)
    )
    return df.with_columns(transit_days(), is_late.alias("is_late"), delivered.alias("is_observed"))
