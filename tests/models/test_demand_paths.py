"""Tests for models.demand_paths: marginals match the forecast, correlation, lead-time demand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.demand_paths import lead_time_demand, quantile_function, sample_paths

H = 4


def _forecast(n_series: int = 2, h: int = H) -> pl.DataFrame:
    rows = []
    for s in range(n_series):
        for k in range(1, h + 1):
            base = 10.0 * (s + 1) + k
            rows.append(
                {
                    "warehouse_id": "WH-A",
                    "sku_id": f"SKU{s}",
                    "horizon": k,
                    "demand_mean": base * 1.05,
                    "demand_q50": base,
                    "demand_q80": base * 1.3,
                    "demand_q90": base * 1.5,
                    "demand_q95": base * 1.7,
                }
            )
    return pl.DataFrame(rows).with_columns(pl.col("horizon").cast(pl.Int32))


def test_sample_paths_schema_and_marginals_match_quantiles() -> None:
    fc = _forecast()
    paths = sample_paths(fc, n_paths=4000, seed=1, rho=0.6)
    assert paths.schema == {
        "warehouse_id": pl.String,
        "sku_id": pl.String,
        "path_id": pl.Int32,
        "horizon": pl.Int32,
        "units": pl.Float64,
    }
    assert paths.height == 2 * 4000 * H
    assert paths["units"].min() >= 0
    emp = paths.group_by("sku_id", "horizon").agg(
        *[pl.col("units").quantile(q).alias(f"e{int(q * 100)}") for q in (0.5, 0.8, 0.9, 0.95)],
        pl.col("units").mean().alias("emean"),
    )
    joined = emp.join(fc, on=["sku_id", "horizon"])
    for q in (50, 80, 90, 95):
        rel = (joined[f"e{q}"] / joined[f"demand_q{q}"] - 1).abs().max()
        assert rel < 0.05, q
    assert ((joined["emean"] / joined["demand_mean"]) - 1).abs().max() < 0.05


def test_sample_paths_deterministic_and_correlated() -> None:
    fc = _forecast(1)
    a = sample_paths(fc, n_paths=3000, seed=3, rho=0.8)
    b = sample_paths(fc, n_paths=3000, seed=3, rho=0.8)
    assert a.equals(b)
    wide = a.pivot(on="horizon", index="path_id", values="units")
    corr_hi = np.corrcoef(wide["1"].to_numpy(), wide["2"].to_numpy())[0, 1]
    ind = sample_paths(fc, n_paths=3000, seed=3, rho=0.0).pivot(on="horizon", index="path_id", values="units")
    corr_0 = np.corrcoef(ind["1"].to_numpy(), ind["2"].to_numpy())[0, 1]
    assert corr_hi > 0.6
    assert abs(corr_0) < 0.1


def test_sample_paths_rejects_crossing_quantiles() -> None:
    fc = _forecast(1).with_columns(
        pl.when(pl.col("horizon") == 2).then(0.0).otherwise(pl.col("demand_q80")).alias("demand_q80")
    )
    with pytest.raises(ValueError, match="SKU0 horizon 2"):
        sample_paths(fc)


def test_sample_paths_rejects_ragged_horizons() -> None:
    fc = _forecast(2).filter(~((pl.col("sku_id") == "SKU1") & (pl.col("horizon") == 3)))
    with pytest.raises(ValueError, match="SKU1"):
        sample_paths(fc)


def test_quantile_function_hits_knots() -> None:
    q = np.array([[2.0, 4.0, 5.0, 7.0]])
    u = np.array([[0.5, 0.8, 0.9, 0.95]])
    assert np.allclose(quantile_function(u, np.array([3.0]), q), q)


def test_lead_time_demand_fractional_weeks() -> None:
    paths = pl.DataFrame(
        {
            "warehouse_id": ["W"] * 6,
            "sku_id": ["S"] * 6,
            "path_id": pl.Series([0, 0, 0, 1, 1, 1], dtype=pl.Int32),
            "horizon": pl.Series([1, 2, 3, 1, 2, 3], dtype=pl.Int32),
            "units": [1.0, 2.0, 4.0, 10.0, 20.0, 40.0],
        }
    )
    same = lead_time_demand(
        paths, pl.DataFrame({"warehouse_id": ["W"], "sku_id": ["S"], "cover_weeks": [2.5]})
    )
    assert same["lead_time_demand"].to_list() == [5.0, 50.0]
    per_path = pl.DataFrame(
        {"warehouse_id": ["W", "W"], "sku_id": ["S", "S"], "path_id": [0, 1], "cover_weeks": [1.0, 0.25]}
    ).with_columns(pl.col("path_id").cast(pl.Int32))
    out = lead_time_demand(paths, per_path)
    assert out["lead_time_demand"].to_list() == [1.0, 2.5]
    with pytest.raises(ValueError, match="W/S"):
        lead_time_demand(paths, pl.DataFrame({"warehouse_id": ["W"], "sku_id": ["S"], "cover_weeks": [3.5]}))
