"""Stage: models. The shipment model suite: ETA, delay, in-transit ETA, customs inspection and clearance.

Reads and writes nothing: validated contract tables in, model objects and frames out. `prepare_task_frames`
builds each task's frame once with the point-in-time feature builders (the same ones batch and online
scoring use); `task_windows` sizes its windows from the data (`models.windows`); `backtest_task` fits the
task at each fold's cutoff and predicts the fold's test rows with the model and every baseline system;
`fit_task` fits at "now". Both go through `fit_cutoff` (`models.protocol.fit_at_cutoff`): one code path.

Each task boosts from its first baseline (LightGBM ``init_score``: the lane's trailing quantiles for
durations, the lane's late rate for P(late), the HS chapter x destination rate for inspections), so the trees
learn corrections; every baseline is also fitted as a model, raw and calibrated, for the promotion gate
(`models.promotion`), which ships the best baseline when the model does not beat it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.booking_config import resolve_booking_config
from features.feature_set import FeatureSet
from features.milestones import MilestoneFeatureConfig, build_milestone_snapshots, milestone_feature_set
from features.shipment_features import (
    BookingFeatureConfig,
    add_shipment_targets,
    booking_feature_set,
    build_booking_features,
    late_known_at,
)
from models.baselines import BaselineSpec
from models.calibration import CalibrationMethod
from models.classifier import CalibratedClassifier
from models.evaluation import evaluate_task  # re-exported: the task's backtest table, next to backtest_task
from models.lgbm import LGBMConfig, LGBMModel
from models.protocol import (
    AGE_COL,
    CutoffFit,
    ProtocolColumns,
    calibrated_name,
    censor_at,
    fit_at_cutoff,
    lower_col,
)
from models.quantile import QuantileRegressor
from models.windows import DAY, WindowColumns, WindowConfig, Windows, derive_windows

__all__ = [
    "OPEN_STATUS",
    "QUANTILES",
    "SLICES",
    "TASKS",
    "ShipmentModelsConfig",
    "TaskFrame",
    "TaskName",
    "TaskSpec",
    "backtest_task",
    "evaluate_task",
    "fit_cutoff",
    "fit_task",
    "fold_predictions",
    "keep_systems",
    "prepare_task_frames",
    "task_cutoffs",
    "task_windows",
]

log = logging.getLogger(__name__)

TaskName = Literal["eta", "delay", "intransit", "inspection", "clearance"]
QUANTILES = (0.5, 0.8, 0.95)
SLICES = ("mode", "destination_country", "carrier", "lane")
OPEN_STATUS = "in_transit"  # a shipment with this status may still be delivered: its duration is censored
OPEN_COL = "is_open"


@dataclass(frozen=True)
class TaskSpec:
    """One shipment prediction task.

    Attributes:
        name: task name (also the MLflow registered model suffix).
        kind: quantile regression or calibrated probability.
        target: target column.
        output: prediction column (probability) or prefix of the quantile columns.
        time_col: the prediction moment of a row.
        observed_col: when the row's label became known (right-censoring).
        baselines: the task's trailing baselines; the first is the model's init score. Each reads its
            feature columns in fallback order (lane, then wider keys); a column the feature config does not
            produce (e.g. no destination region in the data) is skipped.
        oracle: oracle column (probability) or prefix (quantiles) in the simulator's oracle, if any.
        gate_metric: metric of the promotion gate (lower is better).
        calibration_group: column of per-group conformal offsets / window sizing (quantiles only).
        start_col: when the target's clock starts, if not at `time_col` (clearance: the declaration).
    """

    name: TaskName
    kind: Literal["quantile", "classifier"]
    target: str
    output: str
    time_col: str
    observed_col: str
    baselines: tuple[BaselineSpec, ...]
    oracle: str | None
    gate_metric: str
    calibration_group: str | None = "mode"
    start_col: str | None = None

    @property
    def columns(self) -> ProtocolColumns:
        """The protocol's view of the task (durations keep a censored lower bound, labels do not)."""
        return ProtocolColumns(
            self.time_col, self.observed_col, self.target, OPEN_COL, self.kind == "quantile", self.start_col
        )


def _per_quantile(*patterns: str) -> tuple[tuple[str, ...], ...]:
    """Coalesce order per quantile from column patterns with a ``{q}`` slot (``q50`` ...)."""
    return tuple(tuple(p.format(q=f"q{round(q * 100)}") for p in patterns) for q in QUANTILES)


TASKS: dict[str, TaskSpec] = {
    "eta": TaskSpec(
        "eta", "quantile", "transit_days", "eta_days", "created_at", "delivered_at",
        (
            BaselineSpec("lane_history", _per_quantile(
                "lane_transit_days_{q}_last50", "region_mode_transit_days_{q}_last200",
                "dest_mode_transit_days_{q}_last200", "contract_transit_days",
            ), group_col="mode"),
            BaselineSpec("contract_days", _per_quantile("contract_transit_days"), group_col="mode"),
        ),
        "eta_days", "pinball",
    ),
    "delay": TaskSpec(
        "delay", "classifier", "is_late", "p_late", "created_at", "late_known_at",
        (
            BaselineSpec("lane_history", ((
                "lane_on_time_rate_last100", "region_mode_on_time_rate_last200",
                "dest_mode_on_time_rate_last200",
            ),), "one_minus", group_col="mode"),
            BaselineSpec("mode_rate", group_col="mode"),
            BaselineSpec("prevalence"),
        ),
        "p_late", "brier", None,
    ),
    "intransit": TaskSpec(
        "intransit", "quantile", "remaining_days", "remaining_days", "snapshot_at", "delivered_at",
        (
            BaselineSpec("lane_history", _per_quantile(
                "lane_event_remaining_days_{q}_last50", "dest_mode_event_remaining_days_{q}_last200"
            ), group_col="mode"),
        ),
        None, "pinball",
    ),
    "inspection": TaskSpec(
        "inspection", "classifier", "is_inspected", "p_inspection", "created_at", "inspection_known_at",
        (
            BaselineSpec("hs_destination_history",
                         (("customs_is_inspected_rate_last200", "customs_dest_is_inspected_rate_last1000"),),
                         group_col="destination_country"),
            BaselineSpec("prevalence"),
        ),
        "p_inspection", "brier", None,
    ),
    "clearance": TaskSpec(
        "clearance", "quantile", "clearance_days", "clearance_days", "created_at", "released_at",
        (
            BaselineSpec("hs_destination_history", (
                ("customs_clearance_days_mean_last200",), ("customs_clearance_days_mean_last200",),
                ("customs_clearance_days_q90_last200",),
            ), group_col="destination_country"),
        ),
        None, "pinball", "mode", "declared_at",
    ),
}  # fmt: skip


class ShipmentModelsConfig(BaseModel):
    """Everything that decides the shipment models, their windows and their gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    booking: BookingFeatureConfig = BookingFeatureConfig()
    milestone: MilestoneFeatureConfig = MilestoneFeatureConfig()
    lgbm: LGBMConfig = LGBMConfig(
        num_boost_round=300,
        early_stopping_rounds=30,
        refit_after_stopping=True,
        params={"learning_rate": 0.08, "num_leaves": 63},
    )
    windows: WindowConfig = WindowConfig()
    max_train_rows: int = Field(default=300_000, ge=1_000, description="most recent rows kept per fit")
    max_train_rows_by_task: dict[str, int] = Field(
        default_factory=lambda: {"intransit": 150_000},
        description="per-task override (in-transit has ~8 milestone rows per shipment)",
    )
    min_fit_rows: int = Field(default=200, ge=1, description="fewer training rows: the baselines only")
    log_target: bool = True
    calibrate_by: str | None = "mode"
    min_group_rows: int = Field(default=100, ge=10, description="rows for a group's own conformal offsets")
    classifier_calibration: CalibrationMethod = "auto"
    gate_tolerance: float = Field(
        default=0.0, ge=0.0, description="relative margin the model must beat its best baseline by"
    )
    never_shorten: tuple[str, ...] = Field(
        default=("dest_holidays_in_window", "origin_holidays_in_window", "peak_days_in_window"),
        description="durations are floored by the prediction without these (a holiday never shortens an ETA)",
    )


@dataclass(frozen=True)
class TaskFrame:
    """A task's rows (features, targets, slice columns), its feature set and the data's "now"."""

    spec: TaskSpec
    frame: pl.DataFrame
    features: FeatureSet
    as_of: dt.datetime


# ---------------------------------------------------------------------------------------------------------
# Task frames
# ---------------------------------------------------------------------------------------------------------
def _slices(df: pl.DataFrame) -> pl.DataFrame:
    keys = [c for c in ("origin_hub", "destination_country", "mode", "carrier") if c in df.columns]
    return df.with_columns(pl.concat_str(keys, separator="|").alias("lane"))


def _data_as_of(tables: dict[str, pl.DataFrame]) -> dt.datetime:
    moments = [tables["shipments"]["created_at"].max()]
    if "shipment_events" in tables and tables["shipment_events"].height:
        moments.append(tables["shipment_events"]["event_at"].max())
    return max(m for m in moments if isinstance(m, dt.datetime))


def prepare_task_frames(
    tables: dict[str, pl.DataFrame],
    config: ShipmentModelsConfig,
    tasks: tuple[str, ...] = tuple(TASKS),
    as_of: dt.datetime | None = None,
) -> dict[str, TaskFrame]:
    """Build every task's frame from validated contract tables.

    Args:
        tables: `shipments`, `shipment_events`, `customs_declarations`, `lanes` (the last three optional).
        config: feature and model settings.
        tasks: which tasks to prepare.
        as_of: the data's "now" (default: the latest shipment creation or event).
    """
    shipments = tables["shipments"]
    lanes, declarations = tables.get("lanes"), tables.get("customs_declarations")
    now = as_of or _data_as_of(tables)
    # Features of optional inputs the data lacks are not built (never a constant standing in for data).
    booking_cfg = resolve_booking_config(config.booking, shipments.columns)
    booking = build_booking_features(shipments, lanes=lanes, declarations=declarations, config=booking_cfg)
    booking_set = booking_feature_set(booking_cfg)
    targets = add_shipment_targets(shipments, as_of=now).select(
        "shipment_id", "delivered_at", "status", "transit_days", "is_late", "promised_date",
        (pl.col("status").cast(pl.String) == OPEN_STATUS).alias(OPEN_COL),
    )  # fmt: skip
    base = booking.join(targets, on="shipment_id", how="left").with_columns(late_known_at()).pipe(_slices)
    frames: dict[str, TaskFrame] = {}
    if "eta" in tasks:
        frame = base.filter(pl.col("mode") != "overseas_warehouse")
        frames["eta"] = TaskFrame(TASKS["eta"], frame, booking_set, now)
    if "delay" in tasks:
        frames["delay"] = TaskFrame(TASKS["delay"], base, booking_set, now)
    if declarations is not None and {"inspection", "clearance"} & set(tasks):
        decl = declarations.filter(pl.col("shipment_id").is_not_null()).select(
            "shipment_id",
            "is_inspected",
            ((pl.col("released_at") - pl.col("declared_at")).dt.total_seconds() / 86_400).alias(
                "clearance_days"
            ),
            (pl.col("declared_at") + pl.duration(days=config.booking.inspection_known_after_days)).alias(
                "inspection_known_at"
            ),
            "released_at",
            "declared_at",
            (pl.col("released_at").is_null() & (pl.col("outcome").cast(pl.String) == "held")).alias("held"),
        )
        frame = base.join(decl, on="shipment_id", how="inner")
        if "inspection" in tasks:
            frames["inspection"] = TaskFrame(TASKS["inspection"], frame.drop("held"), booking_set, now)
        if "clearance" in tasks:
            clearance = frame.drop(OPEN_COL).rename({"held": OPEN_COL})
            frames["clearance"] = TaskFrame(TASKS["clearance"], clearance, booking_set, now)
    if "intransit" in tasks and "shipment_events" in tables:
        snaps = build_milestone_snapshots(shipments, tables["shipment_events"], booking, config.milestone)
        extra = base.select("shipment_id", "delivered_at", "lane", OPEN_COL)
        frame = snaps.join(extra, on="shipment_id", how="left")
        features = milestone_feature_set(config.milestone, booking_set)
        frames["intransit"] = TaskFrame(TASKS["intransit"], frame, features, now)
    return frames


# ---------------------------------------------------------------------------------------------------------
# Windows, fitting at a cutoff, backtest
# ---------------------------------------------------------------------------------------------------------
def task_windows(task: TaskFrame, config: ShipmentModelsConfig, as_of: dt.datetime | None = None) -> Windows:
    """The task's windows at `as_of` (default: its data's "now"), sized from its rows (`models.windows`).

    Quantile calibration is per `calibration_group` (its major groups count); a probability's is sized on
    its classes, every class counting (the rare one is what a calibration map needs rows of).
    """
    spec = task.spec
    windows = config.windows
    group = spec.calibration_group
    if spec.kind == "classifier":
        group, windows = spec.target, windows.model_copy(update={"major_group_share": 0.0})
    cols = WindowColumns(spec.time_col, spec.observed_col, OPEN_COL, group)
    return derive_windows(task.frame, cols, as_of or task.as_of, windows)


def _new_model(task: TaskFrame, config: ShipmentModelsConfig, baseline: BaselineSpec) -> LGBMModel:
    if task.spec.kind == "quantile":
        return QuantileRegressor(
            task.features,
            QUANTILES,
            prefix=task.spec.output,
            log_target=config.log_target,
            floor_features=[c for c in config.never_shorten if c in task.features.names],
            config=config.lgbm,
            baseline=baseline,
        )
    return CalibratedClassifier(
        task.features,
        output_col=task.spec.output,
        method=config.classifier_calibration,
        config=config.lgbm,
        baseline=baseline,
    )


def _calibrate(task: TaskFrame, config: ShipmentModelsConfig, model: LGBMModel, rows: pl.DataFrame) -> None:
    spec = task.spec
    if isinstance(model, QuantileRegressor):
        group = config.calibrate_by if config.calibrate_by in rows.columns else None
        age = AGE_COL if AGE_COL in rows.columns else None
        model.calibrate(rows, spec.target, group_col=group, min_group_size=config.min_group_rows, age_col=age)
    elif isinstance(model, CalibratedClassifier):
        model.calibrate(rows, spec.target)


def fit_cutoff(
    task: TaskFrame,
    cutoff: dt.datetime,
    windows: Windows,
    config: ShipmentModelsConfig,
    *,
    with_baselines: bool = True,
) -> CutoffFit:
    """Fit the task's model and baselines at `cutoff`: the one code path of backtest folds and `train`."""
    return fit_at_cutoff(
        task.frame,
        task.spec.columns,
        cutoff,
        windows,
        new_model=lambda baseline: _new_model(task, config, baseline),
        baselines={b.name: b for b in task.spec.baselines},
        calibrate=lambda model, rows: _calibrate(task, config, model, rows),
        max_train_rows=config.max_train_rows_by_task.get(task.spec.name, config.max_train_rows),
        min_fit_rows=config.min_fit_rows,
        with_baselines=with_baselines,
    )


def fit_task(
    task: TaskFrame,
    config: ShipmentModelsConfig,
    windows: Windows | None = None,
    *,
    as_of: dt.datetime | None = None,
) -> CutoffFit:
    """Fit the model (and its baselines) that `train` ships: `fit_cutoff` at "now".

    "Now" is `windows.as_of` when windows are given, else `as_of`, else the data's "now"; with an earlier
    `as_of` only the labels known then are used (as `train` run on that day would).
    """
    windows = windows or task_windows(task, config, as_of)
    return fit_cutoff(task, windows.as_of, windows, config)


def task_cutoffs(windows: Windows) -> list[dt.datetime]:
    """The backtest fold cutoffs: test windows of `fold_days` tiling back from ``as_of - maturity``."""
    test_end = windows.as_of - windows.maturity
    return [test_end - (windows.folds - i) * windows.fold_days * DAY for i in range(windows.folds)]


def backtest_task(
    task: TaskFrame,
    config: ShipmentModelsConfig,
    oracle: pl.DataFrame | None = None,
    windows: Windows | None = None,
) -> pl.DataFrame:
    """Predictions of every system on each fold's test rows, fitted with `fit_cutoff` at the fold's cutoff.

    Test labels are those known at the data's "now"; a test row still open then keeps its age as a lower
    bound (`models.protocol.lower_col`), so coverage counts it when it has already passed a quantile.

    Returns:
        Test rows with `cutoff`, the target (and its lower bound for durations), slice columns, and per
        system either a probability column or quantile columns (``transitcast_q50`` ...): `transitcast`,
        each baseline raw and ``<baseline>_calibrated``, and `oracle` when given.
    """
    windows = windows or task_windows(task, config)
    labelled = censor_at(task.frame, task.spec.columns, task.as_of)
    parts = [fold_predictions(task, config, windows, cutoff, labelled) for cutoff in task_cutoffs(windows)]
    found = [p for p in parts if p is not None]
    if not found:
        raise ValueError(
            f"{task.spec.name}: no backtest fold has test rows (windows: {windows.table().rows()})"
        )
    return keep_systems(pl.concat(found, how="vertical_relaxed"), task, oracle)


def fold_predictions(
    task: TaskFrame,
    config: ShipmentModelsConfig,
    windows: Windows,
    cutoff: dt.datetime,
    labelled: pl.DataFrame | None = None,
    *,
    with_baselines: bool = True,
) -> pl.DataFrame | None:
    """One fold: its test rows (labels as known at "now") with every system fitted at `cutoff`.

    Returns None when the fold has no test rows.
    """
    spec = task.spec
    labelled = censor_at(task.frame, spec.columns, task.as_of) if labelled is None else labelled
    end = cutoff + windows.fold_days * DAY
    test = labelled.filter((pl.col(spec.time_col) >= cutoff) & (pl.col(spec.time_col) < end))
    if test.is_empty():
        log.warning("%s: fold %s has no test rows; skipped", spec.name, cutoff)
        return None
    fitted = fit_cutoff(task, cutoff, windows, config, with_baselines=with_baselines)
    systems = fitted.systems()
    if fitted.model is None and with_baselines:  # what `train` ships at this cutoff: the calibrated baseline
        systems = {"transitcast": systems[calibrated_name(spec.baselines[0].name)], **systems}
    preds = [_as_system(model.predict(test), name, spec) for name, model in systems.items()]
    return test.hstack([c for p in preds for c in p.get_columns()]).with_columns(cutoff=pl.lit(cutoff))


def _as_system(pred: pl.DataFrame, system: str, spec: TaskSpec) -> pl.DataFrame:
    if spec.kind == "classifier":
        return pred.select(pl.col(spec.output).alias(system))
    return pred.select(
        pl.col(f"{spec.output}_q{round(q * 100)}").alias(f"{system}_q{round(q * 100)}") for q in QUANTILES
    )


def keep_systems(preds: pl.DataFrame, task: TaskFrame, oracle: pl.DataFrame | None) -> pl.DataFrame:
    """The backtest frame: keys, target, slices and the systems' columns (plus the oracle's)."""
    spec = task.spec
    systems = [c for c in preds.columns if c not in task.frame.columns and c not in ("cutoff",)]
    systems = [c for c in systems if c != lower_col(spec.target)]
    if oracle is not None and spec.oracle is not None:
        cols = (
            [spec.oracle]
            if spec.kind == "classifier"
            else [f"{spec.oracle}_q{round(q * 100)}" for q in QUANTILES]
        )
        renamed = oracle.select(
            "shipment_id", *[pl.col(c).alias(c.replace(spec.oracle, "oracle", 1)) for c in cols]
        )
        preds = preds.join(renamed, on="shipment_id", how="left")
        systems += [c.replace(spec.oracle, "oracle", 1) for c in cols]
    target = pl.col(spec.target).cast(pl.Float64) if spec.kind == "classifier" else pl.col(spec.target)
    keys = ["cutoff", "shipment_id", spec.time_col, *[s for s in SLICES if s in preds.columns]]
    lower = [lower_col(spec.target)] if lower_col(spec.target) in preds.columns else []
    return preds.select(*keys, target.alias(spec.target), *lower, *systems)
