"""Stage: command line, data: `simulate`, `ingest` and `contract`.

Reads raw files (the user's, an adapter's or the simulator's); writes the raw folder (`simulate`) and the
validated folder (`ingest`), at the catalog's paths unless a folder is given. Heavy libraries are imported
inside each command, so `--help` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from rich.table import Table

from pipelines.cli.session import console, fail, log, settings_of, step

if TYPE_CHECKING:
    from features.ingest import TableCount

__all__ = ["ASSUME_TIMEZONE_HELP", "accounting_table", "contract", "ingest", "simulate"]

ASSUME_TIMEZONE_HELP = "IANA zone of timestamps written without an offset (default: quarantine them)."


def accounting_table(tables: Mapping[str, TableCount], title: str) -> Table:
    """Rows in, valid and quarantined per table (`rows in = valid + quarantined`)."""
    table = Table(title=title, title_justify="left")
    for col in ("table", "rows in", "valid", "quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, c in tables.items():
        q = c.quarantined
        table.add_row(name, f"{c.rows_in:,}", f"{c.valid:,}", f"[red]{q:,}[/]" if q else "0")
    return table


def simulate(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the raw files (and oracle/); default <data>/raw.")
    ] = None,
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
    from features.sources.simulator import FileFormat, SimulatorConfig, write_world
    from features.sources.simulator import simulate as run
    from features.sources.simulator.shapes import shape_config

    formats: tuple[FileFormat, ...] = get_args(FileFormat)
    chosen = next((f for f in formats if f == file_format), None)
    if chosen is None:
        raise fail(f"--format must be one of {', '.join(formats)}, not {file_format!r}")
    overrides: dict[str, object] = {"seed": seed, "dirty_rate": dirty_rate}
    if start:
        overrides["start_date"] = start
    if end:
        overrides["end_date"] = end
    try:
        base = shape_config(shape) if shape else SimulatorConfig()
    except ValueError as exc:
        raise fail(f"--shape: {exc}") from exc
    if shipments:
        overrides["shipments"] = base.shipments.model_copy(update={"n_shipments": shipments})
    if skus:
        overrides["demand"] = base.demand.model_copy(update={"n_skus": skus})
    try:
        config = SimulatorConfig.model_validate({**base.model_dump(), **overrides})
    except ValueError as exc:
        raise fail(str(exc)) from exc
    folder = out or settings_of(ctx).catalog.data.raw
    with step(f"simulating {config.shipments.n_shipments:,} shipments, seed {seed}"):
        world = run(config)
    with step(f"writing raw files to {folder}"):
        paths = write_world(world, folder, chosen)
    table = Table(title=f"raw files in {folder}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, df in {**world.tables, **{f"oracle/{k}": v for k, v in world.oracle.items()}}.items():
        table.add_row(name, f"{df.height:,}")
    console.print(table)
    log.debug("wrote %s", paths)


def ingest(
    ctx: typer.Context,
    raw: Annotated[
        Path | None, typer.Option(help="Folder of raw files named after the contract tables (<data>/raw).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for validated Parquet + quarantine; default <data>/validated.")
    ] = None,
    assume_timezone: Annotated[str, typer.Option(help=ASSUME_TIMEZONE_HELP)] = "",
) -> None:
    """Validate raw files against the contract; write valid tables, quarantine.parquet and a report."""
    from features.ingest import QUARANTINE_FILE, IngestError
    from features.ingest import ingest as run

    data = settings_of(ctx).catalog.data
    raw_dir, out_dir = raw or data.raw, out or data.validated
    with step(f"ingesting {raw_dir}", fail_on=(IngestError,)):
        report = run(raw_dir, out_dir, assume_timezone=assume_timezone or None)
    console.print(accounting_table(report.tables, f"ingested into {out_dir}"))
    if report.quarantine_by_rule:
        console.print(
            "quarantine by rule: " + ", ".join(f"{k}={v:,}" for k, v in report.quarantine_by_rule.items())
        )
        console.print(f"inspect it: {out_dir / QUARANTINE_FILE} (one row per rejected input row)")


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
            raise fail(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        spec = TABLES[name]
        table = Table(title=f"{name}: {spec.grain} (key: {', '.join(spec.key)})", title_justify="left")
        for col in ("column", "type", "required", "nullable", "description"):
            table.add_column(col)
        for c in spec.columns:
            table.add_row(
                c.name, str(c.dtype), "yes" if c.required else "", "yes" if c.nullable else "", c.description
            )
        console.print(table)
