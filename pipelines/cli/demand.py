"""Stage: command line, demand forecasting: `forecast demand`; `train|backtest|tune demand` dispatch here.

Commands register on `pipelines.cli.main.app`; heavy libraries are imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli.main import _fail, _step, app, console

__all__ = ["backtest_demand_command", "forecast", "train_demand_command", "tune_demand_command"]

MIN_CUTOFFS = 6


def _print_table(title: str, summary: Any, metrics: tuple[str, ...]) -> None:
    from rich.table import Table

    wide = (
        summary.filter(summary["metric"].is_in(list(metrics)))
        .pivot(on="model", index="metric", values="value")
        .sort("metric")
    )
    table = Table(title=title, title_justify="left")
    for col in wide.columns:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in wide.iter_rows():
        table.add_row(str(row[0]), *[f"{v:.4g}" if isinstance(v, float) else "" for v in row[1:]])
    console.print(table)


_HEADLINE = (
    "wrmsse",
    "rmsse",
    "scaled_pinball",
    "pinball",
    "mase",
    "coverage_q50",
    "coverage_q80",
    "coverage_q90",
    "coverage_q95",
)


def _config(folds: int) -> Any:
    from models.demand_tasks import DemandTaskConfig

    if folds < MIN_CUTOFFS:
        console.print(f"demand backtests use at least {MIN_CUTOFFS} cutoffs (asked {folds})")
    return DemandTaskConfig(n_cutoffs=max(folds, MIN_CUTOFFS))


def train_demand_command(folds: int = MIN_CUTOFFS, track: bool = True) -> None:
    """`transitcast train demand`: run the train-demand flow and print the backtest table."""
    from pipelines.flows.demand import train_demand

    with _step("flow train-demand (backtest, fit, MLflow)"):
        result = train_demand(_config(folds), track=track)
    _print_table("demand: backtest (mean over cutoffs)", result["summary"], _HEADLINE)
    decision = result["decision"]
    if decision:
        alias = "champion" if decision["promoted"] else "challenger"
        console.print(f"  {decision['model']} v{decision['version']} -> {alias}: {decision['reason']}")
    console.print(f"  model directory: {result['model_dir']}")


def backtest_demand_command(folds: int = MIN_CUTOFFS, out: Path = Path("outputs/backtest")) -> None:
    """`transitcast backtest demand`: backtest table and per-cutoff, per-slice metrics (no registration)."""
    from models.demand_tasks import demand_backtest, prepare_demand
    from pipelines.config import Settings
    from pipelines.flows.demand import (
        demand_summary,
        load_demand_oracle,
        load_demand_tables,
        slice_metrics,
    )

    settings = Settings()
    config = _config(folds)
    tables = load_demand_tables(settings.validated_dir)
    with _step("building the weekly panel and features"):
        prepared = prepare_demand(tables, config)
    with _step(f"backtest demand ({config.n_cutoffs} cutoffs)"):
        preds = demand_backtest(
            tables, config, oracle=load_demand_oracle(settings.raw_dir), prepared=prepared
        )
    metrics = slice_metrics(preds)
    out.mkdir(parents=True, exist_ok=True)
    metrics.write_parquet(out / "demand.parquet")
    _print_table("demand: backtest (mean over cutoffs)", demand_summary(metrics), _HEADLINE)
    console.print(f"per cutoff and slice: {out}/demand.parquet")


def tune_demand_command(trials: int = 10, timeout: float = 600.0, folds: int = 2) -> None:
    """`transitcast tune demand`: Optuna study; the next `train demand` uses the best parameters."""
    from pipelines.flows.demand import tune_demand

    with _step(f"tuning demand: {trials} trials or {timeout:.0f} s"):
        study = tune_demand(trials, folds, timeout)
    console.print(f"best {study.best_value:.5g} with {study.best_params}")
    console.print("saved to outputs/tuning/demand/demand.json; `transitcast train demand` uses it")


@app.command()
def forecast(
    what: Annotated[str, typer.Argument(help="What to forecast: demand.")] = "demand",
    week: Annotated[
        str | None,
        typer.Option(help="First forecast ISO week YYYY-Www (default: the week after the last sales date)."),
    ] = None,
    paths: Annotated[int, typer.Option(help="Sample paths per SKU x warehouse.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sample paths.")] = 0,
) -> None:
    """Weekly demand quantiles 1-16 weeks ahead per SKU x warehouse, with sample paths (weekly-forecast)."""
    import polars as pl

    from features.demand_panel import iso_week_start
    from pipelines.flows.demand import weekly_forecast

    if what != "demand":
        raise _fail(f"unknown forecast {what!r}; choose demand")
    if week is not None:
        try:
            iso_week_start(week)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
    try:
        with _step(f"flow weekly-forecast ({week or 'next week'})"):
            out = weekly_forecast(week, n_paths=paths, seed=seed)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    frame = pl.read_parquet(out / "forecast.parquet")
    top = (
        frame.filter(pl.col("horizon") <= 4)
        .group_by("warehouse_id", "sku_id")
        .agg(pl.col("demand_mean").sum().alias("next_4w"))
        .sort("next_4w", descending=True)
        .head(5)
    )
    sample = frame.join(top.select("warehouse_id", "sku_id"), on=["warehouse_id", "sku_id"]).filter(
        pl.col("horizon") <= 4
    )
    from rich.table import Table

    table = Table(title=f"demand forecast {frame['forecast_week'][0]} (top 5 series, weeks 1-4)")
    cols = ["warehouse_id", "sku_id", "horizon", "demand_mean", "demand_q50", "demand_q90", "demand_q95"]
    for c in cols:
        table.add_column(c, justify="left" if c.endswith("_id") else "right")
    for row in sample.select(cols).iter_rows():
        table.add_row(*[f"{v:.1f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    n_series = frame.select("warehouse_id", "sku_id").n_unique()
    console.print(f"{n_series} series x {frame['horizon'].max()} weeks -> {out}")
