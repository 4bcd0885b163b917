"""Stage: models (baselines). Simple forecasts every model must beat, as frame functions.

Reads and writes nothing: each function takes the rows to predict first (so ``.pipe`` works) and returns
them with prediction columns added, named like the models' (``{prefix}_q50`` ..., ``p_late``).

- ETA: `predict_from_column` (contract transit days, or a precomputed lane-history column, as every
  quantile), `predict_trailing_quantiles` (trailing per-lane quantiles of targets observed strictly before
  each row), `predict_late_rule` (late when a point ETA exceeds the promised days).
- Probabilities: `predict_prevalence` (training base rate, globally or per group, with optional shrinkage).
- As model parts: `BaselineSpec` / `FittedBaseline`, a task's trailing baseline read from point-in-time
  feature columns with a fallback fitted per group. The shipment models boost from it (LightGBM
  ``init_score``) and, calibrated, it is what ships when the model does not beat it (`models.lgbm`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from models.metrics import quantile_col

__all__ = [
    "BaselineSpec",
    "BaselineTransform",
    "FittedBaseline",
    "TrailingConfig",
    "predict_from_column",
    "predict_late_rule",
    "predict_prevalence",
    "predict_trailing_quantiles",
]

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.95)
_ROW = "__baseline_row"
_KNOWN = "__baseline_known_at"


def predict_from_column(
    frame: pl.DataFrame,
    value_col: str,
    *,
    prefix: str = "eta_days",
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> pl.DataFrame:
    """Every quantile equals `value_col`: the contract-days baseline, or a precomputed lane median.

    Example:
        >>> predict_from_column(pl.DataFrame({"contract_days": [7]}), "contract_days").row(0)
        (7, 7.0, 7.0, 7.0)
    """
    value = pl.col(value_col).cast(pl.Float64)
    return frame.with_columns(value.alias(quantile_col(prefix, q)) for q in quantiles)


def predict_late_rule(
    frame: pl.DataFrame,
    eta_col: str,
    promised_col: str,
    *,
    output_col: str = "p_late",
    margin: float = 0.0,
    probabilities: tuple[float, float] = (0.0, 1.0),
) -> pl.DataFrame:
    """Rule baseline for delay: late when ``eta > promised + margin``.

    Args:
        frame: rows to predict.
        eta_col: point ETA in days (contract days, lane median, a model's ``eta_days_q50``).
        promised_col: days promised to the buyer.
        output_col: probability column.
        margin: tolerance in days.
        probabilities: ``(p when on time, p when late)``; soften from (0, 1) to keep log loss finite.

    Returns:
        `frame` with `output_col` (null where either input is null).
    """
    on_time, late = probabilities
    is_late = pl.col(eta_col).cast(pl.Float64) > pl.col(promised_col).cast(pl.Float64) + margin
    return frame.with_columns(pl.when(is_late).then(late).when(~is_late).then(on_time).alias(output_col))


@dataclass(frozen=True)
class TrailingConfig:
    """Trailing per-group quantiles of past targets.

    Attributes:
        target_col: the target (e.g. ``transit_days``).
        group_cols: the lane key (e.g. origin, destination, mode, carrier).
        time_col: the prediction time of a row (e.g. ``created_at``).
        observed_col: when a history row's target became known (e.g. ``delivered_at``); default
            `time_col`. Only history known strictly before the row's `time_col` counts.
        window: number of most recent known targets per group.
        min_samples: fewer known targets than this gives null (or the fallback).
        quantiles: output quantiles.
        prefix: output column prefix.
        fallback_col: column used where the group has too little history (e.g. contract days).
    """

    target_col: str
    group_cols: tuple[str, ...]
    time_col: str
    observed_col: str | None = None
    window: int = 100
    min_samples: int = 5
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    prefix: str = "eta_days"
    fallback_col: str | None = None


def _rolling(y: pl.Expr, q: float, cfg: TrailingConfig) -> pl.Expr:
    return y.rolling_quantile(q, "linear", window_size=cfg.window, min_samples=cfg.min_samples)


def _over(expr: pl.Expr, groups: list[str]) -> pl.Expr:
    return expr.over(groups) if groups else expr


def predict_trailing_quantiles(
    frame: pl.DataFrame, config: TrailingConfig, history: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per-group quantiles of the last ``window`` targets known strictly before each row (point-in-time).

    Args:
        frame: rows to predict (needs ``group_cols``, ``time_col``).
        config: columns and window.
        history: rows with observed targets (default: `frame` itself, each row seeing only earlier ones).

    Returns:
        `frame` in its original order with ``{prefix}_qNN`` columns (linear interpolation between order
        statistics, so q50 is the usual median).
    """
    cfg = config
    hist = frame if history is None else history
    known = cfg.observed_col or cfg.time_col
    groups = list(cfg.group_cols)
    cols = [quantile_col(cfg.prefix, q) for q in cfg.quantiles]
    y = pl.col(cfg.target_col).cast(pl.Float64)
    stats = (
        hist.filter(pl.col(cfg.target_col).is_not_null() & pl.col(known).is_not_null())
        .select(*groups, pl.col(known).alias(_KNOWN), y.alias(cfg.target_col))
        .sort([*groups, _KNOWN])
        .with_columns(
            _over(_rolling(y, q, cfg), groups).alias(col) for q, col in zip(cfg.quantiles, cols, strict=True)
        )
        .unique(subset=[*groups, _KNOWN], keep="last", maintain_order=True)
        .drop(cfg.target_col)
        .sort(_KNOWN)
    )
    left = frame.drop(cols, strict=False).with_row_index(_ROW).sort(cfg.time_col)
    out = left.join_asof(
        stats,
        left_on=cfg.time_col,
        right_on=_KNOWN,
        by=groups or None,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    if cfg.fallback_col is not None:
        out = out.with_columns(pl.col(c).fill_null(pl.col(cfg.fallback_col).cast(pl.Float64)) for c in cols)
    return out.sort(_ROW).drop(_ROW, _KNOWN, strict=False)


def predict_prevalence(
    frame: pl.DataFrame,
    train: pl.DataFrame,
    target_col: str,
    *,
    output_col: str = "p_late",
    group_cols: Sequence[str] = (),
    prior_strength: float = 0.0,
) -> pl.DataFrame:
    """Constant-rate baseline: the training prevalence of the target, globally or per group.

    Args:
        frame: rows to predict.
        train: training rows (null targets ignored).
        target_col: boolean or 0/1 target.
        output_col: probability column.
        group_cols: per-group rates (e.g. ``destination_country``, ``mode``); unseen groups get the global
            rate.
        prior_strength: pseudo-rows shrinking each group rate to the global rate,
            ``(positives + a * global) / (rows + a)``.

    Returns:
        `frame` with `output_col`.
    """
    y = pl.col(target_col).cast(pl.Float64)
    seen = train.filter(pl.col(target_col).is_not_null())
    if seen.height == 0:
        raise ValueError("no training rows with a target")
    overall = float(seen.select(y.mean()).item())
    if not group_cols:
        return frame.with_columns(pl.lit(overall, dtype=pl.Float64).alias(output_col))
    rates = seen.group_by(list(group_cols)).agg(
        ((y.sum() + prior_strength * overall) / (pl.len() + prior_strength)).alias(output_col)
    )
    out = frame.drop(output_col, strict=False).join(
        rates, on=list(group_cols), how="left", nulls_equal=True, maintain_order="left"
    )
    return out.with_columns(pl.col(output_col).fill_null(overall))


# ---------------------------------------------------------------------------------------------------------
# Trailing baselines as model parts: the init score a booster corrects, and the fallback that can ship
# ---------------------------------------------------------------------------------------------------------
BaselineTransform = Literal["identity", "one_minus"]


@dataclass(frozen=True)
class BaselineSpec:
    """How a task's trailing baseline is read from a feature frame, one value per model output.

    Each output (a quantile, or the probability) is the first non-null of its `columns` (point-in-time
    feature columns, e.g. the lane's trailing P80, then the destination x mode one); where all are null (or
    absent from the frame), the value fitted on the training rows for the row's `group_col` (e.g. the mode),
    else over all training rows. A spec without columns is a fitted-only baseline (prevalence, per-mode rate,
    per-mode quantiles).

    Attributes:
        name: baseline name (the backtest system and the shipped ``system: "baseline:<name>"``).
        columns: per output, the columns to coalesce, in order; ``()`` for none.
        transform: ``"one_minus"`` turns an on-time rate into a late rate.
        group_col: the fitted fallback's group column, or None for one global value.
    """

    name: str
    columns: tuple[tuple[str, ...], ...] = ()
    transform: BaselineTransform = "identity"
    group_col: str | None = None

    def inputs(self) -> tuple[str, ...]:
        """Every column the spec reads."""
        cols = [c for group in self.columns for c in group]
        return tuple(dict.fromkeys([*cols, *([self.group_col] if self.group_col else [])]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "columns": [list(c) for c in self.columns],
            "transform": self.transform,
            "group_col": self.group_col,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineSpec:
        """Inverse of `to_dict`."""
        return cls(
            name=str(data["name"]),
            columns=tuple(tuple(c) for c in data["columns"]),
            transform=data["transform"],
            group_col=data["group_col"],
        )


def _fitted_stats(y: np.ndarray, levels: tuple[float, ...] | None, k: int) -> tuple[float, ...]:
    if levels is None:
        return (float(y.mean()),) * k
    return tuple(float(np.quantile(y, q)) for q in levels)


@dataclass(frozen=True)
class FittedBaseline:
    """A `BaselineSpec` with its fallback values fitted on training rows.

    Attributes:
        spec: the spec.
        levels: quantile levels of the outputs, or None for a probability (the fallback is then a rate).
        global_values: per output, the value over all training rows.
        groups: per group value (as string), per output, the value over that group's training rows.
    """

    spec: BaselineSpec
    levels: tuple[float, ...] | None
    global_values: tuple[float, ...]
    groups: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        spec: BaselineSpec,
        train: pl.DataFrame,
        target: str,
        levels: Sequence[float] | None = None,
        min_group_size: int = 30,
    ) -> FittedBaseline:
        """Fit the fallback values on `train` (rows with a null target are ignored).

        Args:
            spec: the baseline.
            train: training rows.
            target: target column (0/1 for probabilities).
            levels: quantile levels of the outputs, or None for a probability.
            min_group_size: groups with fewer training rows use the global values.
        """
        lv = None if levels is None else tuple(float(q) for q in levels)
        k = len(lv) if lv is not None else max(len(spec.columns), 1)
        rows = train.filter(pl.col(target).is_not_null())
        if rows.height == 0:
            raise ValueError(f"baseline {spec.name!r}: no training rows with a {target!r}")
        y = rows.get_column(target).cast(pl.Float64).to_numpy()
        groups: dict[str, tuple[float, ...]] = {}
        if spec.group_col is not None and spec.group_col in rows.columns:
            labels = rows.get_column(spec.group_col).cast(pl.String).fill_null("").to_numpy()
            for g in np.unique(labels):
                mask = labels == g
                if g and mask.sum() >= min_group_size:
                    groups[str(g)] = _fitted_stats(y[mask], lv, k)
        return cls(spec, lv, _fitted_stats(y, lv, k), groups)

    @property
    def n_outputs(self) -> int:
        """Number of output values per row."""
        return len(self.global_values)

    def values(self, frame: pl.DataFrame) -> np.ndarray:
        """The baseline of each row of `frame`, (n, outputs), on the target's scale."""
        fallback = np.tile(np.asarray(self.global_values, dtype=np.float64), (frame.height, 1))
        col = self.spec.group_col
        if self.groups and col is not None and col in frame.columns:
            labels = frame.get_column(col).cast(pl.String)
            for g, values in self.groups.items():
                fallback[(labels == g).fill_null(False).to_numpy()] = values
        out = fallback
        for j, group in enumerate(self.spec.columns[: self.n_outputs]):
            present = [c for c in group if c in frame.columns]
            if not present:
                continue
            value = frame.select(pl.coalesce([pl.col(c).cast(pl.Float64) for c in present]))
            v = value.to_series().fill_nan(None).to_numpy().astype(np.float64, copy=False)
            if self.spec.transform == "one_minus":
                v = 1.0 - v
            out[:, j] = np.where(np.isnan(v), out[:, j], v)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "spec": self.spec.to_dict(),
            "levels": None if self.levels is None else list(self.levels),
            "global_values": list(self.global_values),
            "groups": {g: list(v) for g, v in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedBaseline:
        """Inverse of `to_dict`."""
        levels = data["levels"]
        return cls(
            spec=BaselineSpec.from_dict(data["spec"]),
            levels=None if levels is None else tuple(levels),
            global_values=tuple(data["global_values"]),
            groups={g: tuple(v) for g, v in data["groups"].items()},
        )
