"""Stage: models. Boosting from a baseline: the margin hooks of `models.lgbm.LGBMModel`, degenerate boosters.

Reads and writes nothing. A model with a `models.baselines.BaselineSpec` fits the baseline's fallback values
on its training rows; `margins` are the baseline of each row on the boosters' raw scale (``_link``: log1p
days for quantiles on a log target, log-odds for probabilities), passed to LightGBM as ``init_score`` at
training and added back at prediction, so the trees learn corrections to the baseline.
`degenerate_reason` tells when a fitted booster adds nothing to it.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from models.baselines import BaselineSpec, FittedBaseline

__all__ = ["CONSTANT_SAMPLE", "DEGENERATE_ROUNDS", "BaselineBoosting", "degenerate_reason"]

DEGENERATE_ROUNDS = 2  # a booster that early-stops this soon adds nothing to its baseline
CONSTANT_SAMPLE = 5_000  # training rows scored to detect trees that add a constant


def degenerate_reason(booster: lgb.Booster, best: int, x: np.ndarray, *, early_stopped: bool) -> str | None:
    """Why a booster adds nothing (stopped within `DEGENERATE_ROUNDS` rounds, constant trees), or None."""
    if early_stopped and best <= DEGENERATE_ROUNDS:
        return f"early stopping kept {best} round(s)"
    if x.shape[0] > 1:
        trees = booster.predict(x, raw_score=True)
        if float(np.ptp(trees)) <= 1e-12 * max(1.0, float(np.abs(trees).max())):
            return "its trees add the same value to every row"
    return None


class BaselineBoosting:
    """The baseline side of `models.lgbm.LGBMModel` (its base class); subclasses override the hooks."""

    baseline: BaselineSpec | None
    baseline_fit: FittedBaseline | None

    def _booster_specs(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError  # LGBMModel's

    def _transform_target(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # LGBMModel's

    def _baseline_levels(self) -> tuple[float, ...] | None:
        """Quantile levels of the outputs (the baseline's fitted fallback), None for a mean or a rate."""
        return None

    def _link(self, values: np.ndarray) -> np.ndarray:
        """Baseline values (target scale, one column per booster) -> the boosters' raw score scale."""
        return self._transform_target(values)

    def _inverse_link(self, raw: np.ndarray) -> np.ndarray:
        """Raw score plus margin -> the working scale `predict_raw` returns (e.g. a probability)."""
        return raw

    def margins(self, frame: pl.DataFrame) -> dict[str, np.ndarray] | None:
        """The baseline of each row on the boosters' raw scale, by booster name (None without a baseline)."""
        if self.baseline_fit is None:
            return None
        values = self._link(self.baseline_fit.values(frame))
        return {name: np.ascontiguousarray(values[:, j]) for j, name in enumerate(self._booster_specs())}

    def _fit_baseline_part(self, train: pl.DataFrame, target: str) -> None:
        self.baseline_fit = (
            None
            if self.baseline is None
            else FittedBaseline.fit(self.baseline, train, target, self._baseline_levels())
        )
