"""Stage: command line, source adapters: `adapt SOURCE --src PATH --out DIR [--assume-timezone ZONE]`.

Reads a saved public dataset (`features.sources.read_source`); writes raw contract files into `--out` (then
`transitcast ingest --raw OUT`), the rows the adapter rejected and a JSON report, all or nothing
(`features.ingest.write_atomic`). The source names come from `features.sources.ADAPTERS` at run time (so
`--help` does not import Polars).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from pipelines.cli.session import console, fail, step

if TYPE_CHECKING:
    import polars as pl

__all__ = ["adapt", "as_local_time"]


def as_local_time(tables: dict[str, pl.DataFrame], zone: str) -> dict[str, pl.DataFrame]:
    """Read the adapters' UTC timestamps as wall-clock times in `zone`, converted to UTC.

    The adapters stamp a dataset's naive times as UTC; when the dataset was recorded in another zone, this
    shifts every UTC `Datetime` column by that zone's offset on the day (a wall-clock time that does not
    exist in `zone`, in a DST gap, becomes null, so ingest quarantines its row with the rule named).
    """
    import polars as pl

    def local(frame: pl.DataFrame) -> pl.DataFrame:
        cols = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone == "UTC"]
        return frame.with_columns(
            pl.col(c)
            .dt.replace_time_zone(None)
            .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            for c in cols
        )

    return {name: local(frame) for name, frame in tables.items()}


def adapt(
    source: Annotated[str, typer.Argument(help="scms, online-retail or kcs.")],
    src: Annotated[Path, typer.Option(help="Dataset folder or file (see ../shared/data/MANIFEST.md).")],
    out: Annotated[Path, typer.Option(help="Folder for the raw contract files.")],
    assume_timezone: Annotated[
        str, typer.Option(help="IANA zone the dataset's naive times were recorded in (default: UTC).")
    ] = "",
) -> None:
    """Map a public dataset into raw contract files (then run `transitcast ingest --raw OUT`)."""
    from features.ingest import write_atomic
    from features.sources import ADAPTERS, SourceName, read_source

    names: tuple[SourceName, ...] = get_args(SourceName)
    name = next((n for n in names if n == source), None)
    if name is None:
        raise fail(f"unknown source {source!r}; choose one of {', '.join(names)}")
    if not src.exists():
        raise fail(f"{src} does not exist")
    if assume_timezone:
        try:
            ZoneInfo(assume_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            message = f"--assume-timezone {assume_timezone!r}: not an IANA zone (e.g. Asia/Shanghai)"
            raise fail(message) from exc
    with step(f"adapting {source} from {src}"):
        result = ADAPTERS[name](read_source(name, src))
    tables = as_local_time(result.tables, assume_timezone) if assume_timezone else result.tables
    files: dict[str, pl.DataFrame | str] = {f"{name}.parquet": df for name, df in tables.items()}
    files["_adapter_rejected.parquet"] = result.rejected
    files["_adapter_report.json"] = json.dumps(
        {
            "source": source,
            "src": str(src),
            "notes": result.notes,
            "rejected": result.rejected.height,
            "assume_timezone": assume_timezone or "UTC",
        },
        indent=2,
        sort_keys=True,
    )
    write_atomic(files, out)
    table = Table(title=f"{source} -> {out}", title_justify="left")
    table.add_column("item")
    table.add_column("count", justify="right")
    for table_name, df in tables.items():
        table.add_row(f"table {table_name}", f"{df.height:,}")
    table.add_row("source rows rejected by the adapter", f"{result.rejected.height:,}")
    for key, value in result.notes.items():
        table.add_row(key, f"{value:,}")
    console.print(table)
