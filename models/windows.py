"""Stage: models (protocol). Training, calibration and backtest windows sized from the data, each explained.

Reads and writes nothing: a task frame in, `Windows` (whole days) out, with one `WindowChoice` per window
saying its value, the rule and the evidence, so a run prints why it trained on what it trained on. Every
window is ``"auto"`` (derived here) or a number (a config file or a CLI flag overrides it).

Rules (``recent`` = the `recent_days` before the point where labels are mature):

- ``maturity_days``: the `maturity_quantile` (P99) of the time from a row's prediction moment to its label
  (e.g. door-to-door transit), over recent rows old enough to have been observed; rows still open count at
  their age. Training and calibration rows are at least this old at the cutoff, so slow parcels are not
  missing from them; backtest test windows end this long before the data's end, so their labels are known.
- ``calibration_days``: the fewest days whose recent volume gives every calibration group holding at
  least `major_group_share` of the rows `min_calibration_rows` rows (per mode for quantiles, per class for
  probabilities). Both are bounded to [`min_calibration_days`, a fifth of the history]: most of the history
  stays for training.
- ``early_stopping_days``: the slice before the calibration window on which the boosters stop early: the
  days recent volume needs for `min_stopping_rows` rows (all groups together).
- ``history_days``: every mature day, at most `max_history_days` (a year holds the seasonal cycle), longer
  (up to every mature day) while those hold fewer than `min_history_rows` rows.
- ``fold_days``: the days recent volume needs for `target_fold_rows` test rows, within
  [`min_fold_days`, `max_fold_days`].
- ``folds``: as many as fit (at most `max_folds`), each with at least `min_fold_rows` test rows and the
  earliest with at least `min_train_rows` training rows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Auto",
    "WindowChoice",
    "WindowColumns",
    "WindowConfig",
    "Windows",
    "derive_windows",
]

Auto = Literal["auto"]
DAY = dt.timedelta(days=1)


class WindowConfig(BaseModel):
    """The windows of the shipment protocol: each ``"auto"`` (derived from the data) or a number of days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    history_days: Auto | int = Field(default="auto", description="training window before the mature end")
    calibration_days: Auto | int = Field(
        default="auto", description="last mature days, held out to calibrate"
    )
    early_stopping_days: Auto | int = Field(default="auto", description="days before calibration: stopping")
    maturity_days: Auto | int = Field(default="auto", description="rows younger than this at a cutoff wait")
    fold_days: Auto | int = Field(default="auto", description="test window of each backtest fold")
    folds: Auto | int = Field(default="auto", description="number of backtest folds")
    maturity_quantile: float = Field(default=0.99, gt=0.5, lt=1.0)
    recent_days: int = Field(default=182, ge=14, description="span of the evidence for rates and durations")
    max_history_days: int = Field(default=365, ge=28, description="unless that holds few rows")
    min_history_rows: int = Field(default=10_000, ge=1)
    min_calibration_rows: int = Field(default=300, ge=20, description="per major calibration group")
    major_group_share: float = Field(default=0.10, ge=0.0, le=1.0, description="0: every group counts")
    min_stopping_rows: int = Field(default=1_000, ge=20, description="early-stopping slice, all groups")
    min_calibration_days: int = Field(default=7, ge=1)
    target_fold_rows: int = Field(default=2_000, ge=1)
    min_fold_rows: int = Field(default=200, ge=1, description="smaller folds are refused in summaries")
    min_fold_days: int = Field(default=28, ge=1)
    max_fold_days: int = Field(default=91, ge=1)
    max_folds: int = Field(default=3, ge=1)
    min_train_rows: int = Field(default=1_000, ge=1)

    def overridden(self, **days: int | None) -> WindowConfig:
        """A copy with the given windows fixed (None or 0 keeps the current value)."""
        return self.model_copy(update={k: v for k, v in days.items() if v})


@dataclass(frozen=True)
class WindowChoice:
    """One window: its value in days, the rule that chose it and the evidence."""

    name: str
    days: int
    rule: str
    evidence: str


@dataclass(frozen=True)
class WindowColumns:
    """Which columns of a task frame the rules read.

    Attributes:
        time_col: a row's prediction moment.
        observed_col: when its label became known (null while open).
        open_col: boolean, the row may still get a label (a parcel in transit); None if none can.
        group_col: calibration group (mode, or the 0/1 target of a classifier); None for no groups.
    """

    time_col: str
    observed_col: str
    open_col: str | None = None
    group_col: str | None = None


@dataclass(frozen=True)
class Windows:
    """Resolved windows (days) of one task, with the choices that explain them."""

    history_days: int
    calibration_days: int
    early_stopping_days: int
    maturity_days: int
    fold_days: int
    folds: int
    as_of: dt.datetime
    choices: tuple[WindowChoice, ...] = ()

    @property
    def maturity(self) -> dt.timedelta:
        """`maturity_days` as a duration."""
        return self.maturity_days * DAY

    def table(self) -> pl.DataFrame:
        """One row per window: ``window, days, rule, evidence``."""
        return pl.DataFrame(
            [(c.name, c.days, c.rule, c.evidence) for c in self.choices],
            schema={"window": pl.String, "days": pl.Int64, "rule": pl.String, "evidence": pl.String},
            orient="row",
        )


def _days(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds().cast(pl.Float64) / 86_400e6


def _durations(frame: pl.DataFrame, cols: WindowColumns, as_of: dt.datetime) -> pl.DataFrame:
    """Per row: time, and the label delay (observed) or age at `as_of` (open, censored), else null."""
    observed = pl.col(cols.observed_col).is_not_null() & (pl.col(cols.observed_col) < pl.lit(as_of))
    is_open = pl.lit(False) if cols.open_col is None else pl.col(cols.open_col).fill_null(False)
    value = (
        pl.when(observed)
        .then(_days(pl.col(cols.observed_col) - pl.col(cols.time_col)))
        .when(is_open | pl.col(cols.observed_col).is_not_null())
        .then(_days(pl.lit(as_of) - pl.col(cols.time_col)))
    )
    return frame.select(pl.col(cols.time_col).alias("t"), value.alias("d")).filter(pl.col("t") < as_of)


def _maturity(
    frame: pl.DataFrame, cols: WindowColumns, as_of: dt.datetime, cfg: WindowConfig
) -> WindowChoice:
    q = cfg.maturity_quantile
    rule = (
        f"P{q * 100:g} of the label delay of recent rows old enough to be observed (open rows at their age)"
    )
    if cfg.maturity_days != "auto":
        return WindowChoice("maturity_days", int(cfg.maturity_days), "set in the config", rule)
    durations = _durations(frame, cols, as_of).drop_nulls("d")
    if durations.is_empty():
        return WindowChoice("maturity_days", 0, rule, "no labels: 0")
    first = durations.get_column("d").quantile(q) or 0.0
    end = as_of - first * DAY
    recent = durations.filter((pl.col("t") < end) & (pl.col("t") >= end - cfg.recent_days * DAY))
    sample = recent if recent.height >= 100 else durations
    value = sample.get_column("d").quantile(q) or 0.0
    span = _days(pl.lit(as_of) - pl.col("t").min()).alias("s")
    cap = float(durations.select(span).item()) / 2
    days = max(0, min(math.ceil(value - 1e-9), math.floor(cap)))
    evidence = f"P{q * 100:g} = {value:.1f} d over {sample.height:,} rows" + (
        f"; capped at half the span ({cap:.0f} d)" if math.ceil(value) > cap else ""
    )
    return WindowChoice("maturity_days", days, rule, evidence)


def _days_for_rows(counts: dict[str, int], span_days: float, need: int, share: float) -> tuple[float, str]:
    """Days for `need` rows in every group holding at least `share` of the rows; the evidence text."""
    total = sum(counts.values())
    if total == 0 or span_days <= 0:
        return math.inf, "no recent rows"
    major = {g: n for g, n in counts.items() if n >= share * total}
    days = {g: need * span_days / n for g, n in major.items()}
    worst = max(days, key=lambda g: days[g])
    parts = ", ".join(f"{g}: {n / span_days:.1f}/d" for g, n in sorted(major.items()))
    return days[worst], f"{need} rows of {worst} need {days[worst]:.1f} d ({parts})"


def _sized(
    name: str, setting: Auto | int, need_days: float, bounds: tuple[int, int], rule: str, evidence: str
) -> WindowChoice:
    if setting != "auto":
        return WindowChoice(name, int(setting), "set in the config", rule)
    low, high = bounds
    days = int(min(max(math.ceil(need_days) if math.isfinite(need_days) else high, low), max(high, low)))
    note = "" if low <= need_days <= high else f" -> bounded to [{low}, {max(high, low)}] d"
    return WindowChoice(name, days, rule, evidence + note)


def derive_windows(
    frame: pl.DataFrame, cols: WindowColumns, as_of: dt.datetime, config: WindowConfig | None = None
) -> Windows:
    """Size every window of one task from its frame (see the module docstring for the rules).

    Args:
        frame: the task's rows (prediction times, observation times, calibration groups).
        cols: which columns hold those.
        as_of: the data's "now" (the shipped model's cutoff).
        config: fixed windows and the rules' parameters.

    Returns:
        The windows and the choices that explain them.
    """
    cfg = config or WindowConfig()
    maturity = _maturity(frame, cols, as_of, cfg)
    mature_end = as_of - maturity.days * DAY
    times = frame.get_column(cols.time_col).drop_nulls()
    first = times.min()
    mature_span = max((mature_end - first) / DAY, 0.0) if isinstance(first, dt.datetime) else 0.0
    recent_start = mature_end - cfg.recent_days * DAY
    recent = frame.filter((pl.col(cols.time_col) >= recent_start) & (pl.col(cols.time_col) < mature_end))
    recent_span = min(cfg.recent_days, mature_span)
    group = cols.group_col if cols.group_col in frame.columns else None
    counts = (
        {"all rows": recent.height}
        if group is None
        else {str(g): n for g, n in recent.group_by(group).len().iter_rows() if g is not None}
    )
    rate = recent.height / recent_span if recent_span > 0 else 0.0
    history = _history(mature_span, rate, mature_end, cfg)
    need, why = _days_for_rows(counts, recent_span, cfg.min_calibration_rows, cfg.major_group_share)
    bounds = (cfg.min_calibration_days, history.days // 5)
    rule = (
        f">= {cfg.min_calibration_rows} rows per calibration group ({group or 'all rows'}) in recent volume"
    )
    calibration = _sized("calibration_days", cfg.calibration_days, need, bounds, rule, why)
    need, why = _days_for_rows({"all rows": recent.height}, recent_span, cfg.min_stopping_rows, 0.0)
    rule = f">= {cfg.min_stopping_rows} rows in recent volume"
    stopping = _sized("early_stopping_days", cfg.early_stopping_days, need, bounds, rule, why)
    fold_need = cfg.target_fold_rows / rate if rate > 0 else math.inf
    fold = _sized(
        "fold_days", cfg.fold_days, fold_need, (cfg.min_fold_days, cfg.max_fold_days),
        f"~{cfg.target_fold_rows:,} test rows per fold at the recent volume", f"{rate:.1f} rows/day recently",
    )  # fmt: skip
    folds = _fold_count(frame, cols, mature_end, fold.days, (maturity, history, calibration, stopping), cfg)
    return Windows(
        history_days=history.days,
        calibration_days=calibration.days,
        early_stopping_days=stopping.days,
        maturity_days=maturity.days,
        fold_days=fold.days,
        folds=folds.days,
        as_of=as_of,
        choices=(history, calibration, stopping, maturity, fold, folds),
    )


def _history(mature_span: float, rate: float, mature_end: dt.datetime, cfg: WindowConfig) -> WindowChoice:
    """Every mature day up to `max_history_days`; longer when those hold fewer than `min_history_rows`."""
    rule = f"every mature day up to {cfg.max_history_days}, more while < {cfg.min_history_rows:,} rows"
    need = cfg.min_history_rows / rate if rate > 0 else math.inf
    wanted = max(cfg.max_history_days, min(need, mature_span))
    evidence = f"{mature_span:.0f} mature days to {mature_end:%Y-%m-%d}; {rate:.1f} rows/day recently"
    return _sized("history_days", cfg.history_days, min(mature_span, wanted), (28, math.ceil(wanted)), rule,
                  evidence)  # fmt: skip


def _fold_count(
    frame: pl.DataFrame,
    cols: WindowColumns,
    test_end: dt.datetime,
    fold_days: int,
    windows: tuple[WindowChoice, WindowChoice, WindowChoice, WindowChoice],
    cfg: WindowConfig,
) -> WindowChoice:
    """Folds whose test windows tile back from `test_end`, as many as the data holds (see module docs)."""
    rule = (
        f"at most {cfg.max_folds}, each >= {cfg.min_fold_rows} test rows, "
        f"the earliest >= {cfg.min_train_rows} training rows"
    )
    if cfg.folds != "auto":
        return WindowChoice("folds", int(cfg.folds), "set in the config", rule)
    time = pl.col(cols.time_col)
    maturity, history, calibration, stopping = (c.days * DAY for c in windows)
    chosen, evidence = 1, "not even one fold has enough rows: 1 fold, flagged in the backtest table"
    for n in range(1, cfg.max_folds + 1):
        earliest = test_end - n * fold_days * DAY
        test_rows = frame.filter((time >= earliest) & (time < earliest + fold_days * DAY)).height
        start, end = earliest - maturity - history, earliest - maturity - calibration - stopping
        train_rows = frame.filter((time >= start) & (time < end)).height
        if test_rows < cfg.min_fold_rows or train_rows < cfg.min_train_rows:
            if n == 1:
                evidence = f"1 fold: only {test_rows:,} test and {train_rows:,} training rows"
            break
        chosen, evidence = n, f"the earliest of {n} has {test_rows:,} test and {train_rows:,} training rows"
    return WindowChoice("folds", chosen, rule, evidence)
