"""Metrics against hand-computed values on 3-6 row frames."""

from __future__ import annotations

import math
from functools import partial

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.metrics import (
    auc,
    brier,
    coverage,
    ece,
    evaluate,
    interval_width,
    log_loss,
    mae,
    pinball,
    precision_at_k,
    quantile_col,
    relative_to,
    rmse,
)
from models.metrics_scaled import mase, scaled_pinball, seasonal_naive_scale


def _values(out: pl.DataFrame) -> dict[tuple[str, str], float | None]:
    return {(r["model"], r["metric"]): r["value"] for r in out.iter_rows(named=True)}


def test_quantile_col_names() -> None:
    assert quantile_col("eta_days", 0.5) == "eta_days_q50"
    assert quantile_col("m", 0.95) == "m_q95"
    assert quantile_col("m", 0.975) == "m_q97_5"
    with pytest.raises(ValueError):
        quantile_col("m", 1.0)


def test_mae_rmse_long_frame_per_cutoff() -> None:
    df = pl.DataFrame(
        {"cutoff": [1, 1, 1, 2, 2], "y": [1.0, 2.0, 4.0, 0.0, 3.0], "m": [1.0, 3.0, 2.0, 1.0, 1.0]}
    )
    expected = pl.DataFrame(
        {
            "cutoff": [1, 2],
            "model": ["m", "m"],
            "metric": ["mae", "mae"],
            "value": [1.0, 1.5],
        }
    )
    assert_frame_equal(mae(df, ["m"], "y"), expected)
    r = _values(rmse(df.filter(pl.col("cutoff") == 1), ["m"], "y"))
    assert r[("m", "rmse")] == pytest.approx((5 / 3) ** 0.5)


def test_null_targets_and_null_predictions_are_excluded() -> None:
    df = pl.DataFrame({"y": [1.0, None, 3.0, 5.0], "a": [2.0, 100.0, 3.0, None], "b": [1.0, 1.0, 1.0, 1.0]})
    out = _values(mae(df, ["a", "b"], "y", cutoff_col=None))
    assert out[("a", "mae")] == pytest.approx(0.5)  # rows 0 and 2 only
    assert out[("b", "mae")] == pytest.approx(2.0)  # rows 0, 2, 3


def test_missing_cutoff_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="cutoff_col=None"):
        mae(pl.DataFrame({"y": [1.0], "m": [1.0]}), ["m"], "y")


QDF = pl.DataFrame(
    {"y": [1.0, 5.0], "a_q50": [2.0, 2.0], "a_q80": [3.0, 3.0], "a_q95": [4.0, 6.0], "scale": [2.0, 2.0]}
)


def test_pinball_per_quantile_and_mean() -> None:
    out = _values(pinball(QDF, ["a"], "y", cutoff_col=None))
    # q50: (0.5 + 1.5) / 2; q80: (0.4 + 1.6) / 2; q95: (0.15 + 0.05) / 2
    assert out[("a", "pinball_q50")] == pytest.approx(1.0)
    assert out[("a", "pinball_q80")] == pytest.approx(1.0)
    assert out[("a", "pinball_q95")] == pytest.approx(0.1)
    assert out[("a", "pinball")] == pytest.approx(0.7)


def test_coverage_and_interval_width() -> None:
    cov = _values(coverage(QDF, ["a"], "y", cutoff_col=None))
    assert cov == {("a", "coverage_q50"): 0.5, ("a", "coverage_q80"): 0.5, ("a", "coverage_q95"): 1.0}
    width = _values(interval_width(QDF, ["a"], "y", cutoff_col=None))
    assert width == {("a", "interval_width_q50_q95"): 3.0}
    width = _values(interval_width(QDF, ["a"], "y", cutoff_col=None, lower=0.8, upper=0.95))
    assert width == {("a", "interval_width_q80_q95"): 2.0}


def test_scaled_pinball_and_mase() -> None:
    out = _values(scaled_pinball(QDF, ["a"], "y", cutoff_col=None))
    assert out[("a", "scaled_pinball")] == pytest.approx(0.35)
    df = QDF.with_columns(a=pl.lit(2.0))
    assert _values(mase(df, ["a"], "y", cutoff_col=None)) == {("a", "mase"): pytest.approx(1.0)}


def test_seasonal_naive_scale() -> None:
    train = pl.DataFrame({"sku": ["x"] * 4 + ["z"], "t": [1, 2, 3, 4, 1], "y": [1.0, 3.0, 2.0, 6.0, 5.0]})
    out = seasonal_naive_scale(train, "y", ["sku"], "t")
    expected = pl.DataFrame({"sku": ["x", "z"], "scale": [(2 + 1 + 4) / 3, None]})
    assert_frame_equal(out, expected)


def test_brier_and_log_loss() -> None:
    df = pl.DataFrame({"y": [1, 0, 1], "p": [0.8, 0.4, 1.0]})
    assert _values(brier(df, ["p"], "y", cutoff_col=None))[("p", "brier")] == pytest.approx(0.2 / 3)
    expected = -(math.log(0.8) + math.log(0.6)) / 3  # p = 1.0 is clipped to 1 - 1e-15: loss ~ 0
    out = _values(log_loss(df, ["p"], "y", cutoff_col=None))[("p", "log_loss")]
    assert out == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("y", "p", "expected"),
    [
        pytest.param([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 1.0, id="perfect"),
        pytest.param([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1], 0.0, id="inverted"),
        pytest.param([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5, id="all-tied"),
        pytest.param([0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.9], 4 / 6, id="mixed"),
        pytest.param([0, 1, 0], [0.2, 0.2, 0.1], 0.75, id="tie-across-classes"),
        pytest.param([1, 1, 1], [0.1, 0.5, 0.9], None, id="single-class"),
    ],
)
def test_auc_rank_based(y: list[int], p: list[float], expected: float | None) -> None:
    out = _values(auc(pl.DataFrame({"y": y, "m": p}), ["m"], "y", cutoff_col=None))[("m", "auc")]
    assert out == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("y", "p", "kwargs", "expected"),
    [
        pytest.param([0, 1, 1], [0.1, 0.8, 0.4], {}, (0.1 + 0.2 + 0.6) / 3, id="one-row-per-bin"),
        pytest.param([0, 1, 1], [0.2, 0.2, 0.2], {}, 2 / 3 - 0.2, id="one-bin"),
        pytest.param([1, 1], [1.0, 0.95], {}, 0.025, id="p-equal-1-in-last-bin"),
        pytest.param([0, 1, 1], [0.1, 0.8, 0.4], {"n_bins": 1}, abs(2 / 3 - 1.3 / 3), id="single-bin"),
        pytest.param(
            [0, 1, 1, 0],
            [0.1, 0.4, 0.8, 0.9],
            {"n_bins": 2, "strategy": "quantile"},
            0.5 * abs(0.5 - 0.25) + 0.5 * abs(0.5 - 0.85),
            id="equal-mass",
        ),
        pytest.param(
            [0, 1, 1],
            [0.3, 0.3, 0.9],
            {"n_bins": 3, "strategy": "quantile"},
            (2 / 3) * abs(0.5 - 0.3) + (1 / 3) * 0.1,
            id="equal-mass-ties-share-a-bin",
        ),
    ],
)
def test_ece(y: list[int], p: list[float], kwargs: dict, expected: float) -> None:
    out = ece(pl.DataFrame({"y": y, "m": p}), ["m"], "y", cutoff_col=None, **kwargs)
    assert out["value"].item() == pytest.approx(expected)


def test_ece_names_and_groups() -> None:
    df = pl.DataFrame({"cutoff": [1, 1, 2, 2], "y": [0, 1, 1, 1], "m": [0.0, 1.0, 0.5, 0.5]})
    out = ece(df, ["m"], "y", strategy="quantile")
    assert out["metric"].to_list() == ["ece_quantile", "ece_quantile"]
    assert out["value"].to_list() == pytest.approx([0.0, 0.5])


@pytest.mark.parametrize(
    ("y", "p", "k", "expected"),
    [
        pytest.param([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1], 0.2, 1.0, id="top-1"),
        pytest.param([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1], 0.4, 0.5, id="top-2"),
        pytest.param([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1], 0.5, 2 / 3, id="ceil-2.5-to-3"),
        pytest.param([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1], 1.0, 0.4, id="k-1-is-prevalence"),
        pytest.param([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1], 0.01, 1.0, id="at-least-one-row"),
        pytest.param([0, 1, 1, 0], [0.9, 0.5, 0.5, 0.5], 0.5, 0.5 * (0 + 1 * 2 / 3), id="tie-at-boundary"),
        pytest.param([1, 0, 0], [0.5, 0.5, 0.5], 1 / 3, 1 / 3, id="all-tied"),
    ],
)
def test_precision_at_k(y: list[int], p: list[float], k: float, expected: float) -> None:
    out = precision_at_k(pl.DataFrame({"y": y, "m": p}), ["m"], "y", cutoff_col=None, k=k)
    assert out["value"].item() == pytest.approx(expected)


def test_precision_at_k_name_and_invalid_k() -> None:
    df = pl.DataFrame({"y": [1, 0], "m": [0.9, 0.1]})
    assert precision_at_k(df, ["m"], "y", cutoff_col=None, k=0.1)["metric"].item() == "precision_at_10"
    with pytest.raises(ValueError):
        precision_at_k(df, ["m"], "y", cutoff_col=None, k=0.0)


def test_by_groups_and_evaluate_concatenates() -> None:
    df = pl.DataFrame(
        {
            "cutoff": [1, 1, 1, 1],
            "mode": ["sea", "sea", "air", "air"],
            "y": [1.0, 3.0, 2.0, 2.0],
            "a": [2.0, 2.0, 2.0, 4.0],
            "b": [1.0, 3.0, 2.0, 2.0],
        }
    )
    out = evaluate(df, [mae, partial(rmse)], ["a", "b"], "y", by=["mode"])
    assert out.columns == ["cutoff", "mode", "model", "metric", "value"]
    assert out.height == 2 * 2 * 2
    vals = {(r["mode"], r["model"], r["metric"]): r["value"] for r in out.iter_rows(named=True)}
    assert vals[("sea", "a", "mae")] == 1.0
    assert vals[("air", "a", "rmse")] == pytest.approx(2**0.5)
    assert vals[("air", "b", "mae")] == 0.0


def test_relative_to_reference_model() -> None:
    metrics = pl.DataFrame(
        {
            "cutoff": [1, 1, 1, 2, 2],
            "model": ["lgbm", "oracle", "base", "lgbm", "oracle"],
            "metric": ["pinball"] * 5,
            "value": [1.2, 1.0, 2.0, 3.0, 0.0],
        }
    )
    out = relative_to(metrics, "oracle")
    assert out["value"].to_list() == [pytest.approx(1.2), 1.0, 2.0, None, None]
    with pytest.raises(ValueError):
        relative_to(metrics, "nope")


def test_coverage_tolerates_float_rounding_of_an_integer_target() -> None:
    df = pl.DataFrame({"y": [6.0, 6.0], "a_q50": [5.999999999999999, 6.0], "a_q80": [6.0, 7.0]})
    cov = _values(coverage(df, ["a"], "y", cutoff_col=None, quantiles=(0.5, 0.8)))
    assert cov == {("a", "coverage_q50"): 1.0, ("a", "coverage_q80"): 1.0}


def test_coverage_counts_an_open_row_past_its_quantile_as_a_miss() -> None:
    df = pl.DataFrame(
        {
            "y": [1.0, None, None],
            "age": [None, 9.0, 2.0],  # the second is already 9 days old: past a 5-day P80
            "a_q80": [5.0, 5.0, 5.0],
        }
    )
    cov = _values(coverage(df, ["a"], "y", cutoff_col=None, quantiles=(0.8,), lower_col="age"))
    assert cov == {("a", "coverage_q80"): 0.5}  # the third is undecided: left out
