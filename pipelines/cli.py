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

from pipelines.settings import Settings, quiet_third_parties

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

REPO_ROOT = Path(__file__).resolve().parents[1]
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
    for noisy in ("httpx", "prefect", "alembic", "asyncio", "numba"):
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
) -> None:
    """Simulate a cross-border world and write the raw files a user would bring (plus oracle/)."""
    from features.simulator import SimulatorConfig, write_world
    from features.simulator import simulate as run

    overrides: dict[str, object] = {"seed": seed, "dirty_rate": dirty_rate}
    if start:
        overrides["start_date"] = start
    if end:
        overrides["end_date"] = end
    base = SimulatorConfig()
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
    from features.adapters import ADAPTERS, read_source
    from features.ingest import write_atomic

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
    from features.contract_docs import contract_markdown
    from features.schema import TABLES

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
) -> None:
    """Run the whole job on the embedded default: simulate, ingest, version (Prefect flow `ingest`)."""
    from features.simulator import SimulatorConfig
    from pipelines.flows import ingest_flow

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
    console.print(f"raw files:        {settings.raw_dir}/ (oracle/ holds the simulator's truth)")
    console.print(
        f"validated tables: {settings.validated_dir}/ "
        f"(rejected rows: {settings.validated_dir}/quarantine.parquet)"
    )
    console.print(f"ingest report:    {settings.validated_dir}/ingest_report.json")
    dv = result.get("data_version")
    console.print(f"data version:     {dv[:12] if dv else 'not versioned'} (data.dvc)")


if __name__ == "__main__":  # pragma: no cover
    app()
