"""Stage: reporting. Figures for model reports: reliability diagrams and quantile coverage.

Pure: backtest frames in, matplotlib figures out (the Agg backend, no display needed). The training flow
logs them to MLflow; the planner report embeds them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["coverage_figure", "reliability_figure"]


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
