"""Stage: reporting. Every figure of the project: model reports and the planner report.

Pure: frames in, matplotlib figures out (the Agg backend, no display needed); `figure_png_base64` turns one
into an inline PNG. The training flows log the model figures (reliability diagrams, quantile coverage) to
MLflow; the planner report (`serving.reports.planner`) embeds the demand fan charts and the stock-out risk.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "coverage_figure",
    "figure_png_base64",
    "planner_fan_figure",
    "reliability_figure",
    "stockout_risk_figure",
]


def figure_png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG (90 dpi) for an inline `data:` image; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def planner_fan_figure(forecast: pl.DataFrame, history: pl.DataFrame, series: pl.DataFrame) -> Figure:
    """Weekly demand fan charts (history, mean and the P50/P80/P90/P95 bands), one panel per series."""
    n = max(series.height, 1)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (wh, sku) in zip(axes.flat, series.iter_rows(), strict=False):
        h = history.filter((pl.col("warehouse_id") == wh) & (pl.col("sku_id") == sku)).sort("week_start")
        f = forecast.filter((pl.col("warehouse_id") == wh) & (pl.col("sku_id") == sku)).sort("week_start")
        if h.height:
            ax.plot(h["week_start"], h["units"], color="#333333", linewidth=1.2, label="sales")
        if f.height:
            x = f["week_start"]
            ax.fill_between(x, 0, f["demand_q95"], color="#c6dbef", label="P95")
            ax.fill_between(x, 0, f["demand_q90"], color="#9ecae1", label="P90")
            ax.fill_between(x, 0, f["demand_q80"], color="#6baed6", label="P80")
            ax.plot(x, f["demand_q50"], color="#08519c", linewidth=1.5, label="P50")
            ax.plot(x, f["demand_mean"], color="#e6550d", linewidth=1, linestyle="--", label="mean")
        ax.set_title(f"{sku} @ {wh}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=30)
    for ax in list(axes.flat)[series.height :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def stockout_risk_figure(summary: pl.DataFrame) -> Figure:
    """Mean P(stock-out) this cycle per warehouse (`warehouse_summary` rows), as a bar chart."""
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.bar(summary["warehouse_id"], summary["mean_p_stockout"] * 100, color="#de2d26")
    ax.set(ylabel="mean P(stock-out) %", title="stock-out risk this cycle, by warehouse")
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


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
