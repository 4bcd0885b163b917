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
  Right-censoring: given each row's age at the cutoff, a parcel still open counts (a known miss once past
  its quantile) and a recent row counts for the offsets its age already decides (`decidable_offset`).
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
    "conformal_offset",
    "decidable_offset",
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
        """Calibrated probabilities (element by element: one row and a batch give the same bits)."""
        p = np.clip(np.asarray(p, dtype=np.float64), PROB_EPS, 1.0 - PROB_EPS)
        return _sigmoid(self.a * np.log(p) - self.b * np.log1p(-p) + self.c)

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


def decidable_offset(scores: np.ndarray, bounds: np.ndarray, q: float) -> float:
    """Split-conformal offset when some outcomes were not known yet at the cutoff (right-censoring).

    Args:
        scores: ``y - qhat`` where the target was known by the cutoff, ``+inf`` where it was not (a parcel
            still open: its score is only known to exceed its bound).
        bounds: per row, the largest score its age at the cutoff decides: ``age - qhat`` (a delivered row
            has ``score <= bound``).
        q: quantile level.

    A row counts at offset ``d`` only when ``bound >= d``: then whether ``y <= qhat + d`` is known, hit or
    miss, whatever the row's outcome. Selecting rows by age (and prediction), never by outcome, keeps the
    estimate unbiased; young rows count for the small offsets their age decides. The offset is the smallest
    candidate ``d`` with ``#{counted, score <= d} >= ceil((n(d) + 1) q)``; with every row old enough this is
    `conformal_offset`. When no candidate reaches it (too many misses), the largest known score or bound.
    """
    scores = np.asarray(scores, dtype=np.float64)
    bounds = np.asarray(bounds, dtype=np.float64)
    keep = ~np.isnan(scores) & ~np.isnan(bounds)
    scores, bounds = scores[keep], bounds[keep]
    observed = np.isfinite(scores)
    if not observed.any():
        raise ValueError("no calibration row with a known target")
    candidates = np.unique(scores[observed])
    n = bounds.size - np.searchsorted(np.sort(bounds), candidates, side="left")
    hits = np.searchsorted(np.sort(scores), candidates, side="right") - np.searchsorted(
        np.sort(bounds[observed]), candidates, side="left"
    )
    ok = (n > 0) & (hits >= np.ceil((n + 1) * q))
    if ok.any():
        return float(candidates[np.argmax(ok)])
    return float(max(candidates[-1], bounds[~observed].max(initial=-np.inf)))


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
        age: np.ndarray | None = None,
    ) -> ConformalOffsets:
        """Fit offsets from targets `y` (n,) and quantile predictions `preds` (n, k), same scale.

        Args:
            y: calibration targets; NaN for a row whose target was not known yet (still open).
            preds: predictions, one column per quantile in `quantiles` order.
            quantiles: quantile levels.
            groups: optional ``(group_col, values)`` with one group value per row (compared as strings).
            min_group_size: groups with fewer calibration rows fall back to the global offsets.
            age: each row's age at the calibration cutoff, same scale as `y` (an upper bound of what is
                known of its target): with it, rows count for the offsets their age decides
                (`decidable_offset`); without it, rows with a NaN target are dropped.
        """
        y = np.asarray(y, dtype=np.float64)
        preds = np.asarray(preds, dtype=np.float64)
        open_rows = np.isnan(y)
        kept = np.ones(y.size, dtype=bool) if age is not None else ~open_rows
        y, preds, open_rows = y[kept], preds[kept], open_rows[kept]
        scores = np.where(open_rows[:, None], np.inf, y[:, None] - preds)
        bounds = None if age is None else np.asarray(age, dtype=np.float64)[:, None] - preds

        def fit_offsets(mask: np.ndarray | slice) -> tuple[float, ...]:
            return tuple(
                conformal_offset(scores[mask, j], q)
                if bounds is None
                else decidable_offset(scores[mask, j], bounds[mask, j], q)
                for j, q in enumerate(quantiles)
            )

        glob = fit_offsets(slice(None))
        n, n_open = int(y.size), int(open_rows.sum())
        if groups is None:
            return cls(tuple(quantiles), glob, n_rows=n, n_censored=n_open)
        group_col, values = groups
        labels = values.cast(pl.String).filter(pl.Series(kept))
        per_group: dict[str, tuple[float, ...]] = {}
        for g in sorted(labels.drop_nulls().unique().to_list()):
            mask = (labels == g).fill_null(False).to_numpy()
            if mask.sum() >= min_group_size:
                per_group[g] = fit_offsets(mask)
        return cls(tuple(quantiles), glob, group_col, per_group, n, n_open)

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
