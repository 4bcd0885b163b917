"""Stage: serving. The feature snapshot: the history the Predictor needs to build features like training does.

Training writes it next to the models (`<models_dir>/snapshot/`); the Predictor reads it. It holds the
point-in-time history the feature builders read, pruned to the columns they use:

* `shipments.parquet`: every known shipment (lane keys, `created_at`, `delivered_at`, `promised_date`,
  `status`, ...), the history of the lane and destination x mode statistics and of the in-transit history;
* `shipment_events.parquet`: their milestone scans (remaining-days history after each milestone);
* `customs_declarations.parquet`: customs history per HS chapter x destination;
* `lanes.parquet`: contract transit days;
* `snapshot.json`: `as_of` (the data's "now"), the feature configs the models were trained with, the data
  version, row counts and a content hash.

Nothing is aggregated away: the Predictor calls the *same* builders as training on this history, so batch
scoring, online scoring and training cannot drift apart. The booking features of a request are as-of joins
on the history state the Predictor builds from this snapshot at load
(`features.shipment_features.booking_history_state`). What makes a few-row in-transit request cheap is
`SnapshotIndex`: at load time the history is partitioned by the keys every as-of statistic is grouped by
(e.g. `destination_country x mode` for shipments, `destination_country` for declarations); a history row of
another partition can never enter a statistic of the request's rows (every statistic is grouped by a
superset of these keys), so the builders run on the request's partitions only and give identical values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from features.milestones import MilestoneFeatureConfig
from features.shipment_features import BookingFeatureConfig

__all__ = [
    "SNAPSHOT_DIR",
    "FeatureSnapshot",
    "HistorySlice",
    "SnapshotIndex",
    "build_snapshot",
    "read_snapshot",
    "write_snapshot",
]

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshot"
_META = "snapshot.json"
FORMAT_VERSION = 1
_SHIPMENT_COLS = (
    "shipment_id",
    "created_at",
    "origin_country",
    "origin_hub",
    "destination_country",
    "destination_region",
    "mode",
    "carrier",
    "promised_date",
    "delivered_at",
    "status",
)
_EVENT_COLS = ("shipment_id", "event", "event_at", "country")
_DECLARATION_COLS = (
    "declaration_id",
    "shipment_id",
    "declared_at",
    "destination_country",
    "hs_code",
    "declared_value_usd",
    "is_inspected",
    "outcome",
    "released_at",
)
# Every customs statistic of the booking builder is grouped by the destination (alone or with the HS chapter).
_DECLARATION_KEYS = ("destination_country",)


@dataclass(frozen=True)
class FeatureSnapshot:
    """The history the feature builders read, as known at `as_of`.

    Attributes:
        shipments: contract `shipments` history (pruned columns).
        events: contract `shipment_events` of those shipments, or None.
        declarations: contract `customs_declarations`, or None.
        lanes: contract `lanes`, or None.
        as_of: the latest moment in the history (UTC).
        booking: booking feature config the models were trained with.
        milestone: milestone feature config the models were trained with.
        data_version: the data version (DVC md5) the snapshot was built from, if known.
    """

    shipments: pl.DataFrame
    events: pl.DataFrame | None
    declarations: pl.DataFrame | None
    lanes: pl.DataFrame | None
    as_of: dt.datetime
    booking: BookingFeatureConfig = field(default_factory=BookingFeatureConfig)
    milestone: MilestoneFeatureConfig = field(default_factory=MilestoneFeatureConfig)
    data_version: str | None = None

    @property
    def content_hash(self) -> str:
        """A short hash of the history (row counts, `as_of`, configs), the snapshot's version."""
        parts = [
            str(self.as_of),
            self.booking.model_dump_json(),
            self.milestone.model_dump_json(),
            *(
                f"{name}:{frame.height}:{frame.hash_rows().sum() if frame.height else 0}"
                for name, frame in self.tables().items()
            ),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]

    def tables(self) -> dict[str, pl.DataFrame]:
        """The non-empty tables by contract name."""
        out = {"shipments": self.shipments}
        for name, frame in (
            ("shipment_events", self.events),
            ("customs_declarations", self.declarations),
            ("lanes", self.lanes),
        ):
            if frame is not None:
                out[name] = frame
        return out


def _select(frame: pl.DataFrame | None, cols: tuple[str, ...]) -> pl.DataFrame | None:
    if frame is None:
        return None
    return frame.select(c for c in cols if c in frame.columns)


def build_snapshot(
    tables: dict[str, pl.DataFrame],
    *,
    booking: BookingFeatureConfig | None = None,
    milestone: MilestoneFeatureConfig | None = None,
    data_version: str | None = None,
) -> FeatureSnapshot:
    """The feature snapshot of validated contract tables (no model needed, no retraining).

    Args:
        tables: `shipments` (required), `shipment_events`, `customs_declarations`, `lanes`.
        booking: booking feature config of the models (default: the builder's default).
        milestone: milestone feature config of the models (default: the builder's default).
        data_version: data version to record.

    Raises:
        ValueError: when `shipments` is missing or empty.
    """
    shipments = tables.get("shipments")
    if shipments is None or shipments.is_empty():
        raise ValueError("a feature snapshot needs a non-empty `shipments` table")
    events = _select(tables.get("shipment_events"), _EVENT_COLS)
    candidates = [shipments["created_at"].max()]
    if events is not None and events.height:
        candidates.append(events["event_at"].max())
    as_of: dt.datetime = max(c for c in candidates if c is not None)  # type: ignore[type-var,assignment]
    return FeatureSnapshot(
        shipments=shipments.select(c for c in _SHIPMENT_COLS if c in shipments.columns),
        events=events,
        declarations=_select(tables.get("customs_declarations"), _DECLARATION_COLS),
        lanes=tables.get("lanes"),
        as_of=as_of,
        booking=booking or BookingFeatureConfig(),
        milestone=milestone or MilestoneFeatureConfig(),
        data_version=data_version,
    )


def write_snapshot(snapshot: FeatureSnapshot, directory: Path) -> Path:
    """Write the snapshot's tables (Parquet) and `snapshot.json` into `directory` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    tables = snapshot.tables()
    for name, frame in tables.items():
        frame.write_parquet(directory / f"{name}.parquet")
    meta = {
        "format_version": FORMAT_VERSION,
        "as_of": snapshot.as_of.isoformat(),
        "booking": snapshot.booking.model_dump(mode="json"),
        "milestone": snapshot.milestone.model_dump(mode="json"),
        "data_version": snapshot.data_version,
        "rows": {name: frame.height for name, frame in tables.items()},
        "content_hash": snapshot.content_hash,
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    (directory / _META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info("feature snapshot written to %s (%s)", directory, meta["rows"])
    return directory


def read_snapshot(directory: Path) -> FeatureSnapshot:
    """Read a snapshot written by `write_snapshot`.

    Raises:
        FileNotFoundError: when `directory` holds no snapshot.
        ValueError: when the format version is not supported.
    """
    meta_path = directory / _META
    if not meta_path.exists():
        raise FileNotFoundError(
            f"no feature snapshot in {directory}: run `transitcast train shipments` or "
            "`transitcast snapshot` to write one"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported snapshot format {meta.get('format_version')!r} in {meta_path}")

    def table(name: str) -> pl.DataFrame | None:
        path = directory / f"{name}.parquet"
        return pl.read_parquet(path) if path.exists() else None

    shipments = table("shipments")
    if shipments is None:
        raise FileNotFoundError(f"{directory}/shipments.parquet is missing")
    return FeatureSnapshot(
        shipments=shipments,
        events=table("shipment_events"),
        declarations=table("customs_declarations"),
        lanes=table("lanes"),
        as_of=dt.datetime.fromisoformat(meta["as_of"]).astimezone(dt.UTC),
        booking=BookingFeatureConfig.model_validate(meta["booking"]),
        milestone=MilestoneFeatureConfig.model_validate(meta["milestone"]),
        data_version=meta.get("data_version"),
    )


# ---------------------------------------------------------------------------------------------------------
# Partitioned view for cheap per-request feature building
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistorySlice:
    """The part of the snapshot's history that the statistics of some rows can read."""

    shipments: pl.DataFrame
    events: pl.DataFrame | None
    declarations: pl.DataFrame | None


def _common_keys(*key_sets: tuple[str, ...]) -> tuple[str, ...]:
    first, *rest = key_sets
    return tuple(k for k in first if all(k in other for other in rest))


PartKey = tuple[object, ...]


def _partition(frame: pl.DataFrame, keys: tuple[str, ...]) -> dict[PartKey, pl.DataFrame]:
    if not keys:
        return {(): frame}
    return {tuple(k): part for k, part in frame.partition_by(list(keys), as_dict=True).items()}


class SnapshotIndex:
    """The snapshot's history partitioned by the keys shared by every as-of statistic (built once at load).

    `slice_for(rows)` returns the partitions of the rows' keys: the builders give the same values on it as
    on the whole history, in a fraction of the time. Large batches get the whole history.

    Args:
        snapshot: the feature snapshot.
        full_history_share: above this share of the partitions, `slice_for` returns the whole history.
    """

    def __init__(self, snapshot: FeatureSnapshot, full_history_share: float = 0.3) -> None:
        self.snapshot = snapshot
        b, m = snapshot.booking, snapshot.milestone
        self.shipment_keys = _common_keys(b.lane_keys, b.fallback_keys, m.lane_keys, m.fallback_keys)
        self.full_history_share = full_history_share
        self._shipments = _partition(snapshot.shipments, self.shipment_keys)
        self._events: dict[PartKey, pl.DataFrame] = {}
        if snapshot.events is not None:
            keyed = snapshot.events.join(
                snapshot.shipments.select("shipment_id", *self.shipment_keys), on="shipment_id", how="inner"
            )
            self._events = {
                k: part.select(snapshot.events.columns)
                for k, part in _partition(keyed, self.shipment_keys).items()
            }
        self._declarations: dict[PartKey, pl.DataFrame] = {}
        if snapshot.declarations is not None:
            self._declarations = _partition(snapshot.declarations, _DECLARATION_KEYS)
        self._empty_shipments = snapshot.shipments.clear()
        self._empty_events = None if snapshot.events is None else snapshot.events.clear()
        self._empty_declarations = None if snapshot.declarations is None else snapshot.declarations.clear()

    @property
    def as_of(self) -> dt.datetime:
        """The snapshot's `as_of`."""
        return self.snapshot.as_of

    def known_lanes(self) -> pl.DataFrame:
        """Distinct lanes (booking lane keys) with delivered history or a contract."""
        keys = list(self.snapshot.booking.lane_keys)
        seen = self.snapshot.shipments.filter(pl.col("delivered_at").is_not_null()).select(keys)
        if self.snapshot.lanes is not None:
            seen = pl.concat([seen, self.snapshot.lanes.select(keys)], how="vertical_relaxed")
        return seen.unique()

    def _gather(
        self, parts: dict[PartKey, pl.DataFrame], keys: list[PartKey], empty: pl.DataFrame
    ) -> pl.DataFrame:
        frames = [parts[k] for k in keys if k in parts]
        return pl.concat(frames) if frames else empty

    def slice_for(self, rows: pl.DataFrame) -> HistorySlice:
        """The history the as-of statistics of `rows` can read (their key partitions).

        Args:
            rows: shipments to score, with the partition key columns.
        """
        snap = self.snapshot
        ship_keys = [tuple(r) for r in rows.select(self.shipment_keys).unique().iter_rows()]
        if len(ship_keys) > self.full_history_share * max(len(self._shipments), 1):
            return HistorySlice(snap.shipments, snap.events, snap.declarations)
        decl_keys = [tuple(r) for r in rows.select(_DECLARATION_KEYS).unique().iter_rows()]
        events = (
            None if self._empty_events is None else self._gather(self._events, ship_keys, self._empty_events)
        )
        declarations = (
            None
            if self._empty_declarations is None
            else self._gather(self._declarations, decl_keys, self._empty_declarations)
        )
        return HistorySlice(
            self._gather(self._shipments, ship_keys, self._empty_shipments), events, declarations
        )
