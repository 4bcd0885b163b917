"""Stage: models (input boundary). Feature sets, categorical encoding and the numeric matrix LightGBM sees.

Reads and writes nothing: frames in, numpy arrays / JSON-ready dicts out.

`FeatureSet` (numeric and categorical column names) is the one defined by the feature builders in
`features.shipment_features`, re-exported here; the functions below only read its two tuples.

LightGBM aborts the process when handed a Polars/Arrow frame with Categorical, Enum, String or Datetime
columns, so every model goes through `feature_matrix`: numeric columns are cast to Float64, categorical
columns are mapped to integer codes learnt at fit time by `CategoryEncoder` (sorted levels, unknown or null
-> missing, never an error), and the result is a C-ordered float64 array with NaN for missing values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from features.feature_set import FeatureSet

__all__ = [
    "SMALL_MATRIX_ROWS",
    "CategoryEncoder",
    "FeatureSet",
    "check_feature_set",
    "feature_matrix",
    "feature_names",
    "feature_set_from_dict",
    "feature_set_to_dict",
]

_NUMERIC_KINDS = (pl.Boolean,)
# Up to this many rows `feature_matrix` reads the values as Python objects and encodes them with dicts:
# the same numbers as the Polars path, without its per-query cost (one-row requests).
SMALL_MATRIX_ROWS = 32
_SMALL_KINDS: tuple[type[pl.DataType], ...] = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16)
_SMALL_KINDS += (pl.UInt32, pl.Float32, pl.Float64, pl.Boolean, pl.Null)  # exact as Python numbers


def feature_names(features: FeatureSet) -> tuple[str, ...]:
    """All feature columns in model order: numeric first, then categorical."""
    return (*features.numeric, *features.categorical)


def check_feature_set(features: FeatureSet) -> FeatureSet:
    """Raise `ValueError` on an empty feature set or a column listed twice; return it unchanged."""
    names = feature_names(features)
    if not names:
        raise ValueError("a feature set needs at least one column")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate feature names: {duplicates}")
    return features


def feature_set_to_dict(features: FeatureSet) -> dict[str, list[str]]:
    """JSON-ready form of a feature set."""
    return {"numeric": list(features.numeric), "categorical": list(features.categorical)}


def feature_set_from_dict(data: Mapping[str, Sequence[str]]) -> FeatureSet:
    """Inverse of `feature_set_to_dict`."""
    return FeatureSet(numeric=tuple(data.get("numeric", ())), categorical=tuple(data.get("categorical", ())))


class CategoryEncoder:
    """Maps categorical columns to Int32 codes learnt at fit time.

    Levels are the distinct non-null values seen in training, as strings, sorted; level ``i`` gets code ``i``.
    Unknown levels and nulls map to null (LightGBM's missing value), so serving never fails on a new carrier
    or country.

    Example:
        >>> enc = CategoryEncoder().fit(pl.DataFrame({"mode": ["sea", "air", "sea"]}), ["mode"])
        >>> enc.transform(pl.DataFrame({"mode": ["air", "rail", None]}))["mode"].to_list()
        [0, None, None]
    """

    def __init__(self, levels: Mapping[str, Sequence[str]] | None = None) -> None:
        self.levels: dict[str, list[str]] = {c: list(v) for c, v in (levels or {}).items()}
        self._cached: tuple[dict[str, list[str]], list[pl.Expr]] | None = None
        self._codes: tuple[dict[str, list[str]], dict[str, dict[str, int]]] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The encoded columns."""
        return tuple(self.levels)

    def fit(self, frame: pl.DataFrame, columns: Sequence[str]) -> CategoryEncoder:
        """Learn the sorted non-null levels of each column.

        Args:
            frame: training rows.
            columns: categorical columns to learn.

        Returns:
            self.
        """
        _require(frame, columns)
        self.levels = {
            c: sorted(frame.get_column(c).cast(pl.String).drop_nulls().unique().to_list()) for c in columns
        }
        return self

    def expressions(self) -> list[pl.Expr]:
        """One Int32 code expression per encoded column, named as the column (built once per levels)."""
        if self._cached is not None and self._cached[0] == self.levels:
            return list(self._cached[1])
        exprs = [
            pl.col(c)
            .cast(pl.String)
            .replace_strict(levels, list(range(len(levels))), default=None, return_dtype=pl.Int32)
            .alias(c)
            for c, levels in self.levels.items()
        ]
        self._cached = ({c: list(v) for c, v in self.levels.items()}, exprs)
        return list(exprs)

    def codes(self) -> dict[str, dict[str, int]]:
        """Level -> code of each encoded column (the mapping `expressions` applies), built once per levels."""
        if self._codes is None or self._codes[0] != self.levels:
            codes = {c: {level: i for i, level in enumerate(levels)} for c, levels in self.levels.items()}
            self._codes = ({c: list(v) for c, v in self.levels.items()}, codes)
        return self._codes[1]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Replace each encoded column by its Int32 codes (unknown or null -> null), other columns as is."""
        _require(frame, self.columns)
        return frame.with_columns(self.expressions())

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-ready levels per column."""
        return {c: list(v) for c, v in self.levels.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> CategoryEncoder:
        """Inverse of `to_dict`."""
        return cls(data)


def _require(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the frame: {missing}")


def _numeric_expr(schema: Mapping[str, pl.DataType], column: str) -> pl.Expr:
    dtype = schema[column]
    if not (dtype.is_numeric() or isinstance(dtype, _NUMERIC_KINDS) or dtype == pl.Null):
        raise TypeError(
            f"numeric feature {column!r} has dtype {dtype}; declare it categorical or convert it "
            "(datetimes/durations to numbers) in the feature builder"
        )
    return pl.col(column).cast(pl.Float64)


def feature_matrix(frame: pl.DataFrame, features: FeatureSet, encoder: CategoryEncoder) -> np.ndarray:
    """The float64 matrix LightGBM is trained and scored on.

    Args:
        frame: rows to encode; columns not in the feature set are ignored.
        features: the model's feature set.
        encoder: fitted on the training rows for ``features.categorical``.

    Returns:
        A C-contiguous ``(n_rows, n_features)`` float64 array, columns in `feature_names` order; nulls and
        unknown levels are NaN.
    """
    names = feature_names(features)
    _require(frame, names)
    if set(encoder.columns) != set(features.categorical):
        raise ValueError("encoder columns differ from the feature set's categorical columns")
    schema = frame.schema  # built once: `DataFrame.schema` walks every column on each access
    numeric = [_numeric_expr(schema, c) for c in features.numeric]
    if 0 < frame.height <= SMALL_MATRIX_ROWS and all(
        isinstance(schema[c], _SMALL_KINDS) for c in features.numeric
    ):
        return _small_matrix(frame, features, encoder)
    exprs: list[Any] = [*numeric, *(e.cast(pl.Float64) for e in encoder.expressions())]
    values = frame.select(exprs).select(names)
    matrix = values.to_numpy(order="c", writable=True) if values.height else np.empty((0, values.width))
    return np.ascontiguousarray(matrix, dtype=np.float64)


def _small_matrix(frame: pl.DataFrame, features: FeatureSet, encoder: CategoryEncoder) -> np.ndarray:
    """`feature_matrix` of a few rows from their Python values, no query (the same float64 numbers)."""
    position = {c: i for i, c in enumerate(frame.columns)}
    rows = frame.rows()
    num = [position[c] for c in features.numeric]
    cats = features.categorical
    codes = encoder.codes()
    nan = float("nan")
    matrix = np.empty((len(rows), len(num) + len(cats)), dtype=np.float64)
    # int, float and bool -> float64 as Polars casts them (correctly rounded); None -> NaN
    matrix[:, : len(num)] = np.array([[row[i] for i in num] for row in rows], dtype=np.float64).reshape(
        len(rows), len(num)
    )
    for j, c in enumerate(cats, start=len(num)):
        levels, i = codes[c], position[c]
        # a level not learnt (or null) -> NaN, as `expressions` gives null; values compared as strings
        matrix[:, j] = [nan if row[i] is None else levels.get(str(row[i]), nan) for row in rows]
    return matrix
