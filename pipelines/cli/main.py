"""Stage: command line. `transitcast --help` lists every command; each is thin wiring over the packages.

Heavy libraries (Prefect, MLflow, LightGBM) are imported inside the commands that need them, so `--help`
and the data commands start fast.
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pipelines.config import Settings, quiet_third_parties

__all__ = ["app"]

console = Console(stderr=False)
err = Console(stderr=True)
log = logging.getLogger("transitcast")

app = typer.Typer(
    name="transitcast",
    help=(
        "Forecasts and decisions for cross-border e-commerce logistics.\n\n"
        "Start here: `transitcast demo` simulates a world, ingests and versions it (what `make demo` runs).\n"
        "Bring your own data: write files named after the contract tables (docs/data-contract.md, or "
        "`transitcast contract`) into a folder and run\n"
        "`transitcast ingest --raw FOLDER --out data/validated`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO_ROOT / "bench"


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    quiet_third_parties()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("httpx", "prefect", "alembic", "asyncio", "numba", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def _step(title: str) -> Iterator[None]:
    """A spinner with elapsed time around a long step."""
    start = time.perf_counter()
    with err.status(f"[bold]{title}[/] ..."):
        yield
    err.print(f"[green]done[/] {title} ({time.perf_counter() - start:.1f} s)")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _accounting_table(tables: dict[str, dict[str, object]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("table", "rows in", "valid", "quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, c in tables.items():
        q = int(c["quarantined"])  # type: ignore[call-overload]
        table.add_row(name, f"{c['rows_in']:,}", f"{c['valid']:,}", f"[red]{q:,}[/]" if q else "0")
    return table


# ---------------------------------------------------------------------------------------------------------
@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder for the raw files (and oracle/).")] = Path("data/raw"),
    shipments: Annotated[int, typer.Option(help="Number of shipments.")] = 0,
    skus: Annotated[int, typer.Option(help="Number of SKUs (0: default).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 7,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (default 2023-01-02).")] = "",
    end: Annotated[str, typer.Option(help="'Today' of the world, YYYY-MM-DD (default 2025-11-30).")] = "",
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    dirty_rate: Annotated[
        float, typer.Option(help="Share of raw rows broken on purpose, to exercise the quarantine.")
    ] = 0.0,
    shape: Annotated[
        str, typer.Option(help="A robustness-suite shape, e.g. small or drift (docs/simulator.md).")
    ] = "",
) -> None:
    """Simulate a cross-border world and write the raw files a user would bring (plus oracle/)."""
    from features.sources.simulator import SimulatorConfig, write_world
    from features.sources.simulator import simulate as run
    from features.sources.simulator.shapes import shape_config

    overrides: dict[str, object] = {"seed": seed, "dirty_rate": dirty_rate}
    if start:
        overrides["start_date"] = start
    if end:
        overrides["end_date"] = end
    try:
        base = shape_config(shape) if shape else SimulatorConfig()
    except ValueError as exc:
        raise _fail(f"--shape: {exc}") from exc
    if shipments:
        overrides["shipments"] = base.shipments.model_copy(update={"n_shipments": shipments})
    if skus:
        overrides["demand"] = base.demand.model_copy(update={"n_skus": skus})
    if file_format not in ("parquet", "csv"):
        raise _fail(f"--format must be parquet or csv, not {file_format!r}")
    try:
        config = SimulatorConfig.model_validate({**base.model_dump(), **overrides})
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    with _step(f"simulating {config.shipments.n_shipments:,} shipments, seed {seed}"):
        world = run(config)
    with _step(f"writing raw files to {out}"):
        paths = write_world(world, out, file_format)  # type: ignore[arg-type]
    table = Table(title=f"raw files in {out}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, df in {**world.tables, **{f"oracle/{k}": v for k, v in world.oracle.items()}}.items():
        table.add_row(name, f"{df.height:,}")
    console.print(table)
    log.debug("wrote %s", paths)


@app.command()
def ingest(
    raw: Annotated[Path, typer.Option(help="Folder of raw files named after the contract tables.")] = Path(
        "data/raw"
    ),
    out: Annotated[Path, typer.Option(help="Folder for validated Parquet + quarantine.")] = Path(
        "data/validated"
    ),
    assume_timezone: Annotated[
        str, typer.Option(help="IANA zone for timestamps without offset (default: quarantine them).")
    ] = "",
) -> None:
    """Validate raw files against the contract; write valid tables, quarantine.parquet and a report."""
    from features.ingest import IngestError
    from features.ingest import ingest as run

    try:
        with _step(f"ingesting {raw}"):
            report = run(raw, out, assume_timezone=assume_timezone or None)
    except IngestError as exc:
        raise _fail(str(exc)) from exc
    tables = {k: v.__dict__ for k, v in report.tables.items()}
    console.print(_accounting_table(tables, f"ingested into {out}"))
    if report.quarantine_by_rule:
        console.print(
            "quarantine by rule: " + ", ".join(f"{k}={v:,}" for k, v in report.quarantine_by_rule.items())
        )
        console.print(f"inspect it: {out / 'quarantine.parquet'} (one row per rejected input row)")


@app.command()
def adapt(
    source: Annotated[str, typer.Argument(help="scms, online-retail or kcs.")],
    src: Annotated[Path, typer.Option(help="Dataset folder or file (see ../shared/data/MANIFEST.md).")],
    out: Annotated[Path, typer.Option(help="Folder for the raw contract files.")],
) -> None:
    """Map a public dataset into raw contract files (then run `transitcast ingest --raw OUT`)."""
    from features.ingest import write_atomic
    from features.sources import ADAPTERS, read_source

    if source not in ADAPTERS:
        raise _fail(f"unknown source {source!r}; choose one of {', '.join(ADAPTERS)}")
    if not src.exists():
        raise _fail(f"{src} does not exist")
    with _step(f"adapting {source} from {src}"):
        result = ADAPTERS[source](read_source(source, src))  # type: ignore[arg-type]
    files: dict[str, object] = {f"{name}.parquet": df for name, df in result.tables.items()}
    files["_adapter_rejected.parquet"] = result.rejected
    files["_adapter_report.json"] = json.dumps(
        {"source": source, "src": str(src), "notes": result.notes, "rejected": result.rejected.height},
        indent=2,
        sort_keys=True,
    )
    write_atomic(files, out)  # type: ignore[arg-type]
    table = Table(title=f"{source} -> {out}", title_justify="left")
    table.add_column("item")
    table.add_column("count", justify="right")
    for name, df in result.tables.items():
        table.add_row(f"table {name}", f"{df.height:,}")
    table.add_row("source rows rejected by the adapter", f"{result.rejected.height:,}")
    for key, value in result.notes.items():
        table.add_row(key, f"{value:,}")
    console.print(table)


@app.command()
def contract(
    table_name: Annotated[str, typer.Argument(help="One table (default: all).")] = "",
    markdown: Annotated[bool, typer.Option(help="Print docs/data-contract.md.")] = False,
) -> None:
    """Show the data contract: tables, columns, types, units and rules."""
    from features.contract.docs import contract_markdown
    from features.contract.schema import TABLES

    if markdown:
        sys.stdout.write(contract_markdown())
        return
    names = [table_name] if table_name else list(TABLES)
    for name in names:
        if name not in TABLES:
            raise _fail(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        spec = TABLES[name]
        table = Table(title=f"{name}: {spec.grain} (key: {', '.join(spec.key)})", title_justify="left")
        for col in ("column", "type", "required", "nullable", "description"):
            table.add_column(col)
        for c in spec.columns:
            table.add_row(
                c.name, str(c.dtype), "yes" if c.required else "", "yes" if c.nullable else "", c.description
            )
        console.print(table)


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name (a script bench/NAME.py), or 'all'.")] = "all",
) -> None:
    """Run benchmarks; each appends JSON lines to bench/results/NAME.jsonl."""
    if not BENCH_DIR.is_dir():
        raise _fail(f"{BENCH_DIR} not found: benchmarks run from a source checkout")
    scripts = sorted(p for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_"))
    chosen = scripts if name == "all" else [p for p in scripts if p.stem == name]
    if not chosen:
        raise _fail(f"no benchmark {name!r}; available: {', '.join(p.stem for p in scripts)}")
    sys.path.insert(0, str(BENCH_DIR))
    argv = sys.argv
    try:
        for script in chosen:
            sys.argv = [str(script)]  # each script parses its own defaults
            with _step(f"benchmark {script.stem}"):
                runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


@app.command()
def demo(
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

    settings = Settings()
    base = SimulatorConfig(seed=seed, dirty_rate=dirty_rate)
    config = (
        base.model_copy(update={"shipments": base.shipments.model_copy(update={"n_shipments": shipments})})
        if shipments
        else base
    )
    with _step("flow ingest: simulate -> validate -> write -> version (Prefect)"):
        result = ingest_flow(simulate_world=True, simulator=config, version=version)
    console.print(_accounting_table(result["tables"], "data ingested"))
    if train:
        from models.shipment_tasks import ShipmentModelsConfig
        from pipelines.flows.train_shipments import train_shipment_models

        with _step("flow train-shipment-models: backtest, fit, MLflow, registry, gate (Prefect)"):
            trained = train_shipment_models(ShipmentModelsConfig())
        for name, res in trained.items():
            _print_summary(name, res["summary"].to_dicts())
        from pipelines.cli.demand import forecast, train_demand_command
        from pipelines.cli.planning import plan

        train_demand_command()
        forecast("demand", week=None, paths=200, seed=0)
        from pipelines.flows.calibrate import QUICK_CALIBRATION, calibrate_restock

        with _step("flow calibrate-restock: replay the restock policy on recent sales (Prefect)"):
            calibrated = calibrate_restock(QUICK_CALIBRATION)
        plan(week=None, forecast_dir=None, budget_usd=None, calibration=calibrated.path)
    console.print(f"raw files:        {settings.raw_dir}/ (oracle/ holds the simulator's truth)")
    console.print(
        f"validated tables: {settings.validated_dir}/ "
        f"(rejected rows: {settings.validated_dir}/quarantine.parquet)"
    )
    console.print(f"ingest report:    {settings.validated_dir}/ingest_report.json")
    dv = result.get("data_version")
    console.print(f"data version:     {dv[:12] if dv else 'not versioned'} (data.dvc)")
    if train:
        console.print(f"models:           {settings.outputs_dir}/models/<task>/ (LightGBM text + JSON)")
        console.print(f"demand forecast:  {settings.outputs_dir}/forecasts/demand/<week>/ (fan_chart.png)")
        store = f"sqlite:///{settings.outputs_dir}/mlflow/mlflow.db"
        console.print(f"MLflow runs:      {store} (browse: .venv/bin/mlflow ui --backend-store-uri {store})")
        console.print("prediction API:   TRANSITCAST_API_API_KEYS=demo-key .venv/bin/transitcast serve")
        reports = sorted((settings.outputs_dir / "reports").glob("*/report.html"))
        if reports:
            console.print(f"planner report:   [bold]{reports[-1]}[/] (open it in a browser)")


# ---------------------------------------------------------------------------------------------------------
def _print_summary(name: str, summary_rows: list[dict[str, object]]) -> None:
    import polars as pl

    summary = pl.DataFrame(summary_rows)
    wide = summary.pivot(on="model", index="metric", values="value").sort("metric")
    table = Table(title=f"{name}: backtest (mean over folds)", title_justify="left")
    for col in wide.columns:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in wide.iter_rows():
        table.add_row(str(row[0]), *[f"{v:.4g}" if isinstance(v, float) else "" for v in row[1:]])
    console.print(table)


def _shipment_config(folds: int, max_rows: int) -> object:
    from models.shipment_tasks import ShipmentModelsConfig

    base = ShipmentModelsConfig()
    return base.model_copy(update={"n_folds": folds, "max_train_rows": max_rows or base.max_train_rows})


@app.command()
def train(
    what: Annotated[str, typer.Argument(help="What to train: shipments or demand.")] = "shipments",
    tasks: Annotated[
        str, typer.Option(help="Comma-separated: eta,delay,intransit,inspection,clearance.")
    ] = "",
    folds: Annotated[
        int, typer.Option(help="Rolling-origin backtest folds (demand uses at least 6 cutoffs).")
    ] = 3,
    max_rows: Annotated[int, typer.Option(help="Most recent training rows per fit (0: default).")] = 0,
    track: Annotated[bool, typer.Option(help="Log to MLflow, register, apply the promotion gate.")] = True,
) -> None:
    """Backtest every shipment model (or the demand model) next to its baselines, fit, log, register, gate."""
    if what == "demand":
        cli_demand.train_demand_command(folds=folds, track=track)
        return
    from models.shipment_tasks import TASKS
    from pipelines.flows.train_shipments import train_shipment_models

    if what != "shipments":
        raise _fail(f"unknown model family {what!r}; choose shipments or demand")
    chosen = tuple(t for t in tasks.split(",") if t) or tuple(TASKS)
    unknown = set(chosen) - set(TASKS)
    if unknown:
        raise _fail(f"unknown task(s) {', '.join(sorted(unknown))}; choose from {', '.join(TASKS)}")
    with _step(f"flow train-shipment-models ({', '.join(chosen)})"):
        results = train_shipment_models(_shipment_config(folds, max_rows), chosen, track=track)
    for name, res in results.items():
        _print_summary(name, res["summary"].to_dicts())
        decision = res["decision"]
        if decision:
            alias = "champion" if decision["promoted"] else "challenger"
            console.print(f"  {decision['model']} v{decision['version']} -> {alias}: {decision['reason']}")
        console.print(f"  model directory: {res['model_dir']}")


@app.command()
def backtest(
    what: Annotated[str, typer.Argument(help="What to backtest: shipments or demand.")] = "shipments",
    tasks: Annotated[str, typer.Option(help="Comma-separated task names (default: all).")] = "",
    folds: Annotated[int, typer.Option(help="Rolling-origin folds (demand uses at least 6).")] = 3,
    out: Annotated[Path, typer.Option(help="Where to write the per-fold, per-slice metrics.")] = Path(
        "outputs/backtest"
    ),
) -> None:
    """Print each shipment model (or demand) against its baselines (no registration)."""
    if what == "demand":
        cli_demand.backtest_demand_command(folds=folds, out=out)
        return
    from models.shipment_tasks import TASKS, backtest_task, evaluate_task, prepare_task_frames
    from pipelines.config import Settings
    from pipelines.flows.train_shipments import backtest_summary, load_oracle, load_tables

    if what != "shipments":
        raise _fail(f"unknown model family {what!r}; choose shipments or demand")
    settings = Settings()
    config = _shipment_config(folds, 0)
    chosen = tuple(t for t in tasks.split(",") if t) or tuple(TASKS)
    oracle = load_oracle(settings.raw_dir)
    with _step("building point-in-time features"):
        frames = prepare_task_frames(load_tables(settings.validated_dir), config, chosen)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        with _step(f"backtest {name}"):
            metrics = evaluate_task(backtest_task(frame, config, oracle), frame.spec)  # type: ignore[arg-type]
        metrics.write_parquet(out / f"{name}.parquet")
        _print_summary(name, backtest_summary(metrics).to_dicts())
    console.print(f"per fold and slice: {out}/<task>.parquet")


@app.command()
def tune(
    what: Annotated[str, typer.Argument(help="What to tune: shipments or demand.")] = "shipments",
    task_name: Annotated[
        str, typer.Option("--task", help="eta, delay, intransit, inspection, clearance.")
    ] = "eta",
    trials: Annotated[int, typer.Option(help="Trial budget.")] = 20,
    timeout: Annotated[float, typer.Option(help="Time budget in seconds.")] = 600.0,
    folds: Annotated[int, typer.Option(help="Time-ordered folds per trial.")] = 2,
) -> None:
    """Tune a shipment model (or demand) with Optuna on time-ordered folds; the next `train` uses the best."""
    if what == "demand":
        cli_demand.tune_demand_command(trials=trials, timeout=timeout, folds=folds)
        return
    from pipelines.adapters.optuna import StudyConfig
    from pipelines.flows.tune_shipments import tune_shipment_task

    if what != "shipments":
        raise _fail(f"unknown model family {what!r}; choose shipments or demand")
    with _step(f"tuning {task_name}: {trials} trials or {timeout:.0f} s"):
        study = tune_shipment_task(task_name, folds, StudyConfig(n_trials=trials, timeout_seconds=timeout))
    console.print(f"best {study.best_value:.5g} with {study.best_params}")
    console.print(
        f"saved to outputs/tuning/shipments-{task_name}.json; `transitcast train shipments` uses it"
    )


# The demand, serving and planning stages keep their commands in their own modules, which register them on
# `app` (imported last, so `app` and the helpers above exist when they load).
from pipelines.cli import demand as cli_demand  # noqa: E402,F401,I001
from pipelines.cli import planning as cli_planning  # noqa: E402,F401,I001
from pipelines.cli import serving as cli_serving  # noqa: E402,F401,I001

if __name__ == "__main__":  # pragma: no cover
    app()
