"""Stage: command line, the whole job: `demo` (simulate, ingest, version, train, forecast, plan, report).

Wiring only: runs the `ingest` flow on a simulated world, then the training, forecast and plan commands'
own runners with the settings of this invocation. Reads and writes what those do, at the catalog's paths.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli.data import accounting_table
from pipelines.cli.session import console, settings_of, step

__all__ = ["demo"]


def demo(
    ctx: typer.Context,
    shipments: Annotated[int, typer.Option(help="Simulated shipments (0: demo default).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    version: Annotated[bool, typer.Option(help="Version data/ with DVC.")] = True,
    dirty_rate: Annotated[
        float, typer.Option(help="Share of raw rows broken on purpose, to show the quarantine at work.")
    ] = 0.001,
    train: Annotated[
        bool,
        typer.Option(help="Also train the shipment and demand models, forecast, plan and write the report."),
    ] = True,
) -> None:
    """The whole job on the embedded default: simulate, ingest, version, train, forecast, plan, report."""
    from features.sources.simulator import SimulatorConfig
    from pipelines.flows.ingest import ingest_flow

    settings = settings_of(ctx)
    catalog = settings.catalog
    base = SimulatorConfig(seed=seed, dirty_rate=dirty_rate)
    config = (
        base.model_copy(update={"shipments": base.shipments.model_copy(update={"n_shipments": shipments})})
        if shipments
        else base
    )
    with step("flow ingest: simulate -> validate -> write -> version (Prefect)"):
        result = ingest_flow(simulate_world=True, simulator=config, settings=settings, version=version)
    console.print(accounting_table(result.report.tables, "data ingested"))
    if train:
        from models.shipment_tasks import ShipmentModelsConfig
        from pipelines.cli.demand import run_forecast, run_train
        from pipelines.cli.planning import run_plan
        from pipelines.cli.shipments import print_results
        from pipelines.flows.calibrate import QUICK_CALIBRATION, calibrate_restock
        from pipelines.flows.train_shipments import train_shipment_models

        with step("flow train-shipment-models: backtest, fit, MLflow, registry, gate (Prefect)"):
            trained = train_shipment_models(ShipmentModelsConfig(), settings=settings)
        print_results(trained)
        run_train(settings)
        run_forecast(settings, week=None)
        with step("flow calibrate-restock: replay the restock policy on recent sales (Prefect)"):
            calibrated = calibrate_restock(QUICK_CALIBRATION, settings=settings)
        run_plan(settings, calibration=calibrated.path)
    data = catalog.data
    console.print(f"raw files:        {data.raw}/ (oracle/ holds the simulator's truth)")
    console.print(f"validated tables: {data.validated}/ (rejected rows: {data.quarantine})")
    console.print(f"ingest report:    {data.ingest_report}")
    dv = result.data_version
    console.print(f"data version:     {dv[:12] if dv else 'not versioned'} ({data.dvc_file})")
    if train:
        outputs = catalog.outputs
        console.print(f"models:           {outputs.model('<task>')}/ (LightGBM text + JSON)")
        console.print(f"demand forecast:  {outputs.forecast('<week>').fan_chart}")
        store = settings.tracking.tracking_uri
        console.print(f"MLflow runs:      {store} (browse: .venv/bin/mlflow ui --backend-store-uri {store})")
        console.print("prediction API:   TRANSITCAST_API_API_KEYS=demo-key .venv/bin/transitcast serve")
        reports = sorted(outputs.reports_root.glob("*/report.html"))
        if reports:
            console.print(f"planner report:   [bold]{reports[-1]}[/] (open it in a browser)")
