"""Stage: features. What a shipment's outcome was: transit days, punctuality, and when it became known.

Reads nothing; expressions and a frame function over contract `shipments` columns. The booking features'
history (lane on-time rates) and the booking models' targets both use these, so a label and the history
built from past labels follow one rule:

* lateness is judged on the destination's local date: `delivered_at` converted to the primary time zone of
  `destination_country` (`features.reference.time_zones`) and compared with `promised_date`, which is a
  date in the destination's calendar; the promised day ends at the next local midnight;
* a returned or lost parcel is late (it never reached the buyer by the promise);
* a cancelled order (status `cancelled`, never shipped) is neither on time nor late: no target, and it
  never enters the punctuality history.

Example (delivered 03:00 UTC on 4 January, still 3 January in New York: on time):
    >>> import datetime as dt
    >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> df = pl.DataFrame({"created_at": [t] * 3, "destination_country": ["US"] * 3,
    ...                    "delivered_at": [dt.datetime(2025, 1, 4, 3, tzinfo=dt.UTC), None, None],
    ...                    "promised_date": [dt.date(2025, 1, 3)] * 3,
    ...                    "status": ["delivered", "in_transit", "cancelled"]})
    >>> add_shipment_targets(df, as_of=dt.datetime(2025, 2, 1, tzinfo=dt.UTC)).select(
    ...     "transit_days", "is_late", "is_observed").rows()
    [(3.125, False, True), (None, True, False), (None, None, False)]
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from features.contract.vocabularies import NOT_SHIPPED_STATUSES, UNDELIVERED_STATUSES
from features.history import days_between
from features.reference.time_zones import local_date, local_day_end

__all__ = [
    "add_shipment_targets",
    "is_cancelled",
    "is_on_time",
    "late_known_at",
    "promise_ends_at",
    "transit_days",
]

_DESTINATION = "destination_country"


def transit_days() -> pl.Expr:
    """Door-to-door days `delivered_at - created_at` (null while not delivered)."""
    return days_between("created_at", "delivered_at").alias("transit_days")


def is_cancelled() -> pl.Expr:
    """The order was cancelled before it shipped (false when the frame has no `status`, e.g. a request)."""
    return pl.col("status").cast(pl.String).is_in(list(NOT_SHIPPED_STATUSES)).fill_null(False)


def promise_ends_at() -> pl.Expr:
    """The UTC instant the promised day ends: the next midnight in the destination's time zone."""
    return local_day_end("promised_date", _DESTINATION).alias("promise_ends_at")


def is_on_time() -> pl.Expr:
    """Delivered on or before `promised_date`, on the destination's local date. False when never delivered."""
    on_time = local_date("delivered_at", _DESTINATION) <= pl.col("promised_date")
    return on_time.fill_null(False).alias("is_on_time")


def late_known_at(*, has_status: bool = True) -> pl.Expr:
    """When punctuality is known: at delivery if on time, else when the promised day ended locally.

    Null for a cancelled order (its punctuality is never known). `has_status=False` for frames without a
    `status` column (every row then counts as shipped).
    """
    known = pl.when(is_on_time()).then(pl.col("delivered_at")).otherwise(promise_ends_at())
    if has_status:
        known = pl.when(~is_cancelled()).then(known)
    return known.alias("late_known_at")


def add_shipment_targets(df: pl.DataFrame, *, as_of: dt.datetime | None = None) -> pl.DataFrame:
    """Add the targets of the booking models (kept apart from the features).

    Adds `transit_days` (float days `delivered_at - created_at`, null if not delivered), `is_observed`
    (delivered: the transit time is known) and `is_late`: delivered after `promised_date` (on the
    destination's local date); true for a parcel returned or lost; null for a cancelled order; for an open
    parcel null, or true when `as_of` is given and the promised day had ended (locally) by then.

    Args:
        df: frame with `created_at`, `delivered_at`, `promised_date`, `destination_country` and `status`.
        as_of: the data's "now", to label open parcels already past their promise.
    """
    delivered = pl.col("delivered_at").is_not_null()
    open_late: pl.Expr = pl.lit(None, dtype=pl.Boolean)
    if as_of is not None:
        open_late = pl.when(promise_ends_at() <= pl.lit(as_of).dt.convert_time_zone("UTC")).then(True)
    is_late = (
        pl.when(is_cancelled())
        .then(None)
        .when(delivered)
        .then(~is_on_time())
        .when(pl.col("status").cast(pl.String).is_in(list(UNDELIVERED_STATUSES)))
        .then(True)
        .otherwise(open_late)
    )
    return df.with_columns(transit_days(), is_late.alias("is_late"), delivered.alias("is_observed"))
