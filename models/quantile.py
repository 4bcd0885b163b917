"""Stage: models. Quantile regression for ETA, remaining in-transit time and customs clearance time.

Reads feature frames; writes nothing itself (`QuantileRegressor.save` writes the model directory, see
`models.lgbm`). Output columns are ``{prefix}_q50``, ``{prefix}_q80``, ``{prefix}_q95`` (see
`models.metrics.quantile_col`), e.g. ``eta_days_q80``.

Method: one LightGBM booster per quantile (objective ``quantile``, ``alpha = q``). Three guarantees on top:

1. quantiles never cross: predictions are made monotone across quantile levels by a cumulative maximum
   (`enforce_monotone`), before and after calibration;
2. split-conformal calibration (CQR, one-sided per quantile): `QuantileRegressor.calibrate` on a LATER
   time-ordered fold shifts each quantile by the conformal offset of the scores ``y - qhat`` so that
   coverage on new exchangeable rows is at least nominal (and at most nominal + 1/(n+1)); offsets can be
   per group (e.g. per mode) with a global fallback for small or unseen groups;
3. optional ``log_target``: the boosters learn ``log1p(y)`` and predictions are mapped back with ``expm1``.
   Quantiles commute with monotone maps, so this is still a quantile model; conformal offsets are then
   applied on the log scale, i.e. they are multiplicative, which suits right-skewed transit times whose
   spread grows with their level.

With a `models.baselines.BaselineSpec` (e.g. the lane's trailing quantiles) each booster boosts from the
baseline's quantile (``init_score``, on the log scale with ``log_target``), see `models.lgbm`. Calibration
is censoring-aware: a calibration row still open at the cutoff, already older than its quantile, is a known
miss, and a recent row counts for the offsets its age decides (`models.calibration.decidable_offset`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from models.baselines import BaselineSpec
from models.calibration import ConformalOffsets
from models.encoding import FeatureSet, feature_names
from models.lgbm import LGBMConfig, LGBMModel
from models.metrics import quantile_col

__all__ = ["DEFAULT_QUANTILES", "QuantileRegressor", "enforce_monotone"]

logger = logging.getLogger(__name__)

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.95)
# Up to this many rows the conformal offsets of each row's group are looked up in a dict.
_SMALL_OFFSET_ROWS = 256


def enforce_monotone(preds: np.ndarray) -> np.ndarray:
    """Make each row non-decreasing across columns (quantiles in increasing order) by a cumulative max."""
    return np.maximum.accumulate(np.asarray(preds, dtype=np.float64), axis=1)


class QuantileRegressor(LGBMModel):
    """One LightGBM quantile booster per level, monotone and optionally conformally calibrated.

    Args:
        features: the columns the model reads.
        quantiles: increasing levels in (0, 1).
        prefix: output column prefix (``eta_days`` -> ``eta_days_q50`` ...).
        log_target: learn ``log1p(target)`` (target must be > -1).
        config: training settings.

    Example:
        >>> model = QuantileRegressor(features, prefix="eta_days", log_target=True)  # doctest: +SKIP
        >>> model.fit(train, "transit_days").calibrate(calib, "transit_days").predict(test)  # doctest: +SKIP
    """

    kind = "quantile_regressor"

    def __init__(
        self,
        features: FeatureSet,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        *,
        prefix: str = "eta_days",
        log_target: bool = False,
        floor_features: Sequence[str] = (),
        config: LGBMConfig | None = None,
        baseline: BaselineSpec | None = None,
    ) -> None:
        qs = tuple(float(q) for q in quantiles)
        if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(set(qs)):
            raise ValueError(f"quantiles must be distinct, increasing and in (0, 1), got {qs}")
        super().__init__(features, config=config, output_col=prefix, baseline=baseline)
        self.quantiles = qs
        self.prefix = prefix
        self.log_target = log_target
        self.floor_features = tuple(floor_features)
        self.conformal: ConformalOffsets | None = None

    @property
    def output_columns(self) -> tuple[str, ...]:
        """``{prefix}_qNN`` per quantile, increasing."""
        return tuple(quantile_col(self.prefix, q) for q in self.quantiles)

    @property
    def _names(self) -> list[str]:
        return [col.removeprefix(f"{self.prefix}_") for col in self.output_columns]

    def _booster_specs(self) -> dict[str, dict[str, Any]]:
        pairs = zip(self._names, self.quantiles, strict=True)
        return {name: {"objective": "quantile", "alpha": q} for name, q in pairs}

    def _transform_target(self, y: np.ndarray) -> np.ndarray:
        if not self.log_target:
            return y
        if (y <= -1.0).any():
            raise ValueError("log_target needs target > -1")
        return np.log1p(y)

    def _inverse(self, z: np.ndarray) -> np.ndarray:
        return np.expm1(z) if self.log_target else z

    def _baseline_levels(self) -> tuple[float, ...]:
        return self.quantiles

    def _link(self, values: np.ndarray) -> np.ndarray:
        return self._transform_target(np.maximum(values, 0.0) if self.log_target else values)

    def predict_working(
        self,
        frame: pl.DataFrame,
        *,
        calibrated: bool = True,
        matrix: np.ndarray | None = None,
        num_threads: int | None = None,
    ) -> np.ndarray:
        """Monotone quantile predictions (n, k) on the working scale (log1p scale when ``log_target``).

        Args:
            frame: rows to score (needs ``group_col`` too when offsets are per group).
            calibrated: add the conformal offsets when the model has been calibrated.
            matrix: `self.matrix(frame)` when the caller already has it.
            num_threads: LightGBM threads for this call (default: `config.num_threads`).
        """
        x = self.matrix(frame) if matrix is None else matrix
        raw = self._predict_floored(frame, x, num_threads)
        z = enforce_monotone(np.column_stack([raw[name] for name in self._names]))
        if calibrated and self.conformal is not None:
            col = self.conformal.group_col
            groups = frame.get_column(col) if col is not None and col in frame.columns else None
            if col is not None and groups is None:
                logger.warning("group column %r absent: using global conformal offsets", col)
            z = enforce_monotone(z + self._offsets(groups, frame.height))
        return z

    def _offsets(self, groups: pl.Series | None, n_rows: int) -> np.ndarray:
        """`ConformalOffsets.offsets`; a few rows are looked up in its dict (the same values, no queries)."""
        conformal = self.conformal
        assert conformal is not None  # noqa: S101 - callers check
        if groups is None or not conformal.groups or n_rows > _SMALL_OFFSET_ROWS:
            return conformal.offsets(groups, n_rows)
        out = np.tile(np.asarray(conformal.global_offsets, dtype=np.float64), (n_rows, 1))
        for i, label in enumerate(groups.cast(pl.String).to_list()):
            values = conformal.groups.get(label) if label is not None else None
            if values is not None:
                out[i] = values
        return out

    def _predict_floored(
        self, frame: pl.DataFrame, x: np.ndarray, num_threads: int | None
    ) -> dict[str, np.ndarray]:
        """Raw booster outputs of `x` with the floor applied (`_floor`), one booster call per booster."""
        blocks, where = self._floor_blocks(frame, x)
        margins = self.margins(frame)
        if not blocks:
            raw = self.predict_matrix(x, num_threads=num_threads, margins=margins)
        else:
            # rows are scored independently: the rows and their zeroed copies go through one call
            n = x.shape[0]
            stacked = None
            if margins is not None:  # a zeroed copy keeps its row's baseline (no floor feature is an input)
                stacked = {k: np.concatenate([m, *(m[rows] for rows in where)]) for k, m in margins.items()}
            both = self.predict_matrix(np.concatenate([x, *blocks]), num_threads=num_threads, margins=stacked)
            raw = {name: values[:n].copy() for name, values in both.items()}
            start = n
            for rows in where:
                for name, values in raw.items():
                    part = both[name][start : start + rows.size]
                    values[rows] = np.maximum(values[rows], part)
                start += rows.size
        return self._floor_categorical(frame, raw, num_threads)

    def _floor_subsets(self, frame: pl.DataFrame) -> list[tuple[str, ...]]:
        present = [c for c in self.floor_features if c in frame.columns]
        return [s for k in range(1, len(present) + 1) for s in itertools.combinations(present, k)]

    def _floor_blocks(self, frame: pl.DataFrame, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Business rule: these features (e.g. holidays in the transit window) can only add time.

        Quantile leaves are re-fitted after growth, so LightGBM's monotone constraints do not hold; the
        prediction is floored by the ones with any subset of these features set to zero instead. Zeroing
        a numeric feature only sets its matrix column to 0.0, so a row whose subset is already 0.0 predicts
        exactly the unfloored value again and the maximum leaves it unchanged: only the other rows are
        re-scored (the same values as re-scoring every row, with far fewer booster passes). Returns the
        zeroed copies of those rows per subset of numeric floor features, and the rows they come from. A
        floor feature outside the model's features changes nothing; subsets with a categorical one are
        `_floor_categorical`'s.
        """
        numeric = {c: j for j, c in enumerate(feature_names(self.features)) if c in self.features.numeric}
        blocks: list[np.ndarray] = []
        where: list[np.ndarray] = []
        for subset in self._floor_subsets(frame):
            if any(c in self.features.categorical for c in subset):
                continue
            cols = [numeric[c] for c in subset if c in numeric]
            if not cols:
                continue
            block = x[:, cols]
            rows = np.flatnonzero(((block != 0.0) | np.isnan(block)).any(axis=1))
            if rows.size:
                sub = x[rows]
                sub[:, cols] = 0.0
                blocks.append(sub)
                where.append(rows)
        return blocks, where

    def _floor_categorical(
        self, frame: pl.DataFrame, raw: dict[str, np.ndarray], num_threads: int | None
    ) -> dict[str, np.ndarray]:
        """The floor by subsets with a categorical floor feature: zeroed in the frame, all rows re-scored."""
        for subset in self._floor_subsets(frame):
            if any(c in self.features.categorical for c in subset):
                zeroed = frame.with_columns(pl.lit(0).cast(frame.schema[c]).alias(c) for c in subset)
                without = self.predict_raw(zeroed, num_threads=num_threads)
                raw = {name: np.maximum(values, without[name]) for name, values in raw.items()}
        return raw

    def _outputs(self, raw: dict[str, np.ndarray], frame: pl.DataFrame) -> dict[str, np.ndarray]:  # noqa: ARG002
        raise NotImplementedError  # predict is overridden: calibration needs the frame

    def predict(  # type: ignore[override]
        self,
        frame: pl.DataFrame,
        *,
        calibrated: bool = True,
        matrix: np.ndarray | None = None,
        num_threads: int | None = None,
    ) -> pl.DataFrame:
        """Quantile columns ``{prefix}_qNN`` for each row of `frame` (never crossing).

        Args:
            frame: rows to score; extra columns are ignored, unknown categories are treated as missing.
            calibrated: apply the conformal offsets when the model has been calibrated.
            matrix: `self.matrix(frame)` when the caller already has it.
            num_threads: LightGBM threads for this call (default: `config.num_threads`).
        """
        working = self.predict_working(frame, calibrated=calibrated, matrix=matrix, num_threads=num_threads)
        values = self._inverse(working)
        return pl.DataFrame(
            {col: pl.Series(col, values[:, j], dtype=pl.Float64) for j, col in enumerate(self.output_columns)}
        )

    def calibrate(
        self,
        calib: pl.DataFrame,
        target: str,
        *,
        group_col: str | None = None,
        min_group_size: int = 50,
        age_col: str | None = None,
    ) -> QuantileRegressor:
        """Fit split-conformal offsets on a calibration fold later in time than the training rows.

        Args:
            calib: calibration rows, never used for training or early stopping.
            target: target column; null for a row whose target was not known yet (still open).
            group_col: optional column for per-group offsets (e.g. ``mode``); needed again at predict time.
            min_group_size: groups with fewer calibration rows use the global offsets.
            age_col: each row's age at the calibration cutoff (target units): an open row counts once past
                its quantile (a known miss) and a recent row for the offsets its age decides
                (`models.calibration.decidable_offset`). Without it, rows with a null target are dropped.

        Returns:
            self, calibrated.
        """
        if age_col is None:
            calib = calib.filter(pl.col(target).is_not_null())
        if calib.height == 0:
            raise ValueError("empty calibration frame")
        z = self.predict_working(calib, calibrated=False)
        y = self._transform_target(calib.get_column(target).cast(pl.Float64).fill_null(np.nan).to_numpy())
        age = None
        if age_col is not None:
            days = calib.get_column(age_col).cast(pl.Float64).to_numpy()
            age = self._transform_target(np.maximum(days, 0.0))
        groups = None if group_col is None else (group_col, calib.get_column(group_col))
        self.conformal = ConformalOffsets.fit(y, z, self.quantiles, groups, min_group_size, age=age)
        logger.info(
            "conformal offsets %s on %d rows (%d censored)",
            np.round(self.conformal.global_offsets, 4).tolist(),
            self.conformal.n_rows,
            self.conformal.n_censored,
        )
        return self

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "quantiles": list(self.quantiles),
            "prefix": self.prefix,
            "log_target": self.log_target,
            "floor_features": list(self.floor_features),
        }

    def _state(self) -> dict[str, Any]:
        return {"conformal": None if self.conformal is None else self.conformal.to_dict()}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        data = state.get("conformal")
        self.conformal = None if data is None else ConformalOffsets.from_dict(data)
