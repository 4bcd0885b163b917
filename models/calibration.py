"""Stage: models (calibration). Probability calibrators and conformal quantile offsets, stored as JSON.

Reads and writes nothing: arrays in, fitted calibrators (plain numbers, JSON-ready via ``to_dict``) out.
Everything here is fitted on a calibration fold that comes strictly later in time than the rows the model
was trained on (see `models.backtest.split_by_time`).

- `IsotonicCalibrator`: sklearn ``IsotonicRegression`` (clipped to [0, 1]); only its thresholds are kept
  and applied with ``np.interp``, which is exactly sklearn's linear interpolation with
  ``out_of_bounds="clip"``, so a loaded calibrator gives the same numbers.
- `PlattCalibrator`: ``sigmoid(slope * logit(p) + intercept)`` fitted by maximum likelihood (scipy).
- `BetaCalibrator`: ``sigmoid(a * log(p) - b * log(1 - p) + c)`` (Kull et al., 2017), which also bends the
  two tails separately; maximum likelihood like Platt.
- `choose_calibrator`: the method with the lowest log loss on the later part of the calibration rows (fitted
  on the earlier part), refitted on all of them: isotonic needs many rows, the parametric maps few.
- `ConformalOffsets`: split-conformal (CQR, one-sided per quantile) additive offsets, globally or per group.
  Right-censored rows (a parcel still open when the model is fitted) count: one that has already passed
  its predicted quantile is a known miss, one that has not is left out for that quantile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

__all__ = [
    "CalibrationMethod",
    "BetaCalibrator",
    "Calibrator",
    "ConformalOffsets",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "calibrator_from_dict",
    "choose_calibrator",
    "censored_scores",
    "conformal_offset",
    "fit_calibrator",
]

CalibrationMethod = Literal["isotonic", "platt", "beta", "auto"]
FIXED_METHODS: tuple[CalibrationMethod, ...] = ("isotonic", "platt", "beta")
PROB_EPS = 1e-6  # calibrated probabilities stay in [PROB_EPS, 1 - PROB_EPS]: no infinite log loss


def _check_binary(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError("probabilities and labels must be non-empty 1-d arrays of equal length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1")
    return p, y


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Monotone piecewise-linear map from raw to calibrated probability.

    Attributes:
        x: increasing raw-probability thresholds.
        y: calibrated probability at each threshold (non-decreasing).
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    method: Literal["isotonic"] = "isotonic"

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        """Fit on raw probabilities `p` and 0/1 labels `y` of the calibration fold."""
        p, y = _check_binary(p, y)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(p, y)
        return cls(x=tuple(map(float, iso.X_thresholds_)), y=tuple(map(float, iso.y_thresholds_)))

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        out = np.interp(np.asarray(p, dtype=np.float64), np.asarray(self.x), np.asarray(self.y))
        return np.clip(out, PROB_EPS, 1.0 - PROB_EPS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "x": list(self.x), "y": list(self.y)}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), PROB_EPS, 1.0 - PROB_EPS)
    return np.log(p) - np.log1p(-p)


def _fit_logistic(features: np.ndarray, y: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Maximum-likelihood weights of ``sigmoid(features @ w)`` (the last feature column is the intercept)."""

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s = features @ theta
        loss = np.logaddexp(0.0, s) - y * s  # -log-likelihood per row, numerically stable
        r = expit(s) - y
        return float(loss.mean()), features.T @ r / y.size

    return np.asarray(minimize(nll, x0=start, jac=True, method="BFGS").x, dtype=np.float64)


def _sigmoid(s: np.ndarray) -> np.ndarray:
    return np.clip(expit(s), PROB_EPS, 1.0 - PROB_EPS)


@dataclass(frozen=True)
class PlattCalibrator:
    """Logistic map ``sigmoid(slope * logit(p) + intercept)``.

    Attributes:
        slope: multiplies the raw log-odds (< 1 shrinks an over-confident model).
        intercept: shifts the log-odds (corrects the base rate).
    """

    slope: float
    intercept: float
    method: Literal["platt"] = "platt"

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        """Maximum-likelihood fit on raw probabilities `p` and 0/1 labels `y`."""
        p, y = _check_binary(p, y)
        features = np.column_stack([_logit(p), np.ones_like(p)])
        slope, intercept = _fit_logistic(features, y, np.array([1.0, 0.0]))
        return cls(slope=float(slope), intercept=float(intercept))

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        return _sigmoid(self.slope * _logit(p) + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "slope": self.slope, "intercept": self.intercept}


@dataclass(frozen=True)
class BetaCalibrator:
    """Beta calibration ``sigmoid(a * log(p) - b * log(1 - p) + c)``; ``a = b = 1, c = 0`` is the identity."""

    a: float
    b: float
    c: float
    method: Literal["beta"] = "beta"

    @staticmethod
    def _features(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=np.float64), PROB_EPS, 1.0 - PROB_EPS)
        return np.column_stack([np.log(p), -np.log1p(-p), np.ones_like(p)])

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> BetaCalibrator:
        """Maximum-likelihood fit on raw probabilities `p` and 0/1 labels `y`."""
        p, y = _check_binary(p, y)
        a, b, c = _fit_logistic(cls._features(p), y, np.array([1.0, 1.0, 0.0]))
        return cls(a=float(a), b=float(b), c=float(c))

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        return _sigmoid(self._features(p) @ np.array([self.a, self.b, self.c]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "a": self.a, "b": self.b, "c": self.c}


Calibrator = IsotonicCalibrator | PlattCalibrator | BetaCalibrator
_CLASSES: dict[str, type[IsotonicCalibrator] | type[PlattCalibrator] | type[BetaCalibrator]] = {
    "isotonic": IsotonicCalibrator,
    "platt": PlattCalibrator,
    "beta": BetaCalibrator,
}


def fit_calibrator(method: CalibrationMethod, p: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit the calibrator named by `method` on raw probabilities and 0/1 labels (time-ordered for "auto")."""
    if method == "auto":
        return choose_calibrator(p, y)[0]
    if method not in _CLASSES:
        raise ValueError(f"unknown calibration method {method!r}")
    return _CLASSES[method].fit(p, y)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, PROB_EPS, 1.0 - PROB_EPS)
    return float(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)).mean())


def choose_calibrator(
    p: np.ndarray, y: np.ndarray, methods: Sequence[CalibrationMethod] = FIXED_METHODS, holdout: float = 1 / 3
) -> tuple[Calibrator, dict[str, float]]:
    """The method whose map, fitted on the earlier rows, has the lowest log loss on the later `holdout` share.

    Rows must be in time order. The winner is refitted on every row. With too few rows or a single class in
    either part, Platt (two parameters) is used.

    Returns:
        The fitted calibrator and the held-out log loss per method (empty when no comparison was possible).
    """
    p, y = _check_binary(p, y)
    split = int(p.size * (1.0 - holdout))
    early, late = slice(0, split), slice(split, None)
    if min(split, p.size - split) < 50 or len(np.unique(y[early])) < 2 or len(np.unique(y[late])) < 2:
        return PlattCalibrator.fit(p, y), {}
    scores: dict[str, float] = {
        m: _log_loss(_CLASSES[m].fit(p[early], y[early]).transform(p[late]), y[late]) for m in methods
    }
    best = min(scores, key=lambda m: scores[m])
    return _CLASSES[best].fit(p, y), scores


def calibrator_from_dict(data: Mapping[str, Any]) -> Calibrator:
    """Inverse of ``Calibrator.to_dict``."""
    if data["method"] == "isotonic":
        return IsotonicCalibrator(x=tuple(data["x"]), y=tuple(data["y"]))
    if data["method"] == "platt":
        return PlattCalibrator(slope=float(data["slope"]), intercept=float(data["intercept"]))
    if data["method"] == "beta":
        return BetaCalibrator(a=float(data["a"]), b=float(data["b"]), c=float(data["c"]))
    raise ValueError(f"unknown calibration method {data['method']!r}")


# ---------------------------------------------------------------------------------------------------------
# Conformal quantile offsets
# ---------------------------------------------------------------------------------------------------------
def conformal_offset(scores: np.ndarray, q: float, lower: np.ndarray | None = None) -> float:
    """Split-conformal offset for a one-sided quantile ``q``.

    With conformity scores ``e_i = y_i - qhat_i`` on ``n`` calibration rows, the offset is the
    ``ceil((n + 1) q)``-th smallest score (the largest when that exceeds ``n``), so that a new exchangeable
    row has ``P(y <= qhat + offset) >= q``, and at most ``q + 1 / (n + 1)``.

    Args:
        scores: one score per row; NaN rows are left out (undecided censored rows), ``+inf`` is a known miss.
        q: quantile level.
        lower: the known lower bounds of the ``+inf`` scores (censored misses), used only when the offset
            would otherwise be infinite (most rows missed): then the largest of the bounds counts instead.
    """
    scores = np.asarray(scores, dtype=np.float64)
    scores = np.sort(scores[~np.isnan(scores)])
    if scores.size == 0:
        raise ValueError("no calibration scores")
    k = min(math.ceil((scores.size + 1) * q), scores.size)
    offset = float(scores[k - 1])
    if math.isinf(offset) and lower is not None and np.isfinite(lower).any():
        bounded = np.where(np.isinf(scores), np.nanmax(np.where(np.isfinite(lower), lower, np.nan)), scores)
        offset = float(np.sort(bounded)[k - 1])
    return offset


def censored_scores(
    y: np.ndarray, preds: np.ndarray, lower: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Conformity scores ``y - qhat`` (n, k) with right-censored rows (`y` NaN, `lower` known).

    A censored row whose lower bound already exceeds the quantile is a known miss (``+inf``); otherwise its
    outcome is undecided (NaN, left out for that quantile). Returns the scores and the lower-bound scores
    ``lower - qhat`` (NaN for observed rows).
    """
    y = np.asarray(y, dtype=np.float64)
    preds = np.asarray(preds, dtype=np.float64)
    scores = y[:, None] - preds
    if lower is None:
        return scores, np.full_like(scores, np.nan)
    bound = np.asarray(lower, dtype=np.float64)[:, None] - preds
    censored = np.isnan(y)[:, None] & ~np.isnan(bound)
    scores = np.where(censored, np.where(bound > 0, np.inf, np.nan), scores)
    return scores, np.where(censored, bound, np.nan)


@dataclass(frozen=True)
class ConformalOffsets:
    """Additive offsets per quantile, globally and optionally per group (e.g. per mode).

    Attributes:
        quantiles: quantile levels, in order.
        global_offsets: offset per quantile over the whole calibration fold.
        group_col: column holding the group at predict time, or None.
        groups: offsets per group value (as string) for groups with at least ``min_group_size`` rows;
            other and unknown groups use ``global_offsets``.
        n_rows: calibration rows used.
        n_censored: of which right-censored (open when calibrated).
    """

    quantiles: tuple[float, ...]
    global_offsets: tuple[float, ...]
    group_col: str | None = None
    groups: dict[str, tuple[float, ...]] = field(default_factory=dict)
    n_rows: int = 0
    n_censored: int = 0

    @classmethod
    def fit(
        cls,
        y: np.ndarray,
        preds: np.ndarray,
        quantiles: Sequence[float],
        groups: tuple[str, pl.Series] | None = None,
        min_group_size: int = 50,
        lower: np.ndarray | None = None,
    ) -> ConformalOffsets:
        """Fit offsets from targets `y` (n,) and quantile predictions `preds` (n, k), same scale.

        Args:
            y: calibration targets (NaN for right-censored rows).
            preds: predictions, one column per quantile in `quantiles` order.
            quantiles: quantile levels.
            groups: optional ``(group_col, values)`` with one group value per row (compared as strings).
            min_group_size: groups with fewer calibration rows fall back to the global offsets.
            lower: known lower bound of the target of each censored row (NaN where observed).
        """
        scores, bounds = censored_scores(y, preds, lower)
        n_censored = int((~np.isnan(bounds[:, 0])).sum()) if bounds.size else 0

        def fit_offsets(mask: np.ndarray | slice) -> tuple[float, ...]:
            return tuple(
                conformal_offset(scores[mask, j], q, bounds[mask, j]) for j, q in enumerate(quantiles)
            )

        glob = fit_offsets(slice(None))
        n = int(np.asarray(y).size)
        if groups is None:
            return cls(tuple(quantiles), glob, n_rows=n, n_censored=n_censored)
        group_col, values = groups
        labels = values.cast(pl.String)
        per_group: dict[str, tuple[float, ...]] = {}
        for g in sorted(labels.drop_nulls().unique().to_list()):
            mask = (labels == g).fill_null(False).to_numpy()
            if mask.sum() >= min_group_size:
                per_group[g] = fit_offsets(mask)
        return cls(tuple(quantiles), glob, group_col, per_group, n, n_censored)

    def offsets(self, group_values: pl.Series | None, n_rows: int) -> np.ndarray:
        """The (n_rows, k) offsets to add to predictions whose rows have these group values."""
        out = np.tile(np.asarray(self.global_offsets, dtype=np.float64), (n_rows, 1))
        if self.group_col is None or group_values is None or not self.groups:
            return out
        labels = group_values.cast(pl.String)
        for g, values in self.groups.items():
            out[(labels == g).fill_null(False).to_numpy()] = values
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "quantiles": list(self.quantiles),
            "global_offsets": list(self.global_offsets),
            "group_col": self.group_col,
            "groups": {g: list(v) for g, v in self.groups.items()},
            "n_rows": self.n_rows,
            "n_censored": self.n_censored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConformalOffsets:
        """Inverse of `to_dict`."""
        return cls(
            quantiles=tuple(data["quantiles"]),
            global_offsets=tuple(data["global_offsets"]),
            group_col=data["group_col"],
            groups={g: tuple(v) for g, v in data["groups"].items()},
            n_rows=int(data["n_rows"]),
            n_censored=int(data.get("n_censored", 0)),
        )
