"""Stage: models. The shipment model suite: ETA, delay, in-transit ETA, customs inspection and clearance.

Reads and writes nothing: validated contract tables in, model objects and frames out. `prepare_task_frames`
builds each task's frame once with the point-in-time feature builders (the same ones batch and online
scoring use); `backtest_task` fits the task's model on time-ordered rolling-origin folds and puts its
predictions next to the baselines (and the simulator's oracle, when given); `fit_task` fits the final
model on everything observed.

Every fit is time-ordered: training rows whose label was known before the fold's cutoff (right-censoring),
then a later calibration window (conformal offsets per mode for quantiles, isotonic for probabilities)
taken from the end of the training period, never from the test period.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.feature_set import FeatureSet
from features.milestones import MilestoneFeatureConfig, build_milestone_snapshots, milestone_feature_set
from features.shipment_features import (
    BookingFeatureConfig,
    add_shipment_targets,
    booking_feature_set,
    build_booking_features,
    late_known_at,
)
from models.backtest import Fold, backtest, rolling_origin_folds
from models.classifier import CalibratedClassifier
from models.lgbm import LGBMConfig, LGBMModel
from models.metrics import auc, brier, coverage, ece, evaluate, interval_width, log_loss, mae, pinball
from models.quantile import QuantileRegressor

__all__ = [
    "SLICES",
    "TASKS",
    "ShipmentModelsConfig",
    "TaskFrame",
    "TaskName",
    "TaskSpec",
    "backtest_task",
    "evaluate_task",
    "fit_rows",
    "fit_task",
    "prepare_task_frames",
]

log = logging.getLogger(__name__)

TaskName = Literal["eta", "delay", "intransit", "inspection", "clearance"]
QUANTILES = (0.5, 0.8, 0.95)
SLICES = ("mode", "destination_country", "carrier", "lane")


@dataclass(frozen=True)
class TaskSpec:
    """One shipment prediction task.

    Attributes:
        name: task name (also the MLflow registered model suffix).
        kind: quantile regression or calibrated probability.
        target: target column.
        output: prediction column (probability) or prefix of the quantile columns.
        time_col: the prediction moment of a row.
        observed_col: when the row's label became known (right-censoring in backtests).
        baselines: baseline name -> column (probability) or column prefix (quantiles) in the task frame.
        oracle: oracle column (probability) or prefix (quantiles) in the simulator's oracle, if any.
        gate_metric: metric of the promotion gate (lower is better).
    """

    name: TaskName
    kind: Literal["quantile", "classifier"]
    target: str
    output: str
    time_col: str
    observed_col: str
    baselines: tuple[tuple[str, str], ...]
    oracle: str | None
    gate_metric: str


TASKS: dict[str, TaskSpec] = {
    "eta": TaskSpec(
        "eta", "quantile", "transit_days", "eta_days", "created_at", "delivered_at",
        (("contract_days", "contract_days"), ("lane_history", "lane_days")), "eta_days", "pinball",
    ),
    "delay": TaskSpec(
        "delay", "classifier", "is_late", "p_late", "created_at", "late_known_at",
        (("lane_history", "p_late_lane"), ("prevalence", "p_late_prevalence")), "p_late", "brier",
    ),
    "intransit": TaskSpec(
        "intransit", "quantile", "remaining_days", "remaining_days", "snapshot_at", "delivered_at",
        (("lane_history", "lane_remaining"),), None, "pinball",
    ),
    "inspection": TaskSpec(
        "inspection", "classifier", "is_inspected", "p_inspection", "created_at", "inspection_known_at",
        (("hs_destination_history", "p_inspection_history"),), "p_inspection", "brier",
    ),
    "clearance": TaskSpec(
        "clearance", "quantile", "clearance_days", "clearance_days", "created_at", "released_at",
        (("hs_destination_history", "clearance_history"),), None, "pinball",
    ),
}  # fmt: skip


class ShipmentModelsConfig(BaseModel):
    """Everything that decides the shipment models and their backtest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    booking: BookingFeatureConfig = BookingFeatureConfig()
    milestone: MilestoneFeatureConfig = MilestoneFeatureConfig()
    lgbm: LGBMConfig = LGBMConfig(
        num_boost_round=250, early_stopping_rounds=None, params={"learning_rate": 0.08, "num_leaves": 63}
    )
    n_folds: int = Field(default=3, ge=1)
    horizon_days: int = Field(default=28, ge=1, description="test window of each fold")
    maturity_days: int = Field(default=45, ge=0, description="only train on rows at least this old")
    calibration_days: int = Field(default=28, ge=1, description="last part of training used to calibrate")
    history_days: int = Field(default=365, ge=28, description="training window before each cutoff")
    max_train_rows: int = Field(default=300_000, ge=1_000, description="most recent rows kept per fit")
    max_train_rows_by_task: dict[str, int] = Field(
        default_factory=lambda: {"intransit": 150_000},
        description="per-task override (in-transit has ~8 milestone rows per shipment)",
    )
    log_target: bool = True
    calibrate_by: str | None = "mode"
    never_shorten: tuple[str, ...] = Field(
        default=("dest_holidays_in_window", "peak_days_in_window"),
        description="durations are floored by the prediction without these (a holiday never shortens an ETA)",
    )
    end: dt.datetime | None = Field(default=None, description="stop the folds here (default: end of data)")


@dataclass(frozen=True)
class TaskFrame:
    """A task's rows (features, targets, baselines, slice columns) and its feature set."""

    spec: TaskSpec
    frame: pl.DataFrame
    features: FeatureSet


# ---------------------------------------------------------------------------------------------------------
# Task frames
# ---------------------------------------------------------------------------------------------------------
def _quantile_baseline(prefix: str, cols: tuple[str, str, str]) -> list[pl.Expr]:
    return [pl.col(c).alias(f"{prefix}_q{int(q * 100)}") for c, q in zip(cols, QUANTILES, strict=True)]


def _slices(df: pl.DataFrame) -> pl.DataFrame:
    lane = pl.concat_str(["origin_hub", "destination_country", "mode", "carrier"], separator="|")
    return df.with_columns(lane.alias("lane"))


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
        as_of: the data's "now" (default: the latest timestamp in shipments and events).
    """
    shipments = tables["shipments"]
    lanes, declarations = tables.get("lanes"), tables.get("customs_declarations")
    as_of = as_of or shipments["created_at"].max()  # type: ignore[assignment]
    booking = build_booking_features(shipments, lanes=lanes, declarations=declarations, config=config.booking)
    booking_set = booking_feature_set(config.booking)
    base = (
        booking.join(
            add_shipment_targets(shipments, as_of=as_of).select(
                "shipment_id", "delivered_at", "status", "transit_days", "is_late", "promised_date"
            ),
            on="shipment_id",
            how="left",
        )
        .with_columns(late_known_at())
        .pipe(_slices)
    )
    frames: dict[str, TaskFrame] = {}
    if "eta" in tasks:
        frame = base.filter(pl.col("mode") != "overseas_warehouse").with_columns(
            *_quantile_baseline("contract_days", ("contract_transit_days",) * 3),
            *_quantile_baseline(
                "lane_days",
                tuple(f"lane_transit_days_{q}_last50" for q in ("q50", "q80", "q95")),  # type: ignore[arg-type]
            ),
        )
        frame = frame.with_columns(
            pl.coalesce(
                f"lane_days_q{p}", f"dest_mode_transit_days_q{p}_last200", f"contract_days_q{p}"
            ).alias(f"lane_days_q{p}")
            for p in (50, 80, 95)
        )
        frames["eta"] = TaskFrame(TASKS["eta"], frame, booking_set)
    if "delay" in tasks:
        prevalence = base.filter(pl.col("late_known_at") < pl.lit(as_of))["is_late"].mean() or 0.1
        frame = base.with_columns(
            (1 - pl.coalesce("lane_on_time_rate_last100", "dest_mode_on_time_rate_last200")).alias(
                "p_late_lane"
            ),
            pl.lit(float(prevalence)).alias("p_late_prevalence"),  # type: ignore[arg-type]
        )
        frames["delay"] = TaskFrame(TASKS["delay"], frame, booking_set)
    if declarations is not None and {"inspection", "clearance"} & set(tasks):
        decl = declarations.select(
            "shipment_id",
            pl.col("is_inspected"),
            ((pl.col("released_at") - pl.col("declared_at")).dt.total_seconds() / 86_400).alias(
                "clearance_days"
            ),
            (pl.col("declared_at") + pl.duration(days=config.booking.inspection_known_after_days)).alias(
                "inspection_known_at"
            ),
            "released_at",
        ).filter(pl.col("shipment_id").is_not_null())
        frame = base.join(decl, on="shipment_id", how="inner").with_columns(
            pl.coalesce("customs_is_inspected_rate_last200", "customs_dest_is_inspected_rate_last1000").alias(
                "p_inspection_history"
            ),
            *_quantile_baseline(
                "clearance_history",
                ("customs_clearance_days_mean_last200",) * 2 + ("customs_clearance_days_q90_last200",),
            ),
        )
        if "inspection" in tasks:
            frames["inspection"] = TaskFrame(TASKS["inspection"], frame, booking_set)
        if "clearance" in tasks:
            frames["clearance"] = TaskFrame(TASKS["clearance"], frame, booking_set)
    if "intransit" in tasks and "shipment_events" in tables:
        snaps = build_milestone_snapshots(shipments, tables["shipment_events"], booking, config.milestone)
        extra = base.select("shipment_id", "delivered_at", "lane")
        frame = snaps.join(extra, on="shipment_id", how="left").with_columns(
            *_quantile_baseline(
                "lane_remaining",
                tuple(f"lane_event_remaining_days_{q}_last50" for q in ("q50", "q80", "q95")),  # type: ignore[arg-type]
            )
        )
        frames["intransit"] = TaskFrame(
            TASKS["intransit"], frame, milestone_feature_set(config.milestone, booking_set)
        )
    return frames


# ---------------------------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------------------------
def _new_model(task: TaskFrame, config: ShipmentModelsConfig) -> LGBMModel:
    if task.spec.kind == "quantile":
        return QuantileRegressor(
            task.features,
            QUANTILES,
            prefix=task.spec.output,
            log_target=config.log_target,
            floor_features=[c for c in config.never_shorten if c in task.features.names],
            config=config.lgbm,
        )
    return CalibratedClassifier(
        task.features, output_col=task.spec.output, method="isotonic", config=config.lgbm
    )


def fit_rows(task: TaskFrame, train: pl.DataFrame, config: ShipmentModelsConfig) -> LGBMModel:
    """Fit on the older part of `train`, calibrate on its last `calibration_days`."""
    spec = task.spec
    train = train.filter(pl.col(spec.target).is_not_null()).sort(spec.time_col)
    cap = config.max_train_rows_by_task.get(spec.name, config.max_train_rows)
    if train.height > cap:
        train = train.tail(cap)
    split_at = train[spec.time_col].max() - dt.timedelta(days=config.calibration_days)  # type: ignore[operator]
    older = train.filter(pl.col(spec.time_col) < split_at)
    calib_rows = train.filter(pl.col(spec.time_col) >= split_at)
    if older.height < 200 or calib_rows.height < 50:
        older, calib_rows = train, train
    model = _new_model(task, config)
    model.fit(older, spec.target)
    if isinstance(model, QuantileRegressor):
        group = config.calibrate_by if config.calibrate_by in calib_rows.columns else None
        model.calibrate(calib_rows, spec.target, group_col=group)
    elif isinstance(model, CalibratedClassifier):
        model.calibrate(calib_rows, spec.target)
    return model


def _train_window(spec: TaskSpec, end: dt.datetime, config: ShipmentModelsConfig) -> pl.Expr:
    start = end - dt.timedelta(days=config.history_days)
    known = pl.col(spec.observed_col).is_not_null() & (pl.col(spec.observed_col) < pl.lit(end))
    return (pl.col(spec.time_col) >= pl.lit(start)) & known


def fit_task(task: TaskFrame, config: ShipmentModelsConfig, as_of: dt.datetime | None = None) -> LGBMModel:
    """Fit the final model of a task on the rows whose label is known at `as_of` (default: data end)."""
    spec = task.spec
    end = as_of or task.frame[spec.time_col].max()
    rows = task.frame.filter(_train_window(spec, end, config))  # type: ignore[arg-type]
    log.info("%s: fitting on %s rows", spec.name, f"{rows.height:,}")
    return fit_rows(task, rows, config)


def task_folds(task: TaskFrame, config: ShipmentModelsConfig) -> list[Fold]:
    """The rolling-origin folds of a task (time-ordered, `n_folds` windows of `horizon_days`)."""
    times = task.frame[task.spec.time_col]
    end = config.end or times.max() + dt.timedelta(seconds=1)  # type: ignore[operator]
    return rolling_origin_folds(
        times,
        n_folds=config.n_folds,
        horizon=dt.timedelta(days=config.horizon_days),
        end=end,  # type: ignore[arg-type]
    )


def backtest_task(
    task: TaskFrame, config: ShipmentModelsConfig, oracle: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Predictions of the task's model on each fold next to its baselines (and the oracle).

    Returns:
        Test rows with `cutoff`, the target, slice columns, and per system either a probability column
        (`transitcast`, baselines, `oracle`) or quantile columns (`transitcast_q50`, ...).
    """
    spec = task.spec
    maturity = dt.timedelta(days=config.maturity_days)

    def fit_predict(train: pl.DataFrame, test: pl.DataFrame) -> pl.DataFrame:
        cutoff = test[spec.time_col].min()
        train = train.filter(pl.col(spec.time_col) >= cutoff - dt.timedelta(days=config.history_days))  # type: ignore[operator]
        model = fit_rows(task, train, config)
        return test.hstack(model.predict(test))

    preds = backtest(
        task.frame, fit_predict, task_folds(task, config), spec.time_col,
        observed_col=spec.observed_col, maturity=maturity,
    )  # fmt: skip
    return _systems(preds, task, oracle)


def _systems(preds: pl.DataFrame, task: TaskFrame, oracle: pl.DataFrame | None) -> pl.DataFrame:
    """Rename model, baseline and oracle outputs to the metric convention (system name, `_qNN`)."""
    spec = task.spec
    keep = ["cutoff", spec.target, *[s for s in SLICES if s in preds.columns], "shipment_id", spec.time_col]
    exprs: list[pl.Expr] = []
    systems = [("transitcast", spec.output), *spec.baselines]
    if oracle is not None and spec.oracle is not None:
        cols = (
            [spec.oracle]
            if spec.kind == "classifier"
            else [f"{spec.oracle}_q{int(q * 100)}" for q in QUANTILES]
        )
        renamed = oracle.select("shipment_id", *[pl.col(c).alias(f"__oracle_{c}") for c in cols])
        preds = preds.join(renamed, on="shipment_id", how="left")
        systems.append(("oracle", f"__oracle_{spec.oracle}"))
    for name, source in systems:
        if spec.kind == "classifier":
            exprs.append(pl.col(source).cast(pl.Float64).alias(name))
        else:
            exprs += [pl.col(f"{source}_q{int(q * 100)}").alias(f"{name}_q{int(q * 100)}") for q in QUANTILES]
    target = pl.col(spec.target).cast(pl.Float64) if spec.kind == "classifier" else pl.col(spec.target)
    return preds.select(*[c for c in keep if c != spec.target], target.alias(spec.target), *exprs)


def systems_of(preds: pl.DataFrame, task: TaskSpec) -> list[str]:
    """The system names present in a backtest frame."""
    names = ["transitcast", *(b for b, _ in task.baselines), "oracle"]
    if task.kind == "classifier":
        return [n for n in names if n in preds.columns]
    return [n for n in names if f"{n}_q50" in preds.columns]


def evaluate_task(preds: pl.DataFrame, task: TaskSpec, slices: tuple[str, ...] = SLICES) -> pl.DataFrame:
    """Metrics per fold, overall and per slice: `[cutoff, slice, slice_value, model, metric, value]`."""
    systems = systems_of(preds, task)
    if task.kind == "quantile":
        q50 = preds.with_columns(pl.col(f"{s}_q50").alias(s) for s in systems)
        metric_fns = [pinball, coverage, interval_width]
        point = [(mae, q50)]
    else:
        metric_fns = [brier, log_loss, auc, ece]
        point = []
    parts = []
    for by in [(), *[(s,) for s in slices if s in preds.columns]]:
        out = [evaluate(preds, metric_fns, systems, task.target, "cutoff", by)]  # type: ignore[arg-type]
        out += [fn(frame, systems, task.target, "cutoff", by) for fn, frame in point]
        res = pl.concat(out, how="diagonal_relaxed")
        name = by[0] if by else "overall"
        value = pl.col(by[0]).cast(pl.String) if by else pl.lit("all")
        parts.append(res.select("cutoff", pl.lit(name).alias("slice"), value.alias("slice_value"),
                                "model", "metric", "value"))  # fmt: skip
    return pl.concat(parts)
