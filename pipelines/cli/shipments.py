"""Stage: command line, shipment models: `train shipments`, `backtest shipments`, `tune shipments`.

Thin wiring over `pipelines.flows.train_shipments` / `tune_shipments` and `models.shipment_tasks`. Reads the
validated shipment tables; writes the models, the backtest metrics and the tuning study at the catalog's
paths (MLflow through the flow). Heavy libraries are imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.cli.session import console, fail, print_study, print_summary, settings_of, step

if TYPE_CHECKING:
    from models.shipment_tasks import ShipmentModelsConfig

__all__ = ["backtest", "train", "tune"]

TASKS_HELP = "Comma-separated: eta,delay,intransit,inspection,clearance (default: all)."


def shipment_config(folds: int, max_rows: int) -> ShipmentModelsConfig:
    """The default shipment models config with the CLI's fold count and row budget (0: default)."""
    from models.shipment_tasks import ShipmentModelsConfig

    base = ShipmentModelsConfig()
    return base.model_copy(update={"n_folds": folds, "max_train_rows": max_rows or base.max_train_rows})


def _chosen_tasks(tasks: str) -> tuple[str, ...]:
    from models.shipment_tasks import TASKS

    chosen = tuple(t for t in tasks.split(",") if t) or tuple(TASKS)
    unknown = set(chosen) - set(TASKS)
    if unknown:
        raise fail(f"unknown task(s) {', '.join(sorted(unknown))}; choose from {', '.join(TASKS)}")
    return chosen


def print_results(results: dict[str, Any]) -> None:
    """Backtest table, promotion decision and model folder of each trained task."""
    for name, res in results.items():
        print_summary(f"{name}: backtest (mean over folds)", res["summary"])
        decision = res["decision"]
        if decision:
            alias = "champion" if decision["promoted"] else "challenger"
            console.print(f"  {decision['model']} v{decision['version']} -> {alias}: {decision['reason']}")
        console.print(f"  model directory: {res['model_dir']}")


def train(
    ctx: typer.Context,
    tasks: Annotated[str, typer.Option(help=TASKS_HELP)] = "",
    folds: Annotated[int, typer.Option(help="Rolling-origin backtest folds.")] = 3,
    max_rows: Annotated[int, typer.Option(help="Most recent training rows per fit (0: default).")] = 0,
    track: Annotated[bool, typer.Option(help="Log to MLflow, register, apply the promotion gate.")] = True,
) -> None:
    """Backtest every shipment model next to its baselines, fit, log, register, gate."""
    chosen = _chosen_tasks(tasks)
    settings = settings_of(ctx)
    from pipelines.flows.train_shipments import train_shipment_models

    config = shipment_config(folds, max_rows)
    with step(f"flow train-shipment-models ({', '.join(chosen)})", fail_on=(FileNotFoundError,)):
        results = train_shipment_models(config, chosen, settings=settings, track=track)
    print_results(results)


def backtest(
    ctx: typer.Context,
    tasks: Annotated[str, typer.Option(help=TASKS_HELP)] = "",
    folds: Annotated[int, typer.Option(help="Rolling-origin folds.")] = 3,
    out: Annotated[
        Path | None, typer.Option(help="Folder of the per-fold, per-slice metrics (<outputs>/backtest).")
    ] = None,
) -> None:
    """Print each shipment model against its baselines (and the oracle); no registration."""
    from pipelines.flows._tables import load_oracle, load_tables

    catalog = settings_of(ctx).catalog
    chosen = _chosen_tasks(tasks)
    try:
        tables = load_tables(catalog.data.validated)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc
    from models.backtest import backtest_summary
    from models.shipment_tasks import backtest_task, evaluate_task, prepare_task_frames

    config = shipment_config(folds, 0)
    oracle = load_oracle(catalog.data.raw)
    with step("building point-in-time features"):
        frames = prepare_task_frames(tables, config, chosen)
    folder = out or catalog.outputs.backtest
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        with step(f"backtest {name}"):
            metrics = evaluate_task(backtest_task(frame, config, oracle), frame.spec)
        metrics.write_parquet(catalog.outputs.backtest_metrics(name, folder))
        print_summary(f"{name}: backtest (mean over folds)", backtest_summary(metrics))
    console.print(f"per fold and slice: {catalog.outputs.backtest_metrics('<task>', folder)}")


def tune(
    ctx: typer.Context,
    task_name: Annotated[
        str, typer.Option("--task", help="One of eta, delay, intransit, inspection, clearance.")
    ] = "eta",
    trials: Annotated[int, typer.Option(help="Trial budget.")] = 20,
    timeout: Annotated[float, typer.Option(help="Time budget in seconds.")] = 600.0,
    folds: Annotated[int, typer.Option(help="Time-ordered folds per trial.")] = 2,
) -> None:
    """Tune one shipment model with Optuna on time-ordered folds; the next `train shipments` uses the best."""
    from pipelines.adapters.optuna import StudyConfig, best_params_file
    from pipelines.flows.tune_shipments import tune_shipment_task

    chosen = _chosen_tasks(task_name)
    if len(chosen) != 1:
        raise fail(f"--task takes one task, got {task_name!r}")
    task = chosen[0]
    settings = settings_of(ctx)
    directory = settings.catalog.outputs.tuning("shipments")
    study_config = StudyConfig(n_trials=trials, timeout_seconds=timeout, directory=directory)
    with step(f"tuning {task}: {trials} trials or {timeout:.0f} s", fail_on=(FileNotFoundError,)):
        study = tune_shipment_task(task, folds, study_config, settings=settings)
    print_study(study, best_params_file(f"shipments-{task}", directory), "shipments")
