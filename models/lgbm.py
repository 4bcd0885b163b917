"""Stage: models. The shared LightGBM model: fit on a feature frame, predict a frame, save/load text + JSON.

Reads feature frames; `LGBMModel.save` writes a directory with one LightGBM native text model per booster
(``booster_<name>.txt``) and ``metadata.json`` (kind, feature set, encoder levels, config, params, subclass
state such as conformal offsets or the isotonic map, library versions, training data fingerprint). Never a
pickle. `load_model` reads any saved model back as the right class.

Every booster is round-tripped through its text form right after training, so predictions in the training
process and after `load` come from the same parsed model and are bit-identical. Training is deterministic:
``seed``, ``deterministic=True``, ``force_row_wise=True`` and a fixed thread count (default 2).

Subclasses (`models.quantile.QuantileRegressor`, `models.classifier.CalibratedClassifier`) override the
hooks ``_booster_specs``, ``_transform_target``, ``_outputs``, ``_init_kwargs``, ``_state`` and
``_set_state``; with a baseline also ``_baseline_levels``, ``_link`` and ``_inverse_link``.

With a `models.baselines.BaselineSpec` the boosters boost from the baseline (`models.boosting`); a degenerate
booster is dropped, its output is then the baseline alone (``training_["degenerate"]``). `fit_baseline` fits
no trees: the model is the baseline, same interface and directory (``system: "baseline:<name>"``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from models.baselines import BaselineSpec, FittedBaseline
from models.boosting import CONSTANT_SAMPLE, DEGENERATE_ROUNDS, BaselineBoosting, degenerate_reason
from models.encoding import (
    CategoryEncoder,
    FeatureSet,
    check_feature_set,
    feature_matrix,
    feature_names,
    feature_set_from_dict,
    feature_set_to_dict,
)

__all__ = [
    "FORMAT_VERSION",
    "LGBMConfig",
    "LGBMModel",
    "load_model",
    "target_array",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
_REGISTRY: dict[str, type[LGBMModel]] = {}
_SUBCLASS_MODULES = ("models.quantile", "models.classifier", "models.demand")
# Keys that make training reproducible; set last so neither config.params nor tuning can drop them.
_DETERMINISM = {"deterministic": True, "force_row_wise": True, "verbosity": -1}


class LGBMConfig(BaseModel):
    """How to train the boosters of one model.

    Attributes:
        params: LightGBM parameters layered over the model's defaults (objective and alpha are set by the
            model kind). A ``num_boost_round`` key here or in ``fit(params=...)`` overrides the field below.
        num_boost_round: maximum boosting rounds.
        early_stopping_rounds: patience on the ``valid`` frame given to ``fit``; unused without one.
        refit_after_stopping: once early stopping on ``valid`` found the rounds, train again on the training
            and ``valid`` rows with that many rounds (the latest rows then teach the trees too), when
            ``valid`` holds at least a tenth as many rows as the training rows (else it adds little).
        num_threads: LightGBM threads for training and prediction.
        seed: master seed (LightGBM derives bagging/feature-fraction seeds from it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    num_boost_round: int = Field(default=300, ge=1)
    early_stopping_rounds: int | None = Field(default=30, ge=1)
    refit_after_stopping: bool = False
    num_threads: int = Field(default=2, ge=1)
    seed: int = 0


BASE_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20, "feature_fraction": 0.9,
    "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0, "max_cat_to_onehot": 8,
}  # fmt: skip


def target_array(frame: pl.DataFrame, target: str) -> np.ndarray:
    """The target as float64; raises when it has nulls (filter open/censored rows before training)."""
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} not in the frame")
    col = frame.get_column(target)
    if col.null_count():
        raise ValueError(f"target {target!r} has {col.null_count()} nulls: drop unobserved rows first")
    return col.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)


def _fingerprint(matrix: np.ndarray, y: np.ndarray, columns: tuple[str, ...]) -> str:
    digest = hashlib.sha256("|".join(columns).encode())
    digest.update(np.ascontiguousarray(matrix).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return f"sha256:{digest.hexdigest()}"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("lightgbm", "polars", "numpy", "sklearn"):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:  # pragma: no cover - sklearn is a dependency
            continue
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


@dataclass(frozen=True)
class _Rows:
    """A fit's matrix, target (booster scale) and baseline margins by booster (None without a baseline)."""

    x: np.ndarray
    y: np.ndarray
    init: dict[str, np.ndarray] | None


class LGBMModel(BaselineBoosting):
    """One or more LightGBM boosters over a `FeatureSet`, with a frame-in/frame-out interface.

    Used directly it is a point model with one output column (objective from ``config.params``, default
    L2 regression).

    Args:
        features: the columns the model reads.
        config: training settings.
        output_col: name of the prediction column.

    Example:
        >>> model = LGBMModel(FeatureSet(numeric=("weight_kg",), categorical=("mode",)), output_col="days")
        >>> model.fit(train, "transit_days").predict(test)  # doctest: +SKIP
    """

    kind: ClassVar[str] = "lgbm"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.kind] = cls

    def __init__(
        self,
        features: FeatureSet,
        *,
        config: LGBMConfig | None = None,
        output_col: str = "prediction",
        baseline: BaselineSpec | None = None,
    ) -> None:
        self.features = check_feature_set(features)
        self.config = config or LGBMConfig()
        self.output_col = output_col
        self.baseline = baseline
        self.baseline_fit: FittedBaseline | None = None
        self.system = "transitcast"
        self.encoder = CategoryEncoder()
        self.boosters: dict[str, lgb.Booster] = {}
        self.params_: dict[str, dict[str, Any]] = {}
        self.training_: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------------------------
    # Hooks for subclasses
    # ---------------------------------------------------------------------------------------------------
    def _booster_specs(self) -> dict[str, dict[str, Any]]:
        """Booster name -> parameters specific to it (objective, alpha)."""
        return {"model": {"objective": self.config.params.get("objective", "regression")}}

    def _transform_target(self, y: np.ndarray) -> np.ndarray:
        """Target as the boosters learn it."""
        return y

    def _outputs(self, raw: dict[str, np.ndarray], frame: pl.DataFrame) -> dict[str, np.ndarray]:  # noqa: ARG002
        """Raw booster outputs -> named output columns."""
        return {self.output_col: raw["model"]}

    def _init_kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments (besides features and config), JSON-ready."""
        return {"output_col": self.output_col}

    def _state(self) -> dict[str, Any]:
        """Fitted state besides boosters and encoder (e.g. calibration), JSON-ready."""
        return {}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of `_state`."""

    # ---------------------------------------------------------------------------------------------------
    # Fit / predict
    # ---------------------------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether `fit`, `fit_baseline` (or `load`) has run."""
        return bool(self.boosters) or self.baseline_fit is not None

    def fit_baseline(self, train: pl.DataFrame, target: str) -> Self:
        """Fit the baseline alone (no trees): the model predicts it, ``system == "baseline:<name>"``."""
        if self.baseline is None:
            raise ValueError(f"{type(self).__name__} has no baseline to fit")
        if train.height == 0:
            raise ValueError("cannot fit on an empty frame")
        self.encoder = CategoryEncoder().fit(train, self.features.categorical)
        self._fit_baseline_part(train, target)
        self.boosters, self.params_ = {}, {}
        self.system = f"baseline:{self.baseline.name}"
        y = self._transform_target(target_array(train, target))
        x = feature_matrix(train.head(CONSTANT_SAMPLE), self.features, self.encoder)
        self.training_ = {
            "target": target,
            "n_rows": train.height,
            "n_valid_rows": 0,
            "fingerprint": _fingerprint(x, y, feature_names(self.features)),
            "best_iteration": {},
            "degenerate": {},
        }
        return self

    @property
    def output_columns(self) -> tuple[str, ...]:
        """Columns `predict` returns, in order."""
        return (self.output_col,)

    def _params(self, spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        params = {**BASE_PARAMS, **self.config.params, **overrides, **spec}
        rounds = int(params.pop("num_boost_round", self.config.num_boost_round))
        params.update(_DETERMINISM, seed=self.config.seed, num_threads=self.config.num_threads)
        return params, rounds

    def fit(
        self,
        train: pl.DataFrame,
        target: str,
        *,
        valid: pl.DataFrame | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Self:
        """Train every booster on `train`.

        Args:
            train: training rows with the feature columns and a non-null `target`.
            target: target column.
            valid: optional later (time-ordered) rows for early stopping; never the test fold.
            params: LightGBM parameters for this fit (e.g. from an Optuna trial), over ``config.params``.

        Returns:
            self, fitted.
        """
        if train.height == 0:
            raise ValueError("cannot fit on an empty frame")
        self.encoder = CategoryEncoder().fit(train, self.features.categorical)
        self._fit_baseline_part(train, target)
        self.system = "transitcast"
        data = self._rows(train, target)
        held = self._rows(valid, target) if valid is not None and valid.height else None
        self.boosters, self.params_, best, degenerate = {}, {}, {}, {}
        for name, spec in self._booster_specs().items():
            booster_params, rounds = self._params(spec, params or {})
            fitted, best[name] = self._fit_booster(name, data, held, booster_params, rounds)
            sample = data.x[:CONSTANT_SAMPLE].copy()
            reason = degenerate_reason(fitted, best[name], sample, early_stopped=held is not None)
            if reason is not None:
                degenerate[name] = reason
                if data.init is not None:  # the baseline stands in for a booster that adds nothing to it
                    logger.info("%s booster %r is degenerate (%s): dropped", self.kind, name, reason)
                    continue
                logger.warning("%s booster %r is degenerate (%s), no baseline", self.kind, name, reason)
            self.boosters[name] = fitted
            self.params_[name] = booster_params
        self.training_ = {
            "target": target,
            "n_rows": train.height,
            "n_valid_rows": 0 if valid is None else valid.height,
            "fingerprint": _fingerprint(data.x, data.y, feature_names(self.features)),
            "best_iteration": best,
            "degenerate": degenerate,
        }
        logger.info("fitted %s on %d rows (%s)", self.kind, train.height, best)
        return self

    def _rows(self, frame: pl.DataFrame, target: str) -> _Rows:
        x = feature_matrix(frame, self.features, self.encoder)
        return _Rows(x, self._transform_target(target_array(frame, target)), self.margins(frame))

    def _fit_booster(
        self, name: str, data: _Rows, held: _Rows | None, params: dict[str, Any], rounds: int
    ) -> tuple[lgb.Booster, int]:
        """One booster (early-stopped on `held`, then refitted on both when configured), and its rounds;
        round-tripped through the text format so that this process and `load` predict identically."""
        booster = self._train_one(data, held, name, params, rounds)
        best = booster.best_iteration or booster.current_iteration()
        if self.config.refit_after_stopping and held is not None and best > DEGENERATE_ROUNDS:
            if held.y.size >= 0.1 * data.y.size:
                init = None if data.init is None or held.init is None else {
                    name: np.concatenate([data.init[name], held.init[name]])
                }  # fmt: skip
                both = _Rows(np.concatenate([data.x, held.x]), np.concatenate([data.y, held.y]), init)
                booster = self._train_one(both, None, name, params, best)
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best

    def _train_one(
        self, data: _Rows, held: _Rows | None, name: str, params: dict[str, Any], rounds: int
    ) -> lgb.Booster:
        names = list(feature_names(self.features))
        cats = list(self.features.categorical)
        dtrain = lgb.Dataset(
            data.x, data.y, feature_name=names, categorical_feature=cats, params=params,
            init_score=None if data.init is None else data.init[name],
        )  # fmt: skip
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Callable[..., Any]] = []
        patience = self.config.early_stopping_rounds
        if held is not None:
            init = None if held.init is None else held.init[name]
            valid_sets.append(lgb.Dataset(held.x, held.y, reference=dtrain, init_score=init))
            if patience:
                callbacks.append(lgb.early_stopping(patience, first_metric_only=True, verbose=False))
        return lgb.train(params, dtrain, rounds, valid_sets=valid_sets or None, callbacks=callbacks)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    @property
    def matrix_key(self) -> str:
        """Models with the same key read the same `feature_matrix` of a frame (features and encoder)."""
        text = json.dumps([feature_set_to_dict(self.features), self.encoder.to_dict()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The float64 matrix the boosters read for `frame` (see `models.encoding.feature_matrix`)."""
        return feature_matrix(frame, self.features, self.encoder)

    def predict_matrix(
        self,
        x: np.ndarray,
        *,
        num_threads: int | None = None,
        margins: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw output of each booster on a matrix built by `matrix` (rows are scored independently).

        Args:
            x: the feature matrix.
            num_threads: LightGBM threads for this call (default: `config.num_threads`).
            margins: the rows' baseline (`margins` of their frame), required when the model has one; a
                dropped booster's output is then the baseline alone.
        """
        self._check_fitted()
        if x.ndim != 2 or x.shape[1] != len(feature_names(self.features)):
            raise ValueError(
                f"matrix has shape {x.shape}; the model reads {len(feature_names(self.features))} columns"
            )
        threads = num_threads or self.config.num_threads
        if self.baseline_fit is None:
            if x.shape[0] == 0:
                return {name: np.empty(0, dtype=np.float64) for name in self.boosters}
            return {name: np.asarray(b.predict(x, num_threads=threads)) for name, b in self.boosters.items()}
        if margins is None:
            raise ValueError("this model boosts from a baseline: pass the rows' `margins`")
        out = {}
        for name in self._booster_specs():
            booster = self.boosters.get(name)
            trees = (
                0.0
                if booster is None or x.shape[0] == 0
                else booster.predict(x, raw_score=True, num_threads=threads)
            )
            out[name] = self._inverse_link(np.asarray(margins[name], dtype=np.float64) + trees)
        return out

    def predict_raw(
        self, frame: pl.DataFrame, *, matrix: np.ndarray | None = None, num_threads: int | None = None
    ) -> dict[str, np.ndarray]:
        """Raw output of each booster (working scale, before any calibration), by booster name.

        Args:
            frame: rows to score.
            matrix: `self.matrix(frame)` when the caller already has it (shared by models with the same
                `matrix_key`); built from `frame` otherwise.
            num_threads: LightGBM threads for this call (default: `config.num_threads`).
        """
        self._check_fitted()
        x = self.matrix(frame) if matrix is None else matrix
        return self.predict_matrix(x, num_threads=num_threads, margins=self.margins(frame))

    def predict(
        self, frame: pl.DataFrame, *, matrix: np.ndarray | None = None, num_threads: int | None = None
    ) -> pl.DataFrame:
        """Predictions for each row of `frame`, same order: a frame with `output_columns` only.

        Columns outside the feature set are ignored; unknown categories and nulls are treated as missing.
        Join back with ``frame.hstack(model.predict(frame))``. `matrix` and `num_threads` as in
        `predict_raw`.
        """
        if matrix is None and num_threads is None:  # subclasses may override `predict_raw(frame)` alone
            raw = self.predict_raw(frame)
        else:
            raw = self.predict_raw(frame, matrix=matrix, num_threads=num_threads)
        outputs = self._outputs(raw, frame)
        return pl.DataFrame([pl.Series(name, values, dtype=pl.Float64) for name, values in outputs.items()])

    # ---------------------------------------------------------------------------------------------------
    # Persistence
    # ---------------------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Everything `load` needs besides the booster files, JSON-ready."""
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "features": feature_set_to_dict(self.features),
            "encoder": self.encoder.to_dict(),
            "config": self.config.model_dump(mode="json"),
            "init": self._init_kwargs(),
            "outputs": list(self.output_columns),
            "boosters": {name: f"booster_{name}.txt" for name in self.boosters},
            "params": self.params_,
            "state": self._state(),
            "training": self.training_,
            "system": self.system,
            "baseline": None if self.baseline_fit is None else self.baseline_fit.to_dict(),
            "versions": _versions(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write the boosters (LightGBM text) and ``metadata.json`` into `directory` (created if needed)."""
        meta = self.metadata()
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for name, filename in meta["boosters"].items():
            (path / filename).write_text(self.boosters[name].model_to_string(), encoding="utf-8")
        text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
        (path / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read a model written by `save`; predictions are bit-identical to the saved model's."""
        path = Path(directory)
        meta = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {meta.get('format_version')!r}")
        if meta["kind"] != cls.kind:
            raise ValueError(f"{path} holds a {meta['kind']!r} model, not {cls.kind!r}; use load_model")
        model = cls(
            feature_set_from_dict(meta["features"]), config=LGBMConfig(**meta["config"]), **meta["init"]
        )
        model.encoder = CategoryEncoder.from_dict(meta["encoder"])
        model.boosters = {
            name: lgb.Booster(model_str=(path / filename).read_text(encoding="utf-8"))
            for name, filename in meta["boosters"].items()
        }
        model.params_ = meta["params"]
        model.training_ = meta["training"]
        model.system = meta.get("system", "transitcast")
        if meta.get("baseline") is not None:
            model.baseline_fit = FittedBaseline.from_dict(meta["baseline"])
            model.baseline = model.baseline_fit.spec
        model._set_state(meta["state"])
        return model


_REGISTRY[LGBMModel.kind] = LGBMModel


def load_model(directory: str | Path) -> LGBMModel:
    """Load any model saved by `LGBMModel.save`, as the class recorded in its metadata."""
    meta = json.loads((Path(directory) / METADATA_FILE).read_text(encoding="utf-8"))
    if meta["kind"] not in _REGISTRY:
        for module in _SUBCLASS_MODULES:
            importlib.import_module(module)
    if meta["kind"] not in _REGISTRY:
        raise ValueError(f"unknown model kind {meta['kind']!r}")
    return _REGISTRY[meta["kind"]].load(directory)
