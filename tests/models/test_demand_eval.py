"""Demand evaluation: slice metrics of a backtest and the tuning folds' arithmetic, on hand-made frames."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from models.backtest import backtest_summary
from models.demand_eval import slice_metrics, truncate_to_cutoff, tuning_cutoffs
from models.demand_tasks import DemandTaskConfig, backtest_cutoffs

MONDAY = dt.date(2025, 6, 2)


def _preds() -> pl.DataFrame:
    """Two warehouses, one cutoff; lgbm's P95 covers 3 of the 4 targets (all but A/s2)."""
    y = [2.0, 10.0, 4.0, 0.0]
    return pl.DataFrame(
        {
            "cutoff": [MONDAY] * 4,
            "warehouse_id": ["A", "A", "B", "B"],
            "sku_id": ["s1", "s2", "s1", "s2"],
            "volume_class": ["slow", "fast", "fast", "slow"],
            "y": y,
            "scale": [1.0] * 4,
            "lgbm": [2.0, 5.0, 4.0, 0.0],
            "lgbm_q50": [2.0, 5.0, 4.0, 0.0],
            "lgbm_q80": [3.0, 6.0, 5.0, 1.0],
            "lgbm_q90": [3.0, 7.0, 5.0, 1.0],
            "lgbm_q95": [4.0, 8.0, 6.0, 1.0],
        }
    )


def test_slice_metrics_reports_overall_and_each_slice() -> None:
    metrics = slice_metrics(_preds())
    assert metrics.columns == ["cutoff", "slice", "slice_value", "model", "metric", "value"]
    slices = metrics.select("slice", "slice_value").unique().sort("slice", "slice_value").rows()
    assert slices == [
        ("overall", ""),
        ("volume_class", "fast"),
        ("volume_class", "slow"),
        ("warehouse_id", "A"),
        ("warehouse_id", "B"),
    ]
    cov = metrics.filter(pl.col("metric") == "coverage_q95").select("slice_value", "value")
    assert dict(cov.rows()) == pytest.approx({"": 0.75, "A": 0.5, "B": 1.0, "fast": 0.5, "slow": 1.0})


def test_backtest_summary_averages_the_overall_rows_over_folds() -> None:
    metrics = pl.DataFrame(
        {
            "cutoff": [1, 2, 1],
            "slice": ["overall", "overall", "warehouse_id"],
            "model": ["m", "m", "m"],
            "metric": ["mae", "mae", "mae"],
            "value": [1.0, 3.0, 100.0],
        }
    )
    assert backtest_summary(metrics).rows() == [("m", "mae", 2.0)]


def test_tuning_cutoffs_end_before_the_first_reported_backtest_cutoff() -> None:
    weeks = pl.date_range(dt.date(2023, 1, 2), dt.date(2025, 11, 24), "1w", eager=True)
    panel = pl.DataFrame({"week_start": weeks})
    config = DemandTaskConfig()
    h = config.features.horizons
    reported = backtest_cutoffs(panel, config.n_cutoffs, config.step_weeks, h)
    tuned = tuning_cutoffs(panel, config, 2)
    assert len(tuned) == 2 and tuned == sorted(tuned)
    assert max(tuned) + dt.timedelta(weeks=h) <= reported[0]  # tuning targets end before any reported week


def test_truncate_to_cutoff_keeps_targets_until_the_horizon_and_origins_until_the_cutoff() -> None:
    weeks = [MONDAY + dt.timedelta(weeks=k) for k in range(6)]
    panel = pl.DataFrame({"week_start": weeks})
    feats = pl.DataFrame({"origin_week": weeks})
    cut_panel, cut_feats = truncate_to_cutoff((panel, feats), weeks[2], horizons=2)
    assert cut_panel["week_start"].to_list() == weeks[:4]
    assert cut_feats["origin_week"].to_list() == weeks[:3]
