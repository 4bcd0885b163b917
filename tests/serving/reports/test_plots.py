"""Figures: each builds from a few hand-made rows, and inlines as a PNG."""

from __future__ import annotations

import base64
import datetime as dt

import polars as pl

from serving.reports.plots import (
    coverage_figure,
    figure_png_base64,
    planner_fan_figure,
    reliability_figure,
    stockout_risk_figure,
)


def _forecast() -> pl.DataFrame:
    weeks = [dt.date(2025, 3, 3) + dt.timedelta(weeks=h) for h in range(3)]
    return pl.DataFrame({"warehouse_id": ["W1"] * 3, "sku_id": ["S1"] * 3, "week_start": weeks,
                         "demand_mean": [5.0, 6.0, 7.0], "demand_q50": [5.0, 6.0, 6.0],
                         "demand_q80": [7.0, 8.0, 9.0], "demand_q90": [8.0, 9.0, 10.0],
                         "demand_q95": [9.0, 10.0, 12.0]})  # fmt: skip


def test_planner_fan_figure_one_panel_per_series_and_blank_spares() -> None:
    history = pl.DataFrame({"warehouse_id": ["W1"], "sku_id": ["S1"], "week_start": [dt.date(2025, 2, 24)],
                            "units": [4]})  # fmt: skip
    series = pl.DataFrame({"warehouse_id": ["W1", "W2"], "sku_id": ["S1", "S9"]})  # S9 has no data
    fig = planner_fan_figure(_forecast(), history, series)
    axes = fig.get_axes()
    assert len(axes) == 2 and axes[0].get_title() == "S1 @ W1" and axes[1].get_title() == "S9 @ W2"
    assert len(axes[0].lines) == 3 and len(axes[1].lines) == 0  # sales, P50, mean


def test_stockout_risk_figure_bars_in_percent() -> None:
    summary = pl.DataFrame({"warehouse_id": ["W1", "W2"], "mean_p_stockout": [0.1, 0.25]})
    fig = stockout_risk_figure(summary)
    heights = [p.get_height() for p in fig.get_axes()[0].patches]
    assert heights == [10.0, 25.0]


def test_model_figures_and_png_inline() -> None:
    preds = pl.DataFrame({"y": [0, 1, 1, 0, 1, 0], "model": [0.1, 0.9, 0.7, 0.2, 0.8, 0.3],
                          "untrained": [None] * 6}, schema_overrides={"untrained": pl.Float64})  # fmt: skip
    rel = reliability_figure(preds, ["model", "untrained"], "y", n_bins=2)
    assert [ln.get_label() for ln in rel.get_axes()[0].lines] == ["perfect", "model"]
    metrics = pl.DataFrame({"slice": ["overall"] * 2, "metric": ["coverage_q50", "coverage_q90"],
                            "model": ["m"] * 2, "value": [0.5, 0.88]})  # fmt: skip
    cov = coverage_figure(metrics, "coverage")
    assert cov.get_axes()[0].lines[0].get_ydata().tolist() == [50.0, 88.0]
    png = base64.b64decode(figure_png_base64(cov))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
