"""Stage: models (protocol). One code path fits a shipment model at a cutoff: backtest folds and `train`.

Reads and writes nothing: a task frame in, fitted models out. The model that `train` ships is
`fit_at_cutoff(frame, ..., as_of, ...)`; a backtest fold is `fit_at_cutoff(frame, ..., fold_cutoff, ...)` on
the same frame (`models.shipment_tasks`). Nothing else selects training rows: what ships is what was
measured.

Timeline at a cutoff ``C`` (windows from `models.windows`)::

    | train                | early stopping | calibration                           | C
    [C-M-H ....... C-M-K-S)[C-M-K-S .. C-M-K)[C-M-K .. C-M) + durations: [C-M ..... C)

Rules (labels as known at ``C``):
- train and early-stopping rows: label observed strictly before ``C``; the others are dropped.
- calibration rows of durations: every row from ``C-M-K`` to ``C``, with its age at ``C`` and its target
  when delivered by then (null while open): an open parcel already past its quantile is a known miss, and a
  row counts for the offsets its age decides, never selected by its outcome
  (`models.calibration.decidable_offset`), so calibration follows the latest weeks without the fast-only
  bias. Calibration rows of probabilities: labelled mature rows in ``[C-M-K, C-M)``.
- rows younger than the maturity ``M`` at ``C`` never train (their labels are biased to the fast).

Every fit also yields each baseline of the task as a model (`models.lgbm.LGBMModel.fit_baseline`), raw and
calibrated on the same calibration rows: the systems the promotion gate compares and can ship.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from models.lgbm import LGBMModel
from models.promotion import baseline_system
from models.windows import DAY, Windows

__all__ = [
    "AGE_COL",
    "CutoffFit",
    "CutoffRows",
    "ProtocolColumns",
    "calibrated_name",
    "censor_at",
    "fit_at_cutoff",
    "lower_col",
    "split_at_cutoff",
    "tables_known_at",
]

log = logging.getLogger(__name__)


AGE_COL = "age_days"  # a calibration row's age at the cutoff: what it decides of its target


def lower_col(target: str) -> str:
    """Column of a censored row's known lower bound of `target` (its age at the cutoff, in days)."""
    return f"{target}_lower"


def calibrated_name(baseline: str) -> str:
    """The backtest system of a baseline calibrated like the model (``lane_history_calibrated``)."""
    return f"{baseline}_calibrated"


@dataclass(frozen=True)
class ProtocolColumns:
    """The columns of a task frame the protocol reads.

    Attributes:
        time_col: a row's prediction moment.
        observed_col: when its label became known.
        target: the label.
        open_col: boolean column, the row may still get a label (None: every unlabeled row is final).
        censored_bound: a censored row keeps a lower bound of the target (durations); False for labels
            such as lateness, whose censored rows are dropped.
        start_col: when a duration's clock starts (default `time_col`; a customs clearance counts from the
            declaration): a row's age is measured from it.
    """

    time_col: str
    observed_col: str
    target: str
    open_col: str | None = None
    censored_bound: bool = False
    start_col: str | None = None

    def age_at(self, at: dt.datetime) -> pl.Expr:
        """Days from the duration's start to `at` (negative before it starts)."""
        start = pl.col(self.start_col or self.time_col)
        return (pl.lit(at) - start).dt.total_microseconds().cast(pl.Float64) / 86_400e6


def censor_at(frame: pl.DataFrame, cols: ProtocolColumns, at: dt.datetime) -> pl.DataFrame:
    """`frame` as labels were known at `at`: censored targets nulled, with a lower bound where it applies.

    A row is observed at `at` when its `observed_col` is before `at`; censored when it is open (or observed
    later); a row that is neither (lost, never labelled) has a null target and no bound. With
    `censored_bound`, `lower_col(target)` holds the censored rows' age in days at `at` (from `start_col`;
    null otherwise).
    """
    observed = pl.col(cols.observed_col).is_not_null() & (pl.col(cols.observed_col) < pl.lit(at))
    later = pl.col(cols.observed_col).is_not_null() & (pl.col(cols.observed_col) >= pl.lit(at))
    is_open = later if cols.open_col is None else later | pl.col(cols.open_col).fill_null(False)
    out = frame.with_columns(pl.when(observed).then(pl.col(cols.target)).alias(cols.target))
    if cols.censored_bound:
        age = cols.age_at(at).clip(lower_bound=0.0)
        out = out.with_columns(pl.when(~observed & is_open).then(age).alias(lower_col(cols.target)))
    return out


@dataclass(frozen=True)
class CutoffRows:
    """The rows of one fit at a cutoff (see the module timeline)."""

    cutoff: dt.datetime
    target: str
    train: pl.DataFrame
    stopping: pl.DataFrame
    calibration: pl.DataFrame

    def counts(self) -> dict[str, int]:
        """Rows per part, and the calibration rows still open at the cutoff (right-censored)."""
        return {
            "train": self.train.height,
            "stopping": self.stopping.height,
            "calibration": self.calibration.height,
            "calibration_censored": self.calibration.filter(pl.col(self.target).is_null()).height,
        }


def split_at_cutoff(
    frame: pl.DataFrame, cols: ProtocolColumns, cutoff: dt.datetime, windows: Windows, max_train_rows: int
) -> CutoffRows:
    """Select the training, early-stopping and calibration rows of a fit at `cutoff` (time-ordered).

    Durations (`censored_bound`) calibrate on every row from the calibration window's start to the cutoff,
    with their age at the cutoff (`AGE_COL`) and a null target while open; labels on mature labelled rows.
    """
    mature_end = cutoff - windows.maturity
    calib_start = mature_end - windows.calibration_days * DAY
    stop_start = calib_start - windows.early_stopping_days * DAY
    start = mature_end - windows.history_days * DAY
    time = pl.col(cols.time_col)
    known = censor_at(frame.filter((time >= start) & (time < cutoff)), cols, cutoff).sort(cols.time_col)
    labelled = pl.col(cols.target).is_not_null()
    if cols.censored_bound:
        age = cols.age_at(cutoff).clip(lower_bound=0.0)
        calibration = known.filter(
            (time >= calib_start) & (labelled | pl.col(lower_col(cols.target)).is_not_null())
        )
        calibration = calibration.with_columns(age.alias(AGE_COL))
    else:
        calibration = known.filter((time >= calib_start) & (time < mature_end) & labelled)
    stopping = known.filter((time >= stop_start) & (time < calib_start) & labelled)
    train = known.filter((time < stop_start) & labelled).tail(max_train_rows)
    return CutoffRows(cutoff, cols.target, train, stopping, calibration)


@dataclass
class CutoffFit:
    """Everything fitted at one cutoff: the model, and each baseline as a model (raw and calibrated).

    Attributes:
        rows: the rows used.
        model: the boosted model, calibrated (None when too few training rows: the baselines stand).
        baselines: backtest system name -> fitted baseline model (``lane_history``,
            ``lane_history_calibrated``, ...).
    """

    rows: CutoffRows
    model: LGBMModel | None
    baselines: dict[str, LGBMModel] = field(default_factory=dict)

    def systems(self) -> dict[str, LGBMModel]:
        """Every fitted system by backtest name (``transitcast`` first when fitted)."""
        return {**({"transitcast": self.model} if self.model is not None else {}), **self.baselines}


NewModel = Callable[[Any], LGBMModel]
"""``(baseline spec) -> unfitted model`` boosting from (or being) that baseline."""
Calibrate = Callable[[LGBMModel, pl.DataFrame], None]
"""``(model, calibration rows) -> None``: calibrates the model in place."""


def fit_at_cutoff(
    frame: pl.DataFrame,
    cols: ProtocolColumns,
    cutoff: dt.datetime,
    windows: Windows,
    *,
    new_model: NewModel,
    baselines: Mapping[str, Any],
    calibrate: Calibrate,
    max_train_rows: int,
    min_fit_rows: int = 200,
    with_baselines: bool = True,
) -> CutoffFit:
    """Fit the task's model and its baselines at `cutoff` with the module's rules.

    Args:
        frame: the task's rows (features, target, time and observation columns).
        cols: the protocol columns.
        cutoff: the prediction moment ("now" for the shipped model, a fold's cutoff in a backtest).
        windows: the task's windows.
        new_model: builds an unfitted model from a baseline spec (the first of `baselines` is boosted from).
        baselines: baseline name -> spec, the first being the model's init score.
        calibrate: calibrates a fitted model on the calibration rows.
        max_train_rows: most recent training rows kept.
        min_fit_rows: fewer training rows fit the baselines only (no trees).
        with_baselines: also fit every baseline as a model (False when tuning the model alone).
    """
    rows = split_at_cutoff(frame, cols, cutoff, windows, max_train_rows)
    before = pl.concat([rows.train, rows.stopping], how="vertical_relaxed")
    if before.height == 0 or rows.calibration.height == 0:
        counts = rows.counts()
        raise ValueError(
            f"cutoff {cutoff:%Y-%m-%d}: {counts['train']} training, {counts['stopping']} early-stopping and "
            f"{counts['calibration']} calibration rows; set smaller windows (maturity "
            f"{windows.maturity_days} d, calibration {windows.calibration_days} d) or bring more history"
        )
    specs = list(baselines.items())
    model: LGBMModel | None = None
    if rows.train.height >= min_fit_rows and specs:
        model = new_model(specs[0][1])
        valid = rows.stopping if rows.stopping.height else None
        model.fit(rows.train, cols.target, valid=valid)
        calibrate(model, rows.calibration)
    else:
        log.warning("cutoff %s: %d training rows, baselines only", cutoff, rows.train.height)
    fitted: dict[str, LGBMModel] = {}
    for name, spec in specs if with_baselines else []:
        fitted[name] = new_model(spec).fit_baseline(before, cols.target)
        calibrated = new_model(spec).fit_baseline(before, cols.target)
        calibrate(calibrated, rows.calibration)
        calibrated.system = baseline_system(calibrated_name(name))
        fitted[calibrated_name(name)] = calibrated
    log.info("cutoff %s: %s", cutoff, rows.counts())
    return CutoffFit(rows, model, fitted)


def tables_known_at(tables: Mapping[str, pl.DataFrame], at: dt.datetime) -> dict[str, pl.DataFrame]:
    """Contract tables as they stood at `at`: the table-level twin of `censor_at`, for "train then" tests.

    Shipments created before `at`, with deliveries at or after it undone (``delivered_at`` null, status
    ``in_transit``); scans before `at`; declarations lodged before `at`, releases at or after it undone
    (outcome ``held``). Other tables are kept. Returns and losses keep their status (the contract has no
    time for them).
    """
    out = dict(tables)
    if "shipments" in tables:
        s = tables["shipments"].filter(pl.col("created_at") < pl.lit(at))
        later = pl.col("delivered_at").is_not_null() & (pl.col("delivered_at") >= pl.lit(at))
        status = pl.when(later).then(pl.lit("in_transit")).otherwise(pl.col("status").cast(pl.String))
        out["shipments"] = s.with_columns(
            pl.when(later).then(None).otherwise(pl.col("delivered_at")).alias("delivered_at"),
            status.cast(s.schema["status"]).alias("status"),
        )
    if "shipment_events" in tables:
        out["shipment_events"] = tables["shipment_events"].filter(pl.col("event_at") < pl.lit(at))
    if "customs_declarations" in tables:
        d = tables["customs_declarations"].filter(pl.col("declared_at") < pl.lit(at))
        later = pl.col("released_at").is_not_null() & (pl.col("released_at") >= pl.lit(at))
        outcome = pl.when(later).then(pl.lit("held")).otherwise(pl.col("outcome").cast(pl.String))
        out["customs_declarations"] = d.with_columns(
            pl.when(later).then(None).otherwise(pl.col("released_at")).alias("released_at"),
            outcome.cast(d.schema["outcome"]).alias("outcome"),
        )
    return out
