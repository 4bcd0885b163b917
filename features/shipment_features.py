"""Stage: features. Booking-time features of shipments (delay, ETA and customs models), and their targets.

Reads the contract tables `shipments`, optionally `lanes` and `customs_declarations` (as frames); writes a
frame with one row per shipment, in the input order: `shipment_id`, `created_at`, then the features known at
`created_at` (point in time, see `features.history`). Targets are added by a separate function,
`add_shipment_targets` (`features.shipment_targets`), so they never mix with features by accident.

Feature groups (names derived from `BookingFeatureConfig`; `booking_feature_set(config)` lists them):

* lane history per `origin_hub x destination_country x mode x carrier`: trailing transit-day quantiles of the
  last delivered parcels (observed at `delivered_at`: open parcels never count), on-time rate (observed at
  delivery, or when the promised day ended in the destination for a parcel not delivered by then, so late
  parcels are not under-counted while still open; cancelled orders never count), booked volume in the last
  7/28/91 days, congestion (7-day volume over its 91-day weekly mean), recent slowdown (last-10 median minus
  last-100 median), days since the last delivery;
* the hierarchical fallback for thin lanes, the same statistics coarser: `destination_region x mode`, then
  `destination_country x mode` (and `mode`, for the expected transit days only; see `features.lanes`);
* the promise: contract days (`lanes`), promised days, the expected transit days (the first of: lane P80
  when the lane has enough history, contract days, region x mode P80 when the region has enough history,
  destination x mode P80, mode P80, promised days) and the slack;
* calendar (`features.booking_calendar`): weekday and hour (UTC), e-commerce peaks that apply to the
  shipment's countries, Chinese origin capacity, days to the Lunar New Year where the origin keeps it, public
  holidays of the destination and of the origin and peak days inside `[created date, + expected days]`;
* the parcel: weight, declared value against the destination's de minimis threshold, HS chapter, ...;
* customs history per `HS chapter x destination` from `customs_declarations`: inspection rate (observed
  `inspection_known_after_days` after `declared_at`) and clearance days (`released_at - declared_at`,
  observed at `released_at`; declarations never released are censored out of the clearance statistics).

Optional columns: `carrier`, `weight_kg`, `declared_value_usd`, `hs_code`, `item_count`, `incoterm` and
`shipping_cost_usd` may be absent from a source (`TableSpec.omittable_columns`). A feature whose inputs are
absent is not built (never a constant standing in for data): the feature set is derived from the columns
present and records them (`FeatureSet.inputs`, `BookingFeatureConfig.inputs`); lane keys drop `carrier` when
it is absent. Rows scored later must carry the same inputs (a clear error names a missing one).

Example:
    >>> cfg = BookingFeatureConfig()
    >>> "lane_transit_days_q80_last50" in booking_feature_set(cfg).numeric
    True
    >>> "carrier" in booking_feature_set(cfg, columns=["weight_kg", "hs_code"]).names
    False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import polars as pl

from features.booking_calendar import CALENDAR_FEATURES, WINDOW_FEATURES, add_booking_calendar
from features.booking_config import (
    DE_MINIMIS_FEATURES,
    INPUT_FEATURES,
    OPTIONAL_INPUTS,
    BookingFeatureConfig,
    config_inputs,
    lane_keys,
    resolve_booking_config,
    without_key_inputs,
)
from features.customs_rules import add_de_minimis
from features.feature_set import FeatureSet
from features.history import (
    AsOfState,
    AsOfStats,
    LastN,
    add_trailing_stats,
    add_trailing_stats_from,
    asof_state,
    days_between,
)
from features.lanes import (
    contract_days,
    derived_names,
    expected_transit_days,
    lane_feature_names,
    lane_specs,
    transit_quantile_name,
)
from features.shipment_targets import (
    add_shipment_targets,
    is_on_time,
    late_known_at,
    transit_days,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURES",
    "OPTIONAL_INPUTS",
    "BookingFeatureConfig",
    "BookingHistoryState",
    "FeatureSet",
    "add_shipment_targets",
    "booking_feature_set",
    "booking_history_state",
    "build_booking_features",
    "hs_chapter",
    "is_on_time",
    "lane_keys",
    "late_known_at",
    "resolve_booking_config",
    "transit_days",
]
# `FeatureSet`, `add_shipment_targets`, `is_on_time`, `late_known_at` and `transit_days` now live in
# `features.feature_set` and `features.shipment_targets`; they stay importable from here.

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
_DE_MINIMIS = DE_MINIMIS_FEATURES
_PROMISE = ("contract_transit_days", "promised_days", "expected_transit_days", "promise_slack_days")
_ROW = "__booking_row"


# ---------------------------------------------------------------------------------------------------------
# Expressions on contract columns
# ---------------------------------------------------------------------------------------------------------
def hs_chapter(col: str = "hs_code") -> pl.Expr:
    """First two digits of the HS code."""
    return pl.col(col).str.slice(0, 2).alias("hs_chapter")


def _promised_days() -> pl.Expr:
    return (pl.col("promised_date") - pl.col("created_at").dt.date()).dt.total_days().cast(pl.Int32)


# ---------------------------------------------------------------------------------------------------------
# Specs and names
# ---------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _customs_specs(cfg: BookingFeatureConfig) -> tuple[AsOfStats, ...]:
    """Customs statistics per destination, and per HS chapter x destination when shipments carry `hs_code`."""
    key = ("hs_chapter", "destination_country")
    by_chapter = (
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
    )
    by_destination = AsOfStats(
        prefix="customs_dest",
        by=("destination_country",),
        observed_at="inspection_known_at",
        last_n=(LastN(value="is_inspected", n=cfg.customs_dest_n, stats=("rate",)),),
    )
    return (*(by_chapter if "hs_code" in config_inputs(cfg) else ()), by_destination)


def _without_absent(names: tuple[str, ...], cfg: BookingFeatureConfig) -> tuple[str, ...]:
    inputs = config_inputs(cfg)
    absent = {f for col, feats in INPUT_FEATURES.items() if col not in inputs for f in feats}
    return tuple(n for n in names if n not in absent)


@lru_cache(maxsize=16)
def _feature_set(cfg: BookingFeatureConfig) -> FeatureSet:
    history = [*lane_feature_names(cfg), *(n for spec in _customs_specs(cfg) for n in spec.names)]
    numeric = (
        *_PARCEL_NUMERIC,
        *_DE_MINIMIS,
        *CALENDAR_FEATURES,
        *_PROMISE,
        *WINDOW_FEATURES,
        *history,
        *derived_names(cfg),
    )
    return FeatureSet(
        numeric=_without_absent(numeric, cfg),
        categorical=_without_absent(CATEGORICAL_FEATURES, cfg),
        inputs=config_inputs(cfg),
    )


def booking_feature_set(config: BookingFeatureConfig, columns: Iterable[str] | None = None) -> FeatureSet:
    """The numeric and categorical booking features produced by `config`, in output order.

    Args:
        config: windows and keys.
        columns: the shipments columns of the data: features of optional inputs absent from them are left
            out. None: the config's fixed `inputs`, or (when not fixed) every optional column.
    """
    if columns is not None:
        config = resolve_booking_config(config, columns)
    return _feature_set(config)


FEATURES = booking_feature_set(BookingFeatureConfig())


# ---------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------
def _shipment_history(shipments: pl.DataFrame, cfg: BookingFeatureConfig) -> pl.DataFrame:
    keys = dict.fromkeys(k for spec in lane_specs(cfg) for k in spec.by)
    FeatureSet((), (), tuple(k for k in keys if k in OPTIONAL_INPUTS)).require(
        shipments.columns, table="history shipments"
    )
    return shipments.select(
        "created_at",
        "delivered_at",
        *keys,
        transit_days(),
        is_on_time().alias("on_time"),
        late_known_at(has_status="status" in shipments.columns),
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
        config: windows and keys; defaults to `BookingFeatureConfig()`. A key input the history lacks
            (`carrier`) is left out of its `inputs` (the lanes are then keyed without it); the other
            inputs concern the scored rows, not the history.
    """
    cfg = without_key_inputs(config or BookingFeatureConfig(), history.columns)
    ships = _shipment_history(history, cfg)
    customs = None
    if declarations is not None:
        decl = _declaration_history(declarations, cfg)
        customs = tuple(asof_state(decl, spec) for spec in _customs_specs(cfg))
    return BookingHistoryState(
        config=cfg, lane=tuple(asof_state(ships, spec) for spec in lane_specs(cfg)), customs=customs
    )


def _state_config(
    cfg: BookingFeatureConfig, state: BookingHistoryState, columns: list[str]
) -> BookingFeatureConfig:
    """The config rows are scored with against `state`: the state's inputs, each required of the rows.

    A config without fixed `inputs` takes the state's (every optional input, unless the state was built
    with a resolved config or from a history without a key column), so a row without a column the model
    was trained with is refused, naming the column.
    """
    if cfg.model_copy(update={"inputs": None}) != state.config.model_copy(update={"inputs": None}):
        raise ValueError("build_booking_features: `state` was built with another feature config")
    if cfg.inputs is None:
        cfg = cfg.model_copy(update={"inputs": config_inputs(state.config)})
    cfg = resolve_booking_config(cfg, columns)
    missing = [k for k in lane_keys(state.config) if k not in lane_keys(cfg)]
    if missing:
        raise ValueError(f"the lane history is keyed by {', '.join(missing)}: score with the state's config")
    return without_key_inputs(cfg, lane_keys(state.config))


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
        config: windows and keys; defaults to `BookingFeatureConfig()`. Unless its `inputs` are fixed, they
            are the optional columns `shipments` (and `history`) have; fixed ones must all be present. With
            a `state`, unset inputs are the state's (all of them must be present: scoring is strict).
        state: `booking_history_state(history, declarations=..., config=...)` built beforehand: the
            statistics are then as-of joins on it (same values, far cheaper for repeated small calls);
            `history` and `declarations` must not be given with it, and `config` must be its config (its
            `inputs` may be left unset: the state's are used).

    Returns:
        `shipment_id`, `created_at`, then `booking_feature_set(config, shipments.columns).names`. Lane
        statistics are null when the lane has no earlier observation (counts are 0), so thin lanes show as
        nulls plus small `lane_n_obs`; the fallback levels (`region_mode_*`, `dest_mode_*`, `mode_*`) are
        their fallback.

    Raises:
        ValueError: a fixed input (of `config` or of the state) is absent from `shipments`, naming it.
    """
    cfg = config or BookingFeatureConfig()
    if state is not None:
        if history is not None or declarations is not None:
            raise ValueError("build_booking_features: pass either `state` or `history`/`declarations`")
        cfg = _state_config(cfg, state, shipments.columns)
    else:
        cfg = resolve_booking_config(cfg, shipments.columns)
        cfg = without_key_inputs(cfg, shipments.columns if history is None else history.columns)
    features = booking_feature_set(cfg)
    df = shipments.with_row_index(_ROW).sort("created_at", maintain_order=True)
    df = df.with_columns(
        *([hs_chapter()] if "hs_code" in config_inputs(cfg) else []), _promised_days().alias("promised_days")
    )
    if state is not None:
        df = _add_history(df, None, lane_specs(cfg), state.lane)
        customs = _customs_specs(cfg)
        used = None if state.customs is None else tuple(s for s in state.customs if s.spec in customs)
        df = _add_history(df, None, customs, used)
    else:
        ships = _shipment_history(shipments if history is None else history, cfg)
        df = _add_history(df, ships, lane_specs(cfg))
        if declarations is not None:
            declarations = _declaration_history(declarations, cfg)
        df = _add_history(df, declarations, _customs_specs(cfg))
    if lanes is not None:
        keys = lane_keys(cfg)
        df = df.join(contract_days(lanes, keys), on=list(keys), how="left", maintain_order="left")
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("contract_transit_days"))
    short, long = cfg.congestion_days
    slowdown, congestion = derived_names(cfg)
    q50_short = pl.col(transit_quantile_name("lane", cfg.slowdown_short_n, 0.5))
    q50_long = pl.col(transit_quantile_name("lane", cfg.slowdown_long_n, 0.5))
    vol_long = pl.col(f"lane_booked_count_{long}d")
    expected = expected_transit_days(cfg)
    df = df.with_columns(  # one query: the slack repeats the expected days' expression (same arithmetic)
        (q50_short - q50_long).alias(slowdown),
        pl.when(vol_long > 0)
        .then(pl.col(f"lane_booked_count_{short}d") / (vol_long * short / long))
        .alias(congestion),
        expected,
        (pl.col("promised_days") - expected).alias("promise_slack_days"),
    )
    df = add_booking_calendar(df, window_days="expected_transit_days")
    if "declared_value_usd" in config_inputs(cfg):
        df = add_de_minimis(df)
    return df.sort(_ROW).select("shipment_id", "created_at", *features.names)
