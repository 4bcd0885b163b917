"""Stage: models (demand). One global LightGBM demand forecaster with calibrated count quantiles.

Reads feature frames from `features.demand_features`; `DemandModel.save` writes the usual LightGBM text +
``metadata.json`` directory (see `models.lgbm`), with the calibration state inside the metadata.
`forecast_demand` turns validated tables + a fitted model + a cutoff into the forecast contract frame.

Method:
    * Direct multi-horizon: one Tweedie booster (``demand_mean``) over all series and horizons, with the
      horizon as a feature; censored target weeks (stock-outs) are never training targets.
    * Exposure: the booster learns the *rate* ``y / exposure`` where the exposure is the series' recent level
      (`exposure_expr`); the mean is the rate times the exposure. Series of every size then share the same
      multiplicative seasonal and peak effects, and each series weighs the same in the loss, as in the
      scaled metrics.
    * Distribution: negative binomial around the mean, ``Var = mu + phi * mu^2``, with ``phi`` estimated by
      moments per volume class x horizon bucket on a calibration window later than the training rows.
    * Calibration: for each volume class and nominal level ``tau`` the level actually used, ``tau'``, is
      chosen on the calibration window so that the share of ``y <= q(tau')`` reaches ``tau`` (integer
      quantiles of integer demand: ``y <= q`` holds iff ``F(y - 1) < tau'``). Quantiles are monotone in
      ``tau'`` and ``tau'`` is monotone in ``tau``, so P50 <= P80 <= P90 <= P95 always.
    * Empirical alternative: quantiles of the scaled residual ``y / mu`` per volume class x horizon bucket x
      tercile of ``mu`` (fallback: class x bucket, class, all) on the calibration window, as ``floor(mu *
      r_tau)`` (whole numbers, non-crossing; ``y <= floor(mu r)`` iff ``y / mu <= r``, so the calibration
      coverage is ``tau``). Per volume class the distribution (``nb`` or ``empirical``) with the lower
      pinball loss (relative to the series level) in a two-fold split of the calibration origins is used.
    * Cross-horizon dependence for sample paths: ``path_rho``, the lag-1 correlation of the normal scores of
      the randomised PIT across consecutive horizons of the same series and origin.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import polars as pl
from scipy import stats

from features.demand_features import DemandFeatureConfig, build_demand_features, demand_feature_set
from features.demand_panel import build_weekly_panel, extend_panel, iso_week_label
from features.feature_set import FeatureSet
from models.lgbm import LGBMConfig, LGBMModel
from models.quantile import enforce_monotone

__all__ = [
    "DEMAND_QUANTILES",
    "DemandModel",
    "FORECAST_SCHEMA",
    "exposure_expr",
    "forecast_demand",
    "horizon_bucket",
    "new_demand_model",
]

logger = logging.getLogger(__name__)

DEMAND_QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
_Q_NAMES = [f"demand_q{int(round(q * 100))}" for q in DEMAND_QUANTILES]
_MIN_GROUP = 50
_RATE = "_demand_rate"
_MU_FLOOR = 0.05
FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "forecast_week": pl.String(),
    "cutoff_date": pl.Date(),
    "warehouse_id": pl.String(),
    "sku_id": pl.String(),
    "horizon": pl.Int32(),
    "week_start": pl.Date(),
    "demand_mean": pl.Float64(),
    **{name: pl.Float64() for name in _Q_NAMES},
    "volume_class": pl.String(),
    "model_version": pl.String(),
    "data_version": pl.String(),
}


def exposure_expr() -> pl.Expr:
    """A series' recent weekly level known at the origin: the 26-week mean demand estimate, else the
    category x warehouse 13-week mean (cold start), plus 0.1 so that it is never zero."""
    return (
        pl.coalesce(pl.col("roll_mean_26"), pl.col("cat_wh_mean_13"), pl.lit(0.0)).cast(pl.Float64) + 0.1
    ).alias("exposure")


def horizon_bucket(horizon: np.ndarray) -> np.ndarray:
    """Horizon bucket for the dispersion: 0 for weeks 1-4, 1 for 5-8, 2 beyond."""
    return np.where(horizon <= 4, 0, np.where(horizon <= 8, 1, 2))


def _nb_params(mu: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = 1.0 / np.maximum(phi, 1e-4)
    return n, n / (n + np.maximum(mu, 1e-9))


class DemandModel(LGBMModel):
    """Global Tweedie LightGBM for weekly demand plus a calibrated negative-binomial predictive distribution.

    Args:
        features: the columns the model reads (`features.demand_features.demand_feature_set`).
        config: training settings; ``params`` may override ``tweedie_variance_power``.
        feature_config: the feature builder settings, saved with the model.

    Example:
        >>> model = DemandModel(demand_feature_set()).fit(train, "y").calibrate(calib, "y")  # doctest: +SKIP
        >>> model.predict(rows)  # demand_mean, demand_q50 ... demand_q95  # doctest: +SKIP
    """

    kind = "demand"

    def __init__(
        self,
        features: FeatureSet,
        *,
        config: LGBMConfig | None = None,
        feature_config: DemandFeatureConfig | Mapping[str, Any] | None = None,
        exposure: bool = True,
    ) -> None:
        super().__init__(features, config=config, output_col="demand_mean")
        self.exposure = exposure
        if isinstance(feature_config, Mapping):  # from saved metadata
            feature_config = DemandFeatureConfig(**feature_config)
        self.feature_config = feature_config or DemandFeatureConfig()
        self.dispersion: dict[str, float] = {}
        self.levels: dict[str, list[float]] = {}
        self.path_rho: float | None = None
        self.ratios: dict[str, list[float]] = {}
        self.mu_edges: dict[str, list[float]] = {}
        self.distribution: dict[str, str] = {}

    @property
    def output_columns(self) -> tuple[str, ...]:
        """``demand_mean`` then the quantile columns."""
        return ("demand_mean", *_Q_NAMES)

    def _booster_specs(self) -> dict[str, dict[str, Any]]:
        power = self.config.params.get("tweedie_variance_power", 1.2)
        return {"mean": {"objective": "tweedie", "tweedie_variance_power": power}}

    def _exposure(self, frame: pl.DataFrame) -> np.ndarray:
        """The series' recent level (see module doc); ones when exposure is off."""
        if not self.exposure:
            return np.ones(frame.height)
        return frame.select(exposure_expr()).to_series().to_numpy()

    def fit(
        self,
        train: pl.DataFrame,
        target: str,
        *,
        valid: pl.DataFrame | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Self:
        """Fit the Tweedie booster on ``target / exposure`` (see `LGBMModel.fit` for the arguments)."""
        if not self.exposure:
            return super().fit(train, target, valid=valid, params=params)
        rate = (pl.col(target) / exposure_expr()).alias(_RATE)
        valid = None if valid is None else valid.with_columns(rate)
        super().fit(train.with_columns(rate), _RATE, valid=valid, params=params)
        self.training_["target"] = target
        return self

    def predict_raw(
        self, frame: pl.DataFrame, *, matrix: np.ndarray | None = None, num_threads: int | None = None
    ) -> dict[str, np.ndarray]:
        """The booster's mean times the exposure, by booster name (``mean``); arguments as in
        `LGBMModel.predict_raw`."""
        raw = super().predict_raw(frame, matrix=matrix, num_threads=num_threads)
        return {"mean": raw["mean"] * self._exposure(frame)}

    def predict_mean(self, frame: pl.DataFrame) -> np.ndarray:
        """The Tweedie mean per row (>= 0)."""
        return np.maximum(self.predict_raw(frame)["mean"], 0.0)

    def _phi(self, frame: pl.DataFrame) -> np.ndarray:
        classes = frame.get_column("volume_class").cast(pl.String).fill_null("new").to_numpy()
        buckets = horizon_bucket(frame.get_column("horizon").to_numpy())
        default = self.dispersion.get("*", 0.5)
        return np.array(
            [self.dispersion.get(f"{c}|{b}", default) for c, b in zip(classes, buckets, strict=True)],
            dtype=np.float64,
        )

    def _levels(self, frame: pl.DataFrame) -> np.ndarray:
        classes = frame.get_column("volume_class").cast(pl.String).fill_null("new").to_numpy()
        nominal = list(DEMAND_QUANTILES)
        table = {c: np.asarray(self.levels.get(c, self.levels.get("*", nominal))) for c in set(classes)}
        return np.vstack([table[c] for c in classes]) if len(classes) else np.empty((0, len(nominal)))

    def _outputs(self, raw: dict[str, np.ndarray], frame: pl.DataFrame) -> dict[str, np.ndarray]:
        mu = np.maximum(raw["mean"], 0.0)
        n, p = _nb_params(mu, self._phi(frame))
        levels = self._levels(frame)
        q = stats.nbinom.ppf(levels, n[:, None], p[:, None])
        q = np.nan_to_num(q, nan=0.0, posinf=0.0)
        if self.ratios:
            classes = frame.get_column("volume_class").cast(pl.String).fill_null("new").to_numpy()
            emp = np.array([self.distribution.get(c, "nb") == "empirical" for c in classes], dtype=bool)
            if emp.any():
                buckets = horizon_bucket(frame.get_column("horizon").to_numpy())
                q[emp] = self._empirical_q(mu[emp], classes[emp], buckets[emp], self.ratios, self.mu_edges)
        q = enforce_monotone(q)
        return {"demand_mean": mu, **{name: q[:, j] for j, name in enumerate(_Q_NAMES)}}

    def calibrate(self, calib: pl.DataFrame, target: str = "y", *, seed: int = 0) -> DemandModel:
        """Fit dispersion, calibrated levels and the path correlation on a later calibration window.

        Args:
            calib: rows later in time than the training rows, with a non-null `target` (uncensored weeks),
                ``volume_class``, ``horizon``, and for the path correlation ``warehouse_id``, ``sku_id``,
                ``origin_week``.
            target: target column.
            seed: seed of the randomised PIT.

        Returns:
            self, calibrated.
        """
        data = calib.filter(pl.col(target).is_not_null())
        if data.height == 0:
            raise ValueError("empty calibration frame (no uncensored target weeks)")
        mu = self.predict_mean(data)
        y = data.get_column(target).cast(pl.Float64).to_numpy()
        classes = data.get_column("volume_class").cast(pl.String).fill_null("new").to_numpy()
        buckets = horizon_bucket(data.get_column("horizon").to_numpy())

        def moments(mask: np.ndarray) -> float:
            num = ((y[mask] - mu[mask]) ** 2 - mu[mask]).mean()
            return float(np.clip(num / max((mu[mask] ** 2).mean(), 1e-9), 1e-3, 20.0))

        self.dispersion = {"*": moments(np.ones_like(y, dtype=bool))}
        for c in np.unique(classes):
            for b in np.unique(buckets):
                mask = (classes == c) & (buckets == b)
                if mask.sum() >= _MIN_GROUP:
                    self.dispersion[f"{c}|{b}"] = moments(mask)
        n, p = _nb_params(mu, self._phi(data))
        below = np.where(y > 0, stats.nbinom.cdf(y - 1, n, p), 0.0)  # F(y - 1)
        self.levels = {"*": self._fit_levels(below)}
        for c in np.unique(classes):
            mask = classes == c
            if mask.sum() >= _MIN_GROUP:
                self.levels[str(c)] = self._fit_levels(below[mask])
        self._fit_empirical(data, mu, y, classes, buckets, n, p)
        at = stats.nbinom.cdf(y, n, p)
        rng = np.random.default_rng(seed)
        pit = below + rng.uniform(size=y.size) * (at - below)
        self.path_rho = self._fit_rho(data, pit)
        logger.info("demand calibration: levels %s, rho %.3f", self.levels, self.path_rho)
        return self

    @staticmethod
    def _keys(mu: np.ndarray, classes: np.ndarray, buckets: np.ndarray, edges: Mapping[str, list[float]]
              ) -> list[tuple[str, ...]]:  # fmt: skip
        """Lookup keys per row, most specific first: class|bucket|bin, class|bucket, class, *."""
        out: list[tuple[str, ...]] = []
        for m, c, b in zip(mu, classes, buckets, strict=True):
            e = edges.get(str(c))
            k = int(np.searchsorted(e, m, side="right")) if e is not None else -1
            out.append((f"{c}|{b}|{k}", f"{c}|{b}", str(c), "*"))
        return out

    @classmethod
    def _empirical_q(
        cls,
        mu: np.ndarray,
        classes: np.ndarray,
        buckets: np.ndarray,
        ratios: Mapping[str, list[float]],
        edges: Mapping[str, list[float]],
    ) -> np.ndarray:
        """``floor(mu * r_tau)`` per row with the most specific ratio table present."""
        keys = cls._keys(mu, classes, buckets, edges)
        nominal = [0.0] * len(DEMAND_QUANTILES)
        r = np.array([next((ratios[k] for k in ks if k in ratios), nominal) for ks in keys], dtype=np.float64)
        r = r.reshape(mu.size, len(DEMAND_QUANTILES))
        return np.floor(np.maximum(mu, _MU_FLOOR)[:, None] * r + 1e-9)

    @staticmethod
    def _ratio_tables(
        mu: np.ndarray, y: np.ndarray, classes: np.ndarray, buckets: np.ndarray
    ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """Empirical quantiles of ``y / mu`` per key (groups of >= `_MIN_GROUP` rows) and mu terciles."""
        ratio = y / np.maximum(mu, _MU_FLOOR)
        levels = list(DEMAND_QUANTILES)

        def table(mask: np.ndarray) -> list[float]:
            return np.quantile(ratio[mask], levels, method="inverted_cdf").tolist()

        ratios = {"*": table(np.ones_like(y, dtype=bool))}
        edges: dict[str, list[float]] = {}
        for c in np.unique(classes):
            cm = classes == c
            if cm.sum() < _MIN_GROUP:
                continue
            ratios[str(c)] = table(cm)
            edges[str(c)] = np.quantile(mu[cm], [1 / 3, 2 / 3]).tolist()
            bins = np.searchsorted(edges[str(c)], mu, side="right")
            for b in np.unique(buckets[cm]):
                bm = cm & (buckets == b)
                if bm.sum() >= _MIN_GROUP:
                    ratios[f"{c}|{b}"] = table(bm)
                for k in range(3):
                    km = bm & (bins == k)
                    if km.sum() >= _MIN_GROUP:
                        ratios[f"{c}|{b}|{k}"] = table(km)
        return ratios, edges

    def _fit_empirical(
        self,
        data: pl.DataFrame,
        mu: np.ndarray,
        y: np.ndarray,
        classes: np.ndarray,
        buckets: np.ndarray,
        n: np.ndarray,
        p: np.ndarray,
    ) -> None:
        """Fit the empirical ratio tables and choose nb vs empirical per volume class (see module doc)."""
        self.ratios, self.mu_edges = self._ratio_tables(mu, y, classes, buckets)
        self.distribution = {}
        if "origin_week" not in data.columns:
            return
        origins = data.get_column("origin_week").to_numpy()
        order = np.unique(origins)
        fold = np.isin(origins, order[::2])
        if fold.all() or not fold.any():
            return
        taus = np.asarray(DEMAND_QUANTILES)
        q_nb = np.nan_to_num(
            stats.nbinom.ppf(self._levels(data), n[:, None], p[:, None]), nan=0.0, posinf=0.0
        )
        q_emp = np.zeros_like(q_nb)
        for held in (fold, ~fold):
            rat, edg = self._ratio_tables(mu[~held], y[~held], classes[~held], buckets[~held])
            q_emp[held] = self._empirical_q(mu[held], classes[held], buckets[held], rat, edg)
        scale = self._exposure(data)[:, None]

        def loss(q: np.ndarray, mask: np.ndarray) -> float:
            diff = y[mask, None] - q[mask]
            return float((np.maximum(taus * diff, (taus - 1) * diff) / scale[mask]).mean())

        for c in np.unique(classes):
            mask = classes == c
            if mask.sum() >= _MIN_GROUP:
                nb, emp = loss(q_nb, mask), loss(q_emp, mask)
                self.distribution[str(c)] = "empirical" if emp < nb else "nb"
                logger.info("demand distribution %s: nb %.4f, empirical %.4f", c, nb, emp)

    @staticmethod
    def _fit_levels(below: np.ndarray) -> list[float]:
        ordered = np.sort(below)
        out = []
        for tau in DEMAND_QUANTILES:
            k = max(int(np.ceil(tau * ordered.size)) - 1, 0)
            out.append(float(np.clip(ordered[k] + 1e-9, 0.01, 0.999)))
        return np.maximum.accumulate(out).tolist()

    @staticmethod
    def _fit_rho(data: pl.DataFrame, pit: np.ndarray) -> float | None:
        needed = {"warehouse_id", "sku_id", "origin_week", "horizon"}
        if not needed <= set(data.columns):
            return None
        z = stats.norm.ppf(np.clip(pit, 1e-6, 1 - 1e-6))
        frame = data.select(*needed).with_columns(_z=pl.Series(z))
        nxt = frame.with_columns(pl.col("horizon") - 1).rename({"_z": "_z1"})
        pairs = frame.join(nxt, on=["warehouse_id", "sku_id", "origin_week", "horizon"], how="inner")
        if pairs.height < _MIN_GROUP:
            return None
        corr = np.corrcoef(pairs.get_column("_z").to_numpy(), pairs.get_column("_z1").to_numpy())[0, 1]
        return float(np.clip(np.nan_to_num(corr), 0.0, 0.95))

    def _init_kwargs(self) -> dict[str, Any]:
        return {"feature_config": self.feature_config.model_dump(mode="json"), "exposure": self.exposure}

    def _state(self) -> dict[str, Any]:
        return {
            "dispersion": self.dispersion,
            "levels": self.levels,
            "path_rho": self.path_rho,
            "ratios": self.ratios,
            "mu_edges": self.mu_edges,
            "distribution": self.distribution,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.dispersion = dict(state.get("dispersion", {}))
        self.levels = {k: list(v) for k, v in state.get("levels", {}).items()}
        self.path_rho = state.get("path_rho")
        self.ratios = {k: list(v) for k, v in state.get("ratios", {}).items()}
        self.mu_edges = {k: list(v) for k, v in state.get("mu_edges", {}).items()}
        self.distribution = dict(state.get("distribution", {}))


def new_demand_model(
    config: LGBMConfig | None = None, feature_config: DemandFeatureConfig | None = None
) -> DemandModel:
    """A `DemandModel` over the default feature set of `feature_config`."""
    fc = feature_config or DemandFeatureConfig()
    return DemandModel(demand_feature_set(fc), config=config, feature_config=fc)


def forecast_demand(
    tables: Mapping[str, pl.DataFrame],
    model: DemandModel,
    cutoff: dt.date,
    *,
    model_version: str = "",
    data_version: str = "",
) -> pl.DataFrame:
    """The forecast contract frame for every series with sales before `cutoff` (a Monday).

    Args:
        tables: validated tables by name; reads ``warehouse_sales`` and, when present, ``skus`` and
            ``warehouses``.
        model: a fitted, calibrated `DemandModel`.
        cutoff: first forecast day; must be a Monday. Only sales strictly before it are used.
        model_version: written to ``model_version``.
        data_version: written to ``data_version`` (may be "").

    Returns:
        The frame of `FORECAST_SCHEMA`, one row per series x horizon, sorted by series and horizon.
    """
    if cutoff.weekday() != 0:
        raise ValueError(f"cutoff must be a Monday (the first day of the ISO week), got {cutoff}")
    if "warehouse_sales" not in tables:
        raise ValueError("tables must include 'warehouse_sales'")
    panel = build_weekly_panel(tables["warehouse_sales"], tables.get("skus"), cutoff=cutoff)
    panel = extend_panel(panel, cutoff)
    rows = build_demand_features(
        panel, tables.get("warehouses"), origins=[cutoff], config=model.feature_config
    )
    preds = model.predict(rows)
    return (
        rows.select("warehouse_id", "sku_id", "horizon", "week_start", "volume_class")
        .hstack(preds)
        .with_columns(
            forecast_week=pl.lit(iso_week_label(cutoff)),
            cutoff_date=pl.lit(cutoff, dtype=pl.Date),
            model_version=pl.lit(model_version),
            data_version=pl.lit(data_version),
        )
        .select([pl.col(c).cast(t) for c, t in FORECAST_SCHEMA.items()])
        .sort("warehouse_id", "sku_id", "horizon")
    )
