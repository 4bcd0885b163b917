"""Tests for the RMSSE / WRMSSE metrics and the squared naive scale (models.metrics)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from models.metrics_scaled import rmsse, seasonal_naive_scale, wrmsse


def test_seasonal_naive_scale_squared() -> None:
    train = pl.DataFrame({"s": ["a"] * 4, "t": [1, 2, 3, 4], "y": [1.0, 3.0, 2.0, 2.0]})
    out = seasonal_naive_scale(train, "y", ["s"], "t", power=2, scale_col="scale_sq")
    assert out["scale_sq"].to_list() == [pytest.approx((4 + 1 + 0) / 3)]
    with pytest.raises(ValueError, match="power"):
        seasonal_naive_scale(train, "y", ["s"], "t", power=3)


def test_rmsse_row_scaled() -> None:
    df = pl.DataFrame({"y": [1.0, 3.0, 5.0], "m": [2.0, 3.0, 1.0], "scale_sq": [1.0, 1.0, 4.0]})
    out = rmsse(df, ["m"], "y", None)
    assert out.to_dicts() == [
        {"model": "m", "metric": "rmsse", "value": pytest.approx(math.sqrt((1 + 0 + 4) / 3))}
    ]


def test_wrmsse_weights_series_rmsse() -> None:
    df = pl.DataFrame(
        {
            "warehouse_id": ["W"] * 4,
            "sku_id": ["A", "A", "B", "B"],
            "y": [2.0, 2.0, 10.0, 10.0],
            "m": [1.0, 3.0, 10.0, 10.0],
            "scale_sq": [1.0, 1.0, 4.0, 4.0],
            "weight": [3.0, 3.0, 1.0, 1.0],
        }
    )
    out = wrmsse(df, ["m"], "y", None)
    # series A: RMSSE 1 with weight 3; series B: 0 with weight 1.
    assert out.to_dicts() == [{"model": "m", "metric": "wrmsse", "value": pytest.approx(0.75)}]
    zero_weight = wrmsse(df.with_columns(weight=pl.lit(0.0)), ["m"], "y", None)
    assert zero_weight.height == 0 or zero_weight["value"].is_null().all()


def test_wrmsse_by_a_series_column() -> None:
    df = pl.DataFrame(
        {
            "warehouse_id": ["W", "W", "V"],
            "sku_id": ["A", "B", "A"],
            "y": [2.0, 1.0, 4.0],
            "m": [1.0, 1.0, 2.0],
            "scale_sq": [1.0, 1.0, 1.0],
            "weight": [1.0, 1.0, 2.0],
        }
    )
    out = wrmsse(df, ["m"], "y", None, by=["warehouse_id"]).sort("warehouse_id")
    assert out["value"].to_list() == [pytest.approx(2.0), pytest.approx(0.5)]
