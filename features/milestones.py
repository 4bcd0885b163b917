"""Stage: features. In-transit snapshots: the state of a shipment right after each milestone scan.

Reads the contract tables `shipments` and `shipment_events` and the output of
`features.shipment_features.build_booking_features` (as frames); writes one row per (shipment, non-terminal
scan) for training the in-transit ETA model (`build_milestone_snapshots`), or one row per open shipment as
of a moment for scoring it (`latest_snapshot`). Both go through the same code, so the latest snapshot of an
open shipment equals the training row of the same scan.

A snapshot holds what is known at `snapshot_at` (the scan time): the last event and its rank, elapsed days,
days since the previous scan, scans so far, failed delivery attempts, whether customs held the parcel,
countries seen, whether the parcel is in its destination country, days left to the promise, and the as-of
history of remaining days after the same milestone on the same lane (past delivered parcels only, observed
at their `delivered_at`), plus the booking features. The target `remaining_days` is
`delivered_at - snapshot_at` (null when not delivered). Scans after the terminal event (delivered, returned,
lost) are not snapshots.

Multi-leg shipments (`leg_id` on the scans: parallel inbound legs, successive hops) collapse to one chain:
the scans of every leg are read in time order (the state after a scan is that scan's milestone; `leg_id` is
not a feature), and a leg's terminal scan ends the shipment's chain only when it is the last of its legs to
end (scans after it are not states). Without leg ids, or with one leg, this is the first terminal scan.
Lane keys without an optional column the shipments lack (`carrier`) leave it out, as in the booking
features. Days to the promise count to the end of the promised day in the destination's time zone.

Example:
    >>> "lane_event_remaining_days_q50_last50" in milestone_feature_set(MilestoneFeatureConfig()).numeric
    True
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.booking_config import OPTIONAL_INPUTS
from features.contract.schema import EVENT_RANK, TERMINAL_EVENTS, UTC, EventType
from features.feature_set import FeatureSet
from features.history import AsOfStats, LastN, add_trailing_stats, days_between
from features.shipment_features import FEATURES
from features.shipment_targets import promise_ends_at

__all__ = [
    "MILESTONE_FEATURES",
    "MilestoneFeatureConfig",
    "build_milestone_snapshots",
    "latest_snapshot",
    "milestone_feature_set",
]

_STATE_NUMERIC = (
    "last_event_rank",
    "elapsed_days",
    "days_since_prev_scan",
    "n_scans",
    "n_failed_attempts",
    "has_customs_held",
    "n_countries_seen",
    "is_in_destination",
    "days_to_promise",
    "expected_remaining_days",
)
_KEYS = ("shipment_id", "snapshot_at")


class MilestoneFeatureConfig(BaseModel):
    """Keys and windows of the in-transit history features.

    Attributes:
        lane_keys / fallback_keys: the lane and its coarser fallback, each crossed with the last event.
        remaining_n / remaining_quantiles: last-N delivered parcels per lane x event, and the quantiles of
            their remaining days after that event.
        fallback_n: last-N parcels per fallback key x event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane_keys: tuple[str, ...] = ("origin_hub", "destination_country", "mode", "carrier")
    fallback_keys: tuple[str, ...] = ("destination_country", "mode")
    remaining_n: int = Field(default=50, ge=2)
    remaining_quantiles: tuple[float, ...] = (0.5, 0.8, 0.95)
    fallback_n: int = Field(default=200, ge=2)


def _present(keys: tuple[str, ...], columns: list[str]) -> tuple[str, ...]:
    """`keys` without the optional shipments columns absent from `columns` (a lane without `carrier`)."""
    return tuple(k for k in keys if k not in OPTIONAL_INPUTS or k in columns)


def _remaining_stats(prefix: str, keys: tuple[str, ...], n: int, cfg: MilestoneFeatureConfig) -> AsOfStats:
    """Remaining days after the same milestone on past delivered parcels of a group."""
    last = LastN(value="remaining_days", n=n, stats=("mean",), quantiles=cfg.remaining_quantiles)
    return AsOfStats(
        prefix=prefix, by=(*keys, "last_event"), observed_at="delivered_at", last_n=(last,), n_obs=True
    )


def _history_specs(cfg: MilestoneFeatureConfig, columns: list[str] | None = None) -> tuple[AsOfStats, ...]:
    lane, fallback = tuple(cfg.lane_keys), tuple(cfg.fallback_keys)
    if columns is not None:
        lane, fallback = _present(lane, columns), _present(fallback, columns)
    return (
        _remaining_stats("lane_event", lane, cfg.remaining_n, cfg),
        _remaining_stats("dest_mode_event", fallback, cfg.fallback_n, cfg),
    )


def milestone_feature_set(config: MilestoneFeatureConfig, booking: FeatureSet = FEATURES) -> FeatureSet:
    """Snapshot features produced by `config` on top of the booking features `booking`."""
    history = tuple(n for spec in _history_specs(config) for n in spec.names)
    return FeatureSet(
        numeric=(*_STATE_NUMERIC, *history, *booking.numeric),
        categorical=("last_event", *booking.categorical),
    )


MILESTONE_FEATURES = milestone_feature_set(MilestoneFeatureConfig())


_SID = "__sid"  # row number of the shipment in the shipments frame: a fast integer key


def _first_of_shipment() -> pl.Expr:
    return (pl.col(_SID) != pl.col(_SID).shift(1)).fill_null(True)


def _cumsum_per_shipment(expr: pl.Expr) -> pl.Expr:
    """Running sum restarting at each shipment, on scans sorted by shipment (no group-by needed)."""
    total = expr.cum_sum()
    return total - pl.when(_first_of_shipment()).then(total - expr).forward_fill()


def _shipment_terminal(events: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """(scan ends the shipment's chain, scans of the chain ended before this one) on sorted scans.

    Without leg ids a chain ends at its first terminal scan. With legs, at the terminal scan that ends the
    last of the shipment's legs (each leg counted at its own first terminal scan).
    """
    terminal = pl.col("event").is_in(list(TERMINAL_EVENTS)).cast(pl.Int32)
    if "leg_id" not in events.columns or events.get_column("leg_id").null_count() == events.height:
        return terminal > 0, _cumsum_per_shipment(terminal) - terminal > 0
    leg = pl.col("leg_id").fill_null("")
    first_end = (terminal.cum_sum().over(_SID, leg) == 1) & (terminal > 0)
    legs_ended = _cumsum_per_shipment(first_end.cast(pl.Int32))
    n_legs = leg.n_unique().over(_SID)
    ends = first_end & (legs_ended == n_legs)
    return ends, legs_ended - ends.cast(pl.Int32) >= n_legs


def _scan_states(shipments: pl.DataFrame, events: pl.DataFrame, cfg: MilestoneFeatureConfig) -> pl.DataFrame:
    """Every scan up to the end of its shipment's chain, with the state of the shipment after it."""
    keys = list(dict.fromkeys(_present((*cfg.lane_keys, *cfg.fallback_keys), shipments.columns)))
    ship_cols = dict.fromkeys(
        ["shipment_id", "created_at", "delivered_at", "promised_date", "destination_country", *keys]
    )
    rank = pl.col("event").cast(pl.String).replace_strict(EVENT_RANK, return_dtype=pl.Int8)
    one = pl.repeat(1, pl.len(), dtype=pl.Int32)
    legs = ["leg_id"] if "leg_id" in events.columns else []
    ends, after_end = _shipment_terminal(events)
    return (
        events.select("shipment_id", "event", "event_at", "country", *legs)
        .join(shipments.select(*ship_cols).with_row_index(_SID), on="shipment_id", how="inner")
        .sort(_SID, "event_at", "event", maintain_order=True)
        .with_columns(promise_ends_at())
        .with_columns(
            pl.col("event_at").alias("snapshot_at"),
            pl.col("event").alias("last_event"),
            rank.alias("last_event_rank"),
            days_between("created_at", "event_at").alias("elapsed_days"),
            days_between(pl.when(~_first_of_shipment()).then(pl.col("event_at").shift(1)), "event_at")
            .fill_null(days_between("created_at", "event_at"))
            .alias("days_since_prev_scan"),
            _cumsum_per_shipment(one).alias("n_scans"),
            _cumsum_per_shipment((pl.col("event") == "delivery_failed").cast(pl.Int32)).alias(
                "n_failed_attempts"
            ),
            (_cumsum_per_shipment((pl.col("event") == "customs_held").cast(pl.Int32)) > 0).alias(
                "has_customs_held"
            ),
            _cumsum_per_shipment(pl.struct(_SID, "country").is_first_distinct().cast(pl.Int32)).alias(
                "n_countries_seen"
            ),
            (pl.col("country") == pl.col("destination_country")).alias("is_in_destination"),
            days_between("event_at", "promise_ends_at").alias("days_to_promise"),
            ends.alias("__terminal"),
            # Anything scanned after the end of the shipment's chain is not a state of the shipment.
            (~after_end).alias("__keep"),
        )
        .filter("__keep")
        .drop("__keep", "event", "event_at", "country", "promise_ends_at", *legs)
    )


def _add_history_and_booking(
    states: pl.DataFrame,
    shipments: pl.DataFrame,
    history: pl.DataFrame,
    booking_features: pl.DataFrame,
    cfg: MilestoneFeatureConfig,
) -> pl.DataFrame:
    for spec in _history_specs(cfg, shipments.columns):
        states = add_trailing_stats(states, history, spec, at="snapshot_at")
    booking = booking_features.drop(
        c for c in booking_features.columns if c in states.columns and c != "shipment_id"
    )
    # Booking rows in shipment order (one hash join on the shipments), then gathered by the integer key.
    aligned = shipments.select("shipment_id").join(
        booking, on="shipment_id", how="left", maintain_order="left"
    )
    states = states.hstack(aligned.drop("shipment_id")[states[_SID]])
    if "expected_transit_days" in states.columns:
        expected = pl.col("expected_transit_days") - pl.col("elapsed_days")
    else:
        expected = pl.lit(None, dtype=pl.Float64)
    return states.with_columns(expected.alias("expected_remaining_days"))


def _delivered_history(states: pl.DataFrame) -> pl.DataFrame:
    """Past scans of delivered parcels, observed at delivery, with their remaining days."""
    return states.filter(pl.col("delivered_at").is_not_null()).with_columns(
        days_between("snapshot_at", "delivered_at").alias("remaining_days")
    )


def _output(df: pl.DataFrame, features: FeatureSet, extra: tuple[str, ...]) -> pl.DataFrame:
    present = [c for c in features.names if c in df.columns]
    return df.select(*_KEYS, *present, *extra)


def build_milestone_snapshots(
    shipments: pl.DataFrame,
    events: pl.DataFrame,
    booking_features: pl.DataFrame,
    config: MilestoneFeatureConfig | None = None,
) -> pl.DataFrame:
    """One training row per (shipment, non-terminal scan): the state known right after the scan.

    Args:
        shipments: contract `shipments` (all of them: they are also the history).
        events: contract `shipment_events`.
        booking_features: `build_booking_features(shipments, ...)` (joined on `shipment_id`).
        config: history keys and windows; defaults to `MilestoneFeatureConfig()`.

    Returns:
        `shipment_id`, `snapshot_at` (the scan time), the features of
        `milestone_feature_set(config, booking)` present in the inputs, and the target `remaining_days`
        (float days `delivered_at - snapshot_at`, null if not delivered). Rows follow the order of
        `shipments`, then scan time.
    """
    cfg = config or MilestoneFeatureConfig()
    states = _scan_states(shipments, events, cfg).filter(~pl.col("__terminal"))
    out = _add_history_and_booking(states, shipments, _delivered_history(states), booking_features, cfg)
    out = out.with_columns(days_between("snapshot_at", "delivered_at").alias("remaining_days"))
    return _output(out, milestone_feature_set(cfg, _booking_set(booking_features)), ("remaining_days",))


def latest_snapshot(
    shipments: pl.DataFrame,
    events: pl.DataFrame,
    booking_features: pl.DataFrame,
    as_of: dt.datetime,
    config: MilestoneFeatureConfig | None = None,
) -> pl.DataFrame:
    """The state of every shipment open at `as_of`, after its last scan at or before `as_of`.

    Only what is known at `as_of` is used: shipments created by then, scans up to then, deliveries up to
    then (a later `delivered_at` is treated as not yet happened). A shipment whose last scan is terminal is
    closed and left out. A shipment without any scan yet gets a row with `snapshot_at = created_at`, a null
    `last_event` and `n_scans = 0`: score it with the booking model.

    The features of a scanned shipment are exactly those of its training row for the same scan in
    `build_milestone_snapshots`, so the ETA is `snapshot_at + remaining_days` (never before `as_of`).

    Args:
        shipments: contract `shipments` (history included).
        events: contract `shipment_events` (scans after `as_of` are ignored).
        booking_features: `build_booking_features` output covering the open shipments.
        as_of: the scoring moment (timezone-aware UTC).
        config: as for `build_milestone_snapshots`.

    Returns:
        `shipment_id`, `snapshot_at`, the snapshot features, `as_of` and `snapshot_age_days` (days from the
        last scan to `as_of`), one row per open shipment, in the order of `shipments`.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    cfg = config or MilestoneFeatureConfig()
    now = pl.lit(as_of).dt.convert_time_zone(UTC).dt.cast_time_unit("us")
    known = shipments.filter(pl.col("created_at") <= now).with_columns(
        pl.when(pl.col("delivered_at") <= now).then(pl.col("delivered_at")).alias("delivered_at")
    )
    states = _scan_states(known, events.filter(pl.col("event_at") <= now), cfg)
    last = states.group_by(_SID, maintain_order=True).last()
    open_scanned = last.filter(~pl.col("__terminal"))
    unscanned = known.with_row_index(_SID).join(states.select(_SID).unique(), on=_SID, how="anti")
    unscanned_states = unscanned.select(
        _SID,
        pl.col("shipment_id"),
        pl.col("created_at").alias("snapshot_at"),
        *[
            c
            for c in open_scanned.columns
            if c not in (_SID, "shipment_id", "snapshot_at") and c in unscanned.columns
        ],
        pl.lit(None, dtype=EventType).alias("last_event"),
        pl.lit(0, dtype=pl.Int32).alias("n_scans"),
        pl.lit(0.0).alias("elapsed_days"),
        pl.lit(0, dtype=pl.Int32).alias("n_failed_attempts"),
        pl.lit(False).alias("has_customs_held"),
        pl.lit(0, dtype=pl.Int32).alias("n_countries_seen"),
        days_between("created_at", promise_ends_at()).alias("days_to_promise"),
    )
    current = pl.concat([open_scanned, unscanned_states], how="diagonal_relaxed").sort(_SID)
    history = _delivered_history(states.filter(~pl.col("__terminal")))
    out = _add_history_and_booking(current, known, history, booking_features, cfg)
    out = out.with_columns(now.alias("as_of"), days_between("snapshot_at", now).alias("snapshot_age_days"))
    return _output(
        out, milestone_feature_set(cfg, _booking_set(booking_features)), ("as_of", "snapshot_age_days")
    )


def _booking_set(booking_features: pl.DataFrame) -> FeatureSet:
    """The booking feature columns of `booking_features`: String/Enum/Categorical ones are categorical."""
    cols = {c: t for c, t in booking_features.schema.items() if c not in ("shipment_id", "created_at")}
    categorical = tuple(c for c, t in cols.items() if isinstance(t, pl.String | pl.Enum | pl.Categorical))
    return FeatureSet(
        numeric=tuple(c for c in cols if c not in categorical),
        categorical=categorical,
    )
