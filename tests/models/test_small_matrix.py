"""`feature_matrix` of a few rows (Python values, dict encoding) equals the Polars path of a large frame."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.encoding import SMALL_MATRIX_ROWS, CategoryEncoder, FeatureSet, feature_matrix

_MODES = pl.Enum(["air", "sea", "rail", "road"])


def _frame(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n)
    w[rng.random(n) < 0.2] = np.nan  # NaN stays NaN
    return pl.DataFrame(
        {
            "w": w,
            "count": pl.Series(rng.integers(-5, 5, n), dtype=pl.Int32),
            "flag": rng.random(n) < 0.5,
            "maybe": [None if rng.random() < 0.3 else float(v) for v in rng.normal(size=n)],
            "mode": pl.Series(
                [["air", "sea", "rail", "road", None][i] for i in rng.integers(0, 5, n)], dtype=_MODES
            ),
            "carrier": [["A", "B", "C", "NEW", None][i] for i in rng.integers(0, 5, n)],
            "f32": pl.Series(rng.normal(size=n) / 3, dtype=pl.Float32),
            "u8": pl.Series(rng.integers(0, 200, n), dtype=pl.UInt8),
            "none": pl.Series([None] * n, dtype=pl.Null),
            "unused": ["x"] * n,
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_matrix_equals_the_polars_matrix(seed: int) -> None:
    fs = FeatureSet(
        numeric=("w", "count", "flag", "maybe", "f32", "u8", "none"), categorical=("mode", "carrier")
    )
    train = pl.DataFrame({"mode": ["sea", "air", "rail"], "carrier": ["B", "A", "C"]})
    enc = CategoryEncoder().fit(train, fs.categorical)  # "road" and "NEW" are unknown levels
    frame = _frame(200, seed)
    big = feature_matrix(frame, fs, enc)
    assert np.isnan(big).any() and (big[:, 7:] == 0).any()
    for n in (1, 2, 7, SMALL_MATRIX_ROWS):
        for start in (0, 50, 200 - n):
            small = feature_matrix(frame.slice(start, n), fs, enc)
            assert small.dtype == np.float64 and small.flags.c_contiguous and small.shape == (n, 9)
            np.testing.assert_array_equal(small, big[start : start + n])
    with pytest.raises(TypeError, match="numeric feature 'carrier'"):
        feature_matrix(frame.head(1), FeatureSet(numeric=("carrier",), categorical=()), CategoryEncoder())
