"""Stage: command line, demand: `train demand`, `backtest demand`, `tune demand`, `forecast demand`.

Thin wiring over `pipelines.flows.demand` and `models.demand_tasks` / `models.demand_eval`. Reads the
validated demand tables; writes the model, backtest metrics, tuning study and weekly forecast folders at the
catalog's paths. Heavy libraries are imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.cli.session import console, fail, print_study, print_summary, settings_of, step

if TYPE_CHECKING:
    from models.demand_tasks import DemandTaskConfig
    from pipelines.config import Settings
    from pipelines.flows.demand import DemandTraining, WeeklyForecast

__all__ = ["backtest", "forecast", "run_forecast", "run_train", "train", "tune"]

MIN_CUTOFFS = 6
HEADLINE = (
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
_TITLE = "demand: backtest (mean over cutoffs)"
_FOLDS_HELP = f"Rolling-origin cutoffs (at least {MIN_CUTOFFS})."


def _config(folds: int) -> DemandTaskConfig:
    from models.demand_tasks import DemandTaskConfig

    if folds < MIN_CUTOFFS:
        console.print(f"demand backtests use at least {MIN_CUTOFFS} cutoffs (asked {folds})")
    return DemandTaskConfig(n_cutoffs=max(folds, MIN_CUTOFFS))


def run_train(settings: Settings, folds: int = MIN_CUTOFFS, track: bool = True) -> DemandTraining:
    """Run the train-demand flow and print its backtest table and promotion decision."""
    from pipelines.flows.demand import train_demand

    with step("flow train-demand (backtest, fit, MLflow)", fail_on=(FileNotFoundError,)):
        result = train_demand(_config(folds), settings=settings, track=track)
    print_summary(_TITLE, result.summary, HEADLINE)
    if result.decision is not None:
        d = result.decision
        console.print(f"  {d.model} v{d.version} -> {'champion' if d.promoted else 'challenger'}: {d.reason}")
    console.print(f"  model directory: {result.model_dir}")
    return result


def train(
    ctx: typer.Context,
    folds: Annotated[int, typer.Option(help=_FOLDS_HELP)] = MIN_CUTOFFS,
    track: Annotated[bool, typer.Option(help="Log to MLflow, register, apply the promotion gate.")] = True,
) -> None:
    """Backtest the demand model next to its baselines, fit, log, register, gate (flow train-demand)."""
    run_train(settings_of(ctx), folds, track)


def backtest(
    ctx: typer.Context,
    folds: Annotated[int, typer.Option(help=_FOLDS_HELP)] = MIN_CUTOFFS,
    out: Annotated[
        Path | None, typer.Option(help="Folder of the per-cutoff, per-slice metrics (<outputs>/backtest).")
    ] = None,
) -> None:
    """Print the demand model against its baselines (and the oracle); no registration."""
    from pipelines.flows._tables import DEMAND_TABLES, load_oracle, load_tables

    catalog = settings_of(ctx).catalog
    try:
        tables = load_tables(catalog.data.validated, DEMAND_TABLES)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc
    from models.backtest import backtest_summary
    from models.demand_eval import slice_metrics
    from models.demand_tasks import demand_backtest, prepare_demand

    config = _config(folds)
    with step("building the weekly panel and features"):
        prepared = prepare_demand(tables, config)
    oracle = load_oracle(catalog.data.raw, "demand_weekly")
    with step(f"backtest demand ({config.n_cutoffs} cutoffs)"):
        preds = demand_backtest(tables, config, oracle=oracle, prepared=prepared)
    metrics = slice_metrics(preds)
    path = catalog.outputs.backtest_metrics("demand", out)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_parquet(path)
    print_summary(_TITLE, backtest_summary(metrics), HEADLINE)
    console.print(f"per cutoff and slice: {path}")


def tune(
    ctx: typer.Context,
    trials: Annotated[int, typer.Option(help="Trial budget.")] = 10,
    timeout: Annotated[float, typer.Option(help="Time budget in seconds.")] = 600.0,
    folds: Annotated[int, typer.Option(help="Time-ordered cutoffs per trial.")] = 2,
) -> None:
    """Tune the demand model with Optuna; the next `train demand` uses the best parameters."""
    from pipelines.adapters.optuna import best_params_file
    from pipelines.flows.demand import STUDY, tune_demand

    settings = settings_of(ctx)
    with step(f"tuning demand: {trials} trials or {timeout:.0f} s", fail_on=(FileNotFoundError,)):
        study = tune_demand(trials, folds, timeout, settings=settings)
    print_study(study, best_params_file(STUDY, settings.catalog.outputs.tuning(STUDY)), "demand")


def run_forecast(settings: Settings, week: str | None, paths: int = 200, seed: int = 0) -> WeeklyForecast:
    """Run the weekly-forecast flow and print the top series of the next 4 weeks."""
    import polars as pl
    from rich.table import Table

    from features.demand_panel import iso_week_start
    from pipelines.flows.demand import weekly_forecast

    if week is not None:
        try:
            iso_week_start(week)
        except ValueError as exc:
            raise fail(str(exc)) from exc
    with step(f"flow weekly-forecast ({week or 'next week'})", fail_on=(FileNotFoundError, ValueError)):
        result = weekly_forecast(week, settings=settings, n_paths=paths, seed=seed)
    frame = pl.read_parquet(result.files.forecast)
    near = frame.filter(pl.col("horizon") <= 4)
    top = (
        near.group_by("warehouse_id", "sku_id")
        .agg(pl.col("demand_mean").sum().alias("next_4w"))
        .sort("next_4w", descending=True)
        .head(5)
    )
    sample = near.join(top.select("warehouse_id", "sku_id"), on=["warehouse_id", "sku_id"])
    table = Table(title=f"demand forecast {result.week} (top 5 series, weeks 1-4)")
    cols = ["warehouse_id", "sku_id", "horizon", "demand_mean", "demand_q50", "demand_q90", "demand_q95"]
    for c in cols:
        table.add_column(c, justify="left" if c.endswith("_id") else "right")
    for row in sample.select(cols).iter_rows():
        table.add_row(*[f"{v:.1f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    weeks = frame.get_column("horizon").n_unique()
    console.print(f"{result.n_series} series x {weeks} weeks -> {result.files.folder}")
    return result


def forecast(
    ctx: typer.Context,
    week: Annotated[
        str | None,
        typer.Option(help="First forecast ISO week YYYY-Www (default: the week after the last sales date)."),
    ] = None,
    paths: Annotated[int, typer.Option(help="Sample paths per SKU x warehouse.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sample paths.")] = 0,
) -> None:
    """Weekly demand quantiles 1-16 weeks ahead per SKU x warehouse, with sample paths (weekly-forecast)."""
    run_forecast(settings_of(ctx), week, paths, seed)
