"""Stage: reporting. Figures for model reports: reliability diagrams, quantile coverage, forecast fan charts.

Pure: backtest frames in, matplotlib figures out (the Agg backend, no display needed). The training flow
logs them to MLflow; the planner report embeds them.
"""

from __future__ import annotations

import datetime as dt

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["coverage_figure", "forecast_fan_chart", "reliability_figure"]


def reliability_figure(preds: pl.DataFrame, systems: list[str], target: str, n_bins: int = 10) -> Figure:
    """Observed frequency against mean predicted probability, per equal-mass bin, for each system."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for system in systems:
        data = preds.filter(pl.col(target).is_not_null() & pl.col(system).is_not_null())
        if data.is_empty():
            continue
        binned = (
            data.with_columns((pl.col(system).rank("ordinal") * n_bins / (pl.len() + 1)).floor().alias("bin"))
            .group_by("bin")
            .agg(pl.col(system).mean().alias("p"), pl.col(target).mean().alias("y"))
            .sort("bin")
        )
        ax.plot(binned["p"], binned["y"], marker="o", label=system)
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title=f"reliability: {target}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def coverage_figure(metrics: pl.DataFrame, title: str) -> Figure:
    """Empirical coverage of each quantile per system (overall, mean over folds) against nominal."""
    cov = (
        metrics.filter((pl.col("slice") == "overall") & pl.col("metric").str.starts_with("coverage_q"))
        .group_by("model", "metric")
        .agg(pl.col("value").mean())
        .with_columns(pl.col("metric").str.extract(r"q(\d+)").cast(pl.Int32).alias("nominal"))
        .sort("model", "nominal")
    )
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (model,), part in cov.group_by("model", maintain_order=True):
        ax.plot(part["nominal"], part["value"] * 100, marker="o", label=str(model))
    ax.plot([50, 95], [50, 95], color="grey", linestyle="--", linewidth=1, label="nominal")
    ax.set(xlabel="nominal quantile (%)", ylabel="share of targets below it (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def forecast_fan_chart(
    forecast: pl.DataFrame, panel: pl.DataFrame, n_series: int = 4, history_weeks: int = 26
) -> Figure:
    """History, P50 and the P50-P95 / P80-P90 bands of the series with the largest expected demand.

    Args:
        forecast: the demand forecast contract frame (`demand_mean`, `demand_q50..q95` by `week_start`).
        panel: the weekly panel (history: `units` per `week_start`).
        n_series: how many series (largest expected demand over the horizon).
        history_weeks: weeks of history before the cutoff.
    """
    top = (
        forecast.group_by("warehouse_id", "sku_id")
        .agg(pl.col("demand_mean").sum())
        .sort("demand_mean", "warehouse_id", "sku_id", descending=[True, False, False])
        .head(n_series)
    )
    cutoff = forecast["cutoff_date"][0]
    fig, axes = plt.subplots(len(top), 1, figsize=(8, 2.4 * max(len(top), 1)), squeeze=False)
    for ax, (wh, sku, _) in zip(axes[:, 0], top.iter_rows(), strict=False):
        hist = panel.filter(
            (pl.col("warehouse_id") == wh)
            & (pl.col("sku_id") == sku)
            & (pl.col("week_start") < cutoff)
            & (pl.col("week_start") >= cutoff - dt.timedelta(weeks=history_weeks))
        )
        fc = forecast.filter((pl.col("warehouse_id") == wh) & (pl.col("sku_id") == sku)).sort("horizon")
        ax.plot(hist["week_start"], hist["units"], color="black", linewidth=1, label="sales")
        ax.fill_between(fc["week_start"], fc["demand_q50"], fc["demand_q95"], alpha=0.2, label="P50-P95")
        ax.fill_between(fc["week_start"], fc["demand_q80"], fc["demand_q90"], alpha=0.3, label="P80-P90")
        ax.plot(fc["week_start"], fc["demand_q50"], linewidth=1.5, label="P50")
        ax.plot(fc["week_start"], fc["demand_mean"], linestyle="--", linewidth=1, label="mean")
        ax.set_title(f"{wh} / {sku}", fontsize=9)
        ax.set_ylabel("units / week", fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=5, loc="upper left")
    fig.tight_layout()
    return fig
