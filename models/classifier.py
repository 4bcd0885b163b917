"""Stage: models. Calibrated binary probabilities: delay (``p_late``), customs inspection (``p_inspection``).

Reads feature frames; writes nothing itself (`CalibratedClassifier.save` writes the model directory with the
calibration map inside ``metadata.json``, see `models.lgbm`; no pickle).

Method: a LightGBM binary booster gives a raw score; `CalibratedClassifier.calibrate` fits an isotonic
(default), Platt or beta map from raw probability to observed frequency on a calibration fold that comes
LATER in time than the training rows; ``"auto"`` picks the one with the lowest log loss on the later part of
that fold (`models.calibration.choose_calibrator`). Isotonic maps are step-like, so a few distinct raw scores
can share one calibrated value (ranking metrics such as AUC may move slightly); Platt and beta keep the
ranking.

With a `models.baselines.BaselineSpec` (e.g. the lane's trailing late rate) the booster boosts from the
baseline's log-odds (``init_score``, see `models.lgbm`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit

from models.baselines import BaselineSpec
from models.calibration import (
    FIXED_METHODS,
    CalibrationMethod,
    Calibrator,
    calibrator_from_dict,
    choose_calibrator,
    fit_calibrator,
)
from models.encoding import FeatureSet
from models.lgbm import LGBMConfig, LGBMModel, target_array

__all__ = ["CalibratedClassifier"]

logger = logging.getLogger(__name__)

BASELINE_EPS = 1e-3  # baseline rates are clipped to [eps, 1 - eps] before the log-odds


class CalibratedClassifier(LGBMModel):
    """LightGBM binary classifier with a post-hoc probability calibration.

    Args:
        features: the columns the model reads.
        output_col: probability column name (``p_late``, ``p_inspection``).
        method: ``"isotonic"``, ``"platt"``, ``"beta"`` or ``"auto"`` (chosen on the calibration rows).
        config: training settings.
        baseline: the trailing rate the booster boosts from (None: LightGBM's own start).

    Example:
        >>> clf = CalibratedClassifier(features, output_col="p_late")  # doctest: +SKIP
        >>> clf.fit(train, "is_late").calibrate(calib, "is_late").predict(test)  # doctest: +SKIP
    """

    kind = "calibrated_classifier"

    def __init__(
        self,
        features: FeatureSet,
        *,
        output_col: str = "p_late",
        method: CalibrationMethod = "isotonic",
        config: LGBMConfig | None = None,
        baseline: BaselineSpec | None = None,
    ) -> None:
        if method not in (*FIXED_METHODS, "auto"):
            raise ValueError(f"unknown calibration method {method!r}")
        super().__init__(features, config=config, output_col=output_col, baseline=baseline)
        self.method: CalibrationMethod = method
        self.calibrator: Calibrator | None = None
        self.calibration_scores: dict[str, float] = {}

    def _booster_specs(self) -> dict[str, dict[str, Any]]:
        return {"model": {"objective": "binary"}}

    def _transform_target(self, y: np.ndarray) -> np.ndarray:
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("classifier target must be boolean or 0/1")
        return y

    def _link(self, values: np.ndarray) -> np.ndarray:
        p = np.clip(values, BASELINE_EPS, 1.0 - BASELINE_EPS)
        return np.log(p) - np.log1p(-p)

    def _inverse_link(self, raw: np.ndarray) -> np.ndarray:
        return expit(raw)

    def _outputs(self, raw: dict[str, np.ndarray], frame: pl.DataFrame) -> dict[str, np.ndarray]:  # noqa: ARG002
        p = raw["model"]
        return {self.output_col: p if self.calibrator is None else self.calibrator.transform(p)}

    def predict_uncalibrated(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The booster's raw probability, in a frame with the same column name as `predict`."""
        p = self.predict_raw(frame)["model"]
        return pl.DataFrame({self.output_col: pl.Series(self.output_col, p, dtype=pl.Float64)})

    def calibrate(self, calib: pl.DataFrame, target: str) -> CalibratedClassifier:
        """Fit the calibration map on rows later in time than the training rows.

        Args:
            calib: calibration rows with a non-null 0/1 target, never used for training or early stopping,
                in time order (``"auto"`` compares the methods on the later part).
            target: target column.

        Returns:
            self, calibrated.
        """
        p = self.predict_raw(calib)["model"]
        y = self._transform_target(target_array(calib, target))
        if self.method == "auto":
            self.calibrator, self.calibration_scores = choose_calibrator(p, y)
        else:
            self.calibrator = fit_calibrator(self.method, p, y)
        logger.info("%s calibration fitted on %d rows", self.calibrator.method, calib.height)
        return self

    def _init_kwargs(self) -> dict[str, Any]:
        return {"output_col": self.output_col, "method": self.method}

    def _state(self) -> dict[str, Any]:
        return {
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "calibration_scores": self.calibration_scores,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        data = state.get("calibrator")
        self.calibrator = None if data is None else calibrator_from_dict(data)
        self.calibration_scores = dict(state.get("calibration_scores", {}))
