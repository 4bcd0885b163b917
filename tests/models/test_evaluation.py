"""The backtest table: rows per fold and system, censored share, small folds refused."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from models.evaluation import BacktestTooSmall, fold_table, row_counts, summarize_backtest

C1, C2 = dt.datetime(2025, 1, 1), dt.datetime(2025, 2, 1)


def test_row_counts_and_censored_share_per_fold() -> None:
    df = pl.DataFrame(
        {
            "cutoff": [C1, C1, C1, C1],
            "y": [1.0, None, None, 2.0],
            "y_lower": [None, 5.0, None, None],  # the third row: lost, neither known nor censored
            "m_q50": [1.0, 1.0, 1.0, None],
        }
    )
    out = row_counts(df, ["m"], "y", lower_col="y_lower", prediction="{model}_q50")
    values = dict(zip(out["metric"], out["value"], strict=True))
    assert values == {"n_rows": 2.0, "censored_share": 0.5}


def _metrics(rows: dict[dt.datetime, float]) -> pl.DataFrame:
    parts = []
    for cutoff, n in rows.items():
        for model, brier in (("transitcast", 0.1), ("prevalence", 0.2)):
            parts += [
                (cutoff, "overall", "all", model, "n_rows", n),
                (cutoff, "overall", "all", model, "brier", brier + (0.5 if n < 100 else 0.0)),
            ]
    return pl.DataFrame(
        parts, schema=["cutoff", "slice", "slice_value", "model", "metric", "value"], orient="row"
    )


def test_summary_leaves_out_and_lists_folds_below_the_minimum() -> None:
    summary = summarize_backtest(_metrics({C1: 4.0, C2: 500.0}), min_fold_rows=200)
    assert summary.value("transitcast", "brier") == pytest.approx(0.1)  # the 4-row fold is not averaged in
    row = summary.table.filter((pl.col("model") == "transitcast") & (pl.col("metric") == "brier"))
    assert (row["folds"].item(), row["test_rows"].item()) == (1, 500)
    assert summary.flagged["cutoff"].unique().to_list() == [C1]
    assert fold_table(_metrics({C1: 4.0, C2: 500.0}), "brier").height == 4


def test_summary_refuses_when_every_fold_is_too_small() -> None:
    with pytest.raises(BacktestTooSmall, match="fewer than 200 test rows.*--fold-days"):
        summarize_backtest(_metrics({C1: 4.0, C2: 12.0}), min_fold_rows=200)
