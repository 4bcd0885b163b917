"""Stage: serving. The Predictor: shipment models + feature snapshot -> predictions, batch and online.

Reads model directories (LightGBM native text + JSON, `models.lgbm.load_model`; never a pickle) from a local
folder (`<models_dir>/<task>/`) or from the MLflow registry by alias (`transitcast-<task>@champion`, mlflow
imported lazily), and the feature snapshot written by training (`serving.online.snapshot`). Writes nothing.
Where those are (folder, tracking URI) is always given by the caller: serving never guesses a path.

`Predictor.predict_shipments` runs the *same* feature builders as training
(`features.shipment_features.build_booking_features`, `features.milestones.latest_snapshot`) on the
snapshot's history, restricted to the partitions the rows' statistics can read (`SnapshotIndex`), so the
HTTP endpoint, batch scoring and training see identical features for identical rows.

Fallback for lanes the models have never seen: the builders' own chain (lane history -> contract transit
days -> destination x mode history -> promised days) and LightGBM's missing-value branch for categories
unknown to a model; such rows are flagged `is_unknown_lane` (no delivered parcel on the lane before the
booking and no contract in `lanes`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from features.contract.schema import table_spec
from features.milestones import latest_snapshot
from features.shipment_features import booking_history_state, build_booking_features
from models.lgbm import METADATA_FILE, LGBMModel, load_model
from serving.decisions.promise import promise_dates
from serving.online.inputs import INPUT_COLUMNS, SCORED_COLUMNS, SHIPMENTS_SPEC
from serving.online.snapshot import SNAPSHOT_DIR, FeatureSnapshot, HistorySlice, SnapshotIndex, read_snapshot

__all__ = [
    "BOOKING_TASKS",
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "Predictor",
    "PredictorInfo",
    "SMALL_BATCH_ROWS",
    "coerce_shipments",
    "registry_versions",
]

log = logging.getLogger(__name__)

BOOKING_TASKS = ("eta", "delay", "inspection", "clearance")
INTRANSIT_TASK = "intransit"
REGISTERED_PREFIX = "transitcast-"
_QCOLS = ("q50", "q80", "q95")
OUTPUT_COLUMNS: tuple[str, ...] = (
    "shipment_id",
    *(f"eta_days_{q}" for q in _QCOLS),
    "p_late",
    "p_inspection",
    *(f"clearance_days_{q}" for q in _QCOLS),
    *(f"remaining_days_{q}" for q in _QCOLS),
    "promise_days",
    "promise_date",
    "is_unknown_lane",
    "model_version",
)
_ROW = "__predict_row"
# Below this many rows a prediction runs on one LightGBM thread.
SMALL_BATCH_ROWS = 256


@dataclass(frozen=True)
class PredictorInfo:
    """What a Predictor serves: `model_version`, per-task versions, data and snapshot versions."""

    model_version: str
    source: str
    tasks: dict[str, str]
    data_version: str | None
    snapshot_version: str
    snapshot_as_of: dt.datetime
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def coerce_shipments(shipments: pl.DataFrame) -> pl.DataFrame:
    """Contract `shipments` columns of rows to score, with contract dtypes; absent optional ones as nulls,
    `delivered_at`/`status` added. (Callers check rows against the contract's rules first:
    `serving.online.inputs.check_rows`.)

    Raises:
        ValueError: naming the missing columns, the column that cannot take its contract type, or the
            duplicated / null `shipment_id`.
    """
    missing = [c for c in INPUT_COLUMNS if c not in shipments.columns]
    if missing:
        raise ValueError(f"shipments: missing required column(s) {missing}")
    schema = SHIPMENTS_SPEC.schema
    # Only contract columns go on: anything else (e.g. a caller's own features) could clash with features.
    shipments = shipments.select(c for c in shipments.columns if c in schema).with_columns(
        pl.lit(None, dtype=schema[c]).alias(c) for c in SCORED_COLUMNS if c not in shipments.columns
    )
    casts = []
    for name in shipments.columns:
        if name not in schema:
            continue
        dtype = schema[name]
        if shipments.schema[name] == dtype:
            continue
        try:
            casts.append(shipments.get_column(name).cast(dtype, strict=True))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            raise ValueError(f"shipments.{name}: values do not fit the contract type {dtype}") from exc
    out = shipments.with_columns(casts) if casts else shipments
    if "delivered_at" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=schema["delivered_at"]).alias("delivered_at"))
    if "status" not in out.columns:
        out = out.with_columns(
            pl.when(pl.col("delivered_at").is_null())
            .then(pl.lit("in_transit"))
            .otherwise(pl.lit("delivered"))
            .cast(schema["status"])
            .alias("status")
        )
    ids = out.get_column("shipment_id")
    if ids.null_count():
        raise ValueError(f"shipments.shipment_id: {ids.null_count()} null value(s); every row needs an id")
    dup = ids.filter(ids.is_duplicated())
    if dup.len():
        raise ValueError(f"shipments.shipment_id: duplicated id {dup[0]!r}; ids must be unique in a request")
    for name in INPUT_COLUMNS:
        nulls = out.get_column(name).null_count()
        if nulls and name in ("created_at", "promised_date", "mode"):
            raise ValueError(f"shipments.{name}: {nulls} null value(s); it is required")
    return out


def _coerce_events(events: pl.DataFrame) -> pl.DataFrame:
    schema = table_spec("shipment_events").schema
    missing = [c for c in ("shipment_id", "event", "event_at", "country") if c not in events.columns]
    if missing:
        raise ValueError(f"events: missing required column(s) {missing}")
    out = events.select("shipment_id", "event", "event_at", "country")
    try:
        return out.cast({c: schema[c] for c in out.columns}, strict=True)  # type: ignore[dict-item]
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise ValueError(f"events: values do not fit the contract types ({exc})") from exc


def _task_fingerprint(directory: Path) -> str:
    meta = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    return str(meta.get("training", {}).get("fingerprint", ""))


class Predictor:
    """The shipment models and the feature snapshot behind batch and online scoring.

    Args:
        models: task name -> fitted model (`eta` required; `delay`, `inspection`, `clearance`, `intransit`
            optional).
        snapshot: the feature snapshot the models were trained with.
        info: versions reported by the API.
        promise_target: on-time rate the promise date is quoted for.
        num_threads: LightGBM threads per prediction of a batch (requests under `SMALL_BATCH_ROWS` rows
            use one thread: OpenMP's start-up costs more than it saves on a few rows).

    At load, the booking features' history statistics are evaluated once over the whole snapshot
    (`features.shipment_features.booking_history_state`, the builders' own code); a request's booking
    features are then as-of joins on that state, the values `build_booking_features` gives on the
    snapshot's history (`tests/serving/test_fast_path.py`), whatever the rows' booking times.

    Example:
        >>> predictor = Predictor.from_dir(models_dir)  # doctest: +SKIP
        >>> predictor.predict_shipments(open_shipments)  # doctest: +SKIP
    """

    def __init__(
        self,
        models: dict[str, LGBMModel],
        snapshot: FeatureSnapshot,
        info: PredictorInfo,
        *,
        promise_target: float = 0.9,
        num_threads: int = 1,
    ) -> None:
        if "eta" not in models:
            raise ValueError("the Predictor needs at least the `eta` model")
        self.models = dict(models)
        for model in self.models.values():
            model.config = model.config.model_copy(update={"num_threads": num_threads})
        self.num_threads = num_threads
        self.snapshot = snapshot
        self.index = SnapshotIndex(snapshot)
        self.state = booking_history_state(
            snapshot.shipments, declarations=snapshot.declarations, config=snapshot.booking
        )
        self._matrix_keys = {task: model.matrix_key for task, model in self.models.items()}
        self.info = info
        self.promise_target = promise_target
        self._lock = threading.Lock()  # LightGBM boosters are not documented as thread-safe for predict
        self._check_features()

    # -----------------------------------------------------------------------------------------------------
    # Loading
    # -----------------------------------------------------------------------------------------------------
    @classmethod
    def from_dir(
        cls,
        models_dir: Path,
        *,
        snapshot_dir: Path | None = None,
        promise_target: float = 0.9,
        num_threads: int = 1,
    ) -> Predictor:
        """Load every task model found in `models_dir/<task>/` and the snapshot in `models_dir/snapshot/`.

        Raises:
            FileNotFoundError: when there is no `eta` model or no snapshot.
        """
        models_dir = Path(models_dir)
        dirs = {
            t: models_dir / t
            for t in (*BOOKING_TASKS, INTRANSIT_TASK)
            if (models_dir / t / METADATA_FILE).exists()
        }
        if "eta" not in dirs:
            raise FileNotFoundError(
                f"no eta model in {models_dir}/eta: run `transitcast train shipments` (or `make demo`) first"
            )
        models = {t: load_model(d) for t, d in dirs.items()}
        snapshot = read_snapshot(snapshot_dir or models_dir / SNAPSHOT_DIR)
        fingerprints = "|".join(f"{t}:{_task_fingerprint(d)}" for t, d in sorted(dirs.items()))
        digest = hashlib.sha256(fingerprints.encode()).hexdigest()[:12]
        info = PredictorInfo(
            model_version=f"local-{digest}",
            source=str(models_dir),
            tasks={t: _task_fingerprint(d).removeprefix("sha256:")[:12] for t, d in dirs.items()},
            data_version=snapshot.data_version,
            snapshot_version=snapshot.content_hash,
            snapshot_as_of=snapshot.as_of,
        )
        return cls(models, snapshot, info, promise_target=promise_target, num_threads=num_threads)

    @classmethod
    def from_registry(
        cls,
        alias: str,
        *,
        tracking_uri: str,
        snapshot_dir: Path | None = None,
        promise_target: float = 0.9,
        num_threads: int = 1,
    ) -> Predictor:
        """Load the models `transitcast-<task>@<alias>` from the MLflow registry (mlflow imported here).

        The snapshot is the one logged with the `eta` version's run (artifact `snapshot/`), else
        `snapshot_dir`.

        Raises:
            LookupError: when `transitcast-eta` has no version with `alias`.
            FileNotFoundError: when the run has no snapshot and no `snapshot_dir` is given.
        """
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow
        from mlflow import MlflowClient

        uri = tracking_uri
        client = MlflowClient(tracking_uri=uri)
        versions = registry_versions(alias, tracking_uri=uri)
        if "eta" not in versions:
            raise LookupError(f"no version of {REGISTERED_PREFIX}eta has the alias {alias!r} at {uri}")
        models: dict[str, LGBMModel] = {}
        for task, version in versions.items():
            # The version's own artifact location: no models:/ URI, so no separate registry URI to resolve.
            source = client.get_model_version_download_uri(f"{REGISTERED_PREFIX}{task}", version)
            root = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=uri))
            models[task] = load_model(root / "artifacts" / "model_dir")
        run_id = client.get_model_version(f"{REGISTERED_PREFIX}eta", versions["eta"]).run_id
        snapshot: FeatureSnapshot | None = None
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=SNAPSHOT_DIR, tracking_uri=uri
            )
            snapshot = read_snapshot(Path(path))
        except (OSError, mlflow.exceptions.MlflowException):
            log.info("run %s has no snapshot artifact; using the local snapshot", run_id)
        if snapshot is None:
            if snapshot_dir is None:
                raise FileNotFoundError(
                    f"run {run_id} of {REGISTERED_PREFIX}eta@{alias} has no snapshot artifact and no local "
                    "snapshot folder was given (the models folder's snapshot/)"
                )
            snapshot = read_snapshot(snapshot_dir)
        info = PredictorInfo(
            model_version=",".join(f"{t}:v{v}" for t, v in sorted(versions.items())),
            source=f"mlflow:{alias}",
            tasks={t: f"v{v}" for t, v in versions.items()},
            data_version=snapshot.data_version,
            snapshot_version=snapshot.content_hash,
            snapshot_as_of=snapshot.as_of,
        )
        return cls(models, snapshot, info, promise_target=promise_target, num_threads=num_threads)

    def _check_features(self) -> None:
        """Every model reads only columns the builders produce from this snapshot's configs."""
        probe = self.snapshot.shipments.head(1)
        if probe.is_empty():
            return
        from features.milestones import milestone_feature_set
        from features.shipment_features import booking_feature_set

        booking = set(booking_feature_set(self.snapshot.booking).names)
        milestone = set(milestone_feature_set(self.snapshot.milestone).names)
        for task, model in self.models.items():
            produced = milestone if task == INTRANSIT_TASK else booking
            missing = [c for c in model.features.names if c not in produced]
            if missing:
                raise ValueError(
                    f"model {task!r} reads {missing} which the snapshot's feature config does not produce"
                )

    # -----------------------------------------------------------------------------------------------------
    # Scoring
    # -----------------------------------------------------------------------------------------------------
    def predict_shipments(
        self,
        shipments: pl.DataFrame,
        events: pl.DataFrame | None = None,
        *,
        as_of: dt.datetime | None = None,
    ) -> pl.DataFrame:
        """Predictions for each input row, in the input order.

        Args:
            shipments: contract `shipments` rows (open shipments: `delivered_at` null; `status` optional;
                `shipment_id` required and unique).
            events: contract `shipment_events` of these shipments; when given, the in-transit
                `remaining_days_*` are predicted from each shipment's latest milestone.
            as_of: the scoring moment for the in-transit ETA (default: the latest `created_at`/`event_at`
                in the inputs).

        Returns:
            `OUTPUT_COLUMNS`: ETA quantiles (days from `created_at`), `p_late`, `p_inspection`, clearance
            quantiles, remaining days after the latest milestone (null without events, or for shipments
            not scanned yet or already closed), the promise for `promise_target`, `is_unknown_lane` and
            `model_version`. Columns of tasks without a model are null.

        Raises:
            ValueError: on invalid input (the message names the column and the rule).
        """
        rows = coerce_shipments(shipments)
        n = rows.height
        if n == 0:
            return pl.DataFrame(schema=self.output_schema())
        features = self.booking_features(rows)
        out = rows.select("shipment_id", "created_at")
        threads = 1 if n < SMALL_BATCH_ROWS else self.num_threads
        matrices: dict[str, np.ndarray] = {}  # one matrix per feature set + encoder, shared by the models
        predictions: list[pl.Series] = []
        with self._lock:
            for task in BOOKING_TASKS:
                model = self.models.get(task)
                if model is None:
                    continue
                key = self._matrix_keys[task]
                if key not in matrices:
                    matrices[key] = model.matrix(features)
                predictions += model.predict(
                    features, matrix=matrices[key], num_threads=threads
                ).get_columns()
        out = out.hstack(predictions)
        if events is not None:
            history = self.index.slice_for(rows)
            out = out.hstack(self._remaining(rows, features, _coerce_events(events), history, as_of))
        out = self._fill_missing(out)
        out = promise_dates(out, target=self.promise_target)
        unknown = (features.get_column("lane_n_obs").fill_null(0) == 0) & features.get_column(
            "contract_transit_days"
        ).is_null()
        out = out.with_columns(
            unknown.alias("is_unknown_lane"), pl.lit(self.info.model_version).alias("model_version")
        )
        return out.select(OUTPUT_COLUMNS)

    def booking_features(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The booking features of coerced `rows` against the snapshot (as-of joins on `self.state`).

        Equal to `build_booking_features(rows, history=snapshot.shipments, lanes=snapshot.lanes,
        declarations=snapshot.declarations, config=snapshot.booking)`.
        """
        return build_booking_features(
            rows, lanes=self.snapshot.lanes, config=self.snapshot.booking, state=self.state
        )

    def _remaining(
        self,
        rows: pl.DataFrame,
        features: pl.DataFrame,
        events: pl.DataFrame,
        history: HistorySlice,
        as_of: dt.datetime | None,
    ) -> pl.DataFrame:
        """`remaining_days_*` of each row after its latest scan at `as_of` (nulls where none applies)."""
        cols = [f"remaining_days_{q}" for q in _QCOLS]
        empty = pl.DataFrame({c: pl.Series(c, [None] * rows.height, dtype=pl.Float64) for c in cols})
        model = self.models.get(INTRANSIT_TASK)
        if model is None:
            return empty
        ids = rows.get_column("shipment_id")
        events = events.filter(pl.col("shipment_id").is_in(ids.implode()))
        moments = [rows["created_at"].max(), events["event_at"].max() if events.height else None]
        now = as_of or max(m for m in moments if m is not None)  # type: ignore[type-var]
        hist_ships, hist_events = history.shipments, history.events
        known = pl.concat(
            [
                hist_ships.filter(~pl.col("shipment_id").is_in(ids.implode())),
                rows.select(hist_ships.columns),
            ],
            how="vertical_relaxed",
        )
        scans = events
        if hist_events is not None:
            scans = pl.concat(
                [hist_events.filter(~pl.col("shipment_id").is_in(ids.implode())), events],
                how="vertical_relaxed",
            )
        snaps = latest_snapshot(known, scans, features, now, self.snapshot.milestone)  # type: ignore[arg-type]
        snaps = snaps.filter(pl.col("shipment_id").is_in(ids.implode()) & pl.col("last_event").is_not_null())
        if snaps.is_empty():
            return empty
        with self._lock:
            preds = snaps.select("shipment_id").hstack(model.predict(snaps))
        return (
            rows.select("shipment_id")
            .join(preds, on="shipment_id", how="left", maintain_order="left")
            .select(cols)
        )

    def _fill_missing(self, out: pl.DataFrame) -> pl.DataFrame:
        return out.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c)
            for c in OUTPUT_COLUMNS
            if c not in out.columns
            and c not in ("shipment_id", "promise_days", "promise_date", "is_unknown_lane", "model_version")
        )

    def output_schema(self) -> dict[str, pl.DataType]:
        """Dtypes of the `predict_shipments` columns."""
        schema: dict[str, pl.DataType] = dict.fromkeys(OUTPUT_COLUMNS, pl.Float64())
        schema.update(
            shipment_id=pl.String(),
            promise_date=pl.Date(),
            is_unknown_lane=pl.Boolean(),
            model_version=pl.String(),
        )
        return schema


def registry_versions(alias: str, *, tracking_uri: str) -> dict[str, str]:
    """Task -> registered version behind `alias` (tasks without the alias are left out). Imports mlflow."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    out: dict[str, str] = {}
    for task in (*BOOKING_TASKS, INTRANSIT_TASK):
        try:
            out[task] = str(client.get_model_version_by_alias(f"{REGISTERED_PREFIX}{task}", alias).version)
        except MlflowException:
            continue
    return out
