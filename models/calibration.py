"""Stage: models (calibration). Probability calibrators and conformal quantile offsets, stored as JSON.

Reads and writes nothing: arrays in, fitted calibrators (plain numbers, JSON-ready via ``to_dict``) out.
Everything here is fitted on a calibration fold that comes strictly later in time than the rows the model
was trained on (see `models.backtest.split_by_time`).

- `IsotonicCalibrator`: sklearn ``IsotonicRegression`` (clipped to [0, 1]); only its thresholds are kept
  and applied with ``np.interp``, which is exactly sklearn's linear interpolation with
  ``out_of_bounds="clip"``, so a loaded calibrator gives the same numbers.
- `PlattCalibrator`: ``sigmoid(slope * logit(p) + intercept)`` fitted by maximum likelihood (scipy).
- `ConformalOffsets`: split-conformal (CQR, one-sided per quantile) additive offsets, globally or per group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

__all__ = [
    "CalibrationMethod",
    "Calibrator",
    "ConformalOffsets",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "calibrator_from_dict",
    "conformal_offset",
    "fit_calibrator",
]

CalibrationMethod = Literal["isotonic", "platt"]
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

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=np.float64), PROB_EPS, 1.0 - PROB_EPS)
        return np.log(p) - np.log1p(-p)

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        """Maximum-likelihood fit on raw probabilities `p` and 0/1 labels `y`."""
        p, y = _check_binary(p, y)
        z = cls._logit(p)

        def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
            s = theta[0] * z + theta[1]
            loss = np.logaddexp(0.0, s) - y * s  # -log-likelihood per row, numerically stable
            r = 1.0 / (1.0 + np.exp(-s)) - y
            return float(loss.mean()), np.array([(r * z).mean(), r.mean()])

        res = minimize(nll, x0=np.array([1.0, 0.0]), jac=True, method="BFGS")
        return cls(slope=float(res.x[0]), intercept=float(res.x[1]))

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        s = self.slope * self._logit(p) + self.intercept
        return np.clip(1.0 / (1.0 + np.exp(-s)), PROB_EPS, 1.0 - PROB_EPS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "slope": self.slope, "intercept": self.intercept}


Calibrator = IsotonicCalibrator | PlattCalibrator


def fit_calibrator(method: CalibrationMethod, p: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit the calibrator named by `method` on raw probabilities and 0/1 labels."""
    if method == "isotonic":
        return IsotonicCalibrator.fit(p, y)
    if method == "platt":
        return PlattCalibrator.fit(p, y)
    raise ValueError(f"unknown calibration method {method!r}")


def calibrator_from_dict(data: Mapping[str, Any]) -> Calibrator:
    """Inverse of ``Calibrator.to_dict``."""
    if data["method"] == "isotonic":
        return IsotonicCalibrator(x=tuple(data["x"]), y=tuple(data["y"]))
    if data["method"] == "platt":
        return PlattCalibrator(slope=float(data["slope"]), intercept=float(data["intercept"]))
    raise ValueError(f"unknown calibration method {data['method']!r}")


# ---------------------------------------------------------------------------------------------------------
# Conformal quantile offsets
# ---------------------------------------------------------------------------------------------------------
def conformal_offset(scores: np.ndarray, q: float) -> float:
    """Split-conformal offset for a one-sided quantile ``q``.

    With conformity scores ``e_i = y_i - qhat_i`` on ``n`` calibration rows, the offset is the
    ``ceil((n + 1) q)``-th smallest score (the largest when that exceeds ``n``), so that a new exchangeable
    row has ``P(y <= qhat + offset) >= q``, and at most ``q + 1 / (n + 1)``.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no calibration scores")
    k = min(math.ceil((scores.size + 1) * q), scores.size)
    return float(scores[k - 1])


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
    """

    quantiles: tuple[float, ...]
    global_offsets: tuple[float, ...]
    group_col: str | None = None
    groups: dict[str, tuple[float, ...]] = field(default_factory=dict)
    n_rows: int = 0

    @classmethod
    def fit(
        cls,
        y: np.ndarray,
        preds: np.ndarray,
        quantiles: Sequence[float],
        groups: tuple[str, pl.Series] | None = None,
        min_group_size: int = 50,
    ) -> ConformalOffsets:
        """Fit offsets from targets `y` (n,) and quantile predictions `preds` (n, k), same scale.

        Args:
            y: calibration targets.
            preds: predictions, one column per quantile in `quantiles` order.
            quantiles: quantile levels.
            groups: optional ``(group_col, values)`` with one group value per row (compared as strings).
            min_group_size: groups with fewer calibration rows fall back to the global offsets.
        """
        y = np.asarray(y, dtype=np.float64)
        scores = y[:, None] - np.asarray(preds, dtype=np.float64)
        glob = tuple(conformal_offset(scores[:, j], q) for j, q in enumerate(quantiles))
        if groups is None:
            return cls(tuple(quantiles), glob, n_rows=y.size)
        group_col, values = groups
        labels = values.cast(pl.String)
        per_group: dict[str, tuple[float, ...]] = {}
        for g in sorted(labels.drop_nulls().unique().to_list()):
            mask = (labels == g).fill_null(False).to_numpy()
            if mask.sum() >= min_group_size:
                per_group[g] = tuple(conformal_offset(scores[mask, j], q) for j, q in enumerate(quantiles))
        return cls(tuple(quantiles), glob, group_col, per_group, y.size)

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
        )
