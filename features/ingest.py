"""Stage: ingest. Read raw CSV/Parquet files, validate them against the contract, write Parquet + quarantine.

Reads: a raw folder holding one file per table (`shipments.csv`, `shipments.parquet`, `shipments.csv.gz`)
or a folder of parts per table (`shipment_events/part-0001.parquet`, ...). Folders that are not tables
(such as the simulator's `oracle/`) are skipped; a data file whose name is not a table is an error.

Writes (atomically: everything goes to a temporary folder first, then each file is renamed into place):
`<out>/<table>.parquet` for each validated table, `<out>/quarantine.parquet` with every rejected row, and
`<out>/ingest_report.json` with the row accounting. Output is sorted and deterministic, so re-ingesting the
same input gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from features.contract.schema import TABLE_ORDER, TABLES, table_spec
from features.contract.validation import QUARANTINE_SCHEMA, ROW, SOURCE, validate_table

__all__ = [
    "DATA_SUFFIXES",
    "IngestError",
    "IngestReport",
    "IngestResult",
    "TableCount",
    "discover_sources",
    "ingest",
    "read_raw_table",
    "validate_tables",
    "write_atomic",
]

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
NON_TABLE_DIRS = frozenset({"oracle"})
QUARANTINE_FILE = "quarantine.parquet"
REPORT_FILE = "ingest_report.json"


class IngestError(Exception):
    """A file cannot be ingested at all (unknown table, unreadable, missing column). Nothing is written."""


@dataclass(frozen=True)
class TableCount:
    """Row accounting of one table: `rows_in == valid + quarantined` always holds.

    `omitted_columns` lists the optional business columns the source left out: they are absent from the
    validated table, and the features that read them are not built.
    """

    rows_in: int
    valid: int
    quarantined: int
    files: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    unchecked_foreign_keys: list[str] = field(default_factory=list)
    omitted_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IngestResult:
    """Validated tables and the quarantine, in memory."""

    valid: dict[str, pl.DataFrame]
    quarantine: pl.DataFrame
    counts: dict[str, TableCount]


@dataclass(frozen=True)
class IngestReport:
    """What `ingest` wrote."""

    out_dir: str
    tables: dict[str, TableCount]
    quarantine_by_rule: dict[str, int]
    sources: dict[str, str]

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in DATA_SUFFIXES if name.endswith(s)), "")


def _table_of(path: Path) -> str:
    return path.name[: -len(_suffix(path))]


def discover_sources(raw_dir: Path) -> dict[str, list[Path]]:
    """Map each contract table to its raw files under `raw_dir`.

    Raises:
        IngestError: the folder is missing or empty, or a data file is named after no table.
    """
    if not raw_dir.is_dir():
        raise IngestError(f"raw folder {raw_dir} does not exist")
    sources: dict[str, list[Path]] = {}
    for entry in sorted(raw_dir.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            if entry.name in TABLES:
                parts = sorted(p for p in entry.iterdir() if p.is_file() and _suffix(p))
                if parts:
                    sources[entry.name] = parts
            elif entry.name not in NON_TABLE_DIRS:
                log.warning("skipping folder %s: not a contract table (%s)", entry, ", ".join(TABLES))
            continue
        if not _suffix(entry):
            log.debug("skipping %s: not a .csv/.csv.gz/.parquet file", entry)
            continue
        table = _table_of(entry)
        if table not in TABLES:
            raise IngestError(
                f"{entry}: unknown table {table!r}; raw files must be named after a contract table: "
                f"{', '.join(TABLES)} (see docs/data-contract.md)"
            )
        sources.setdefault(table, []).append(entry)
    if not sources:
        raise IngestError(
            f"{raw_dir}: no table files found (expected e.g. shipments.csv or shipments.parquet)"
        )
    return sources


def _scan(path: Path) -> pl.LazyFrame:
    if _suffix(path) == ".parquet":
        return pl.scan_parquet(path)
    # CSV: every column as text, so that a bad value is quarantined with its raw text, never guessed.
    return pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")


def _check_header(table: str, path: Path) -> tuple[pl.LazyFrame, list[str]]:
    """Open a raw file lazily and check its header: readable, every required column present."""
    spec = table_spec(table)
    try:
        lf = _scan(path)
        columns = lf.collect_schema().names()
    except Exception as exc:  # polars raises several error types for unreadable files
        raise IngestError(f"{path}: cannot read as {_suffix(path)} ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        expected = "; ".join(
            f"{c} ({spec.column(c).dtype}, e.g. {spec.column(c).example!r})" for c in missing
        )
        raise IngestError(f"{path}: table {table} is missing required column(s): {expected}")
    return lf, columns


def read_raw_table(table: str, paths: Sequence[Path]) -> tuple[pl.DataFrame, list[str]]:
    """Read one table's raw files, adding source file and 1-based row number to each row.

    Returns:
        (raw rows, names of columns that are neither contract nor passthrough columns and are ignored).

    Raises:
        IngestError: a file cannot be read or lacks a required column (the message names the file, the
            columns and the types expected).
    """
    spec = table_spec(table)
    frames: list[pl.DataFrame] = []
    ignored: set[str] = set()
    known = {c.name for c in spec.columns}
    for path in paths:
        lf, columns = _check_header(table, path)
        prefix = spec.passthrough_prefix
        keep = [c for c in columns if c in known or (prefix is not None and c.startswith(prefix))]
        ignored |= set(columns) - set(keep)
        try:
            frame = (
                lf.select(keep)
                .with_row_index(ROW, offset=1)
                .with_columns(
                    pl.col(ROW).cast(pl.Int64), pl.lit(str(path)).cast(pl.Categorical).alias(SOURCE)
                )
                .collect()
            )
        except Exception as exc:
            raise IngestError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
        frames.append(frame)
    if ignored:
        log.warning("%s: ignoring columns not in the contract: %s", table, ", ".join(sorted(ignored)))
    try:
        raw = pl.concat(frames, how="diagonal_relaxed")
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        # Parts with incompatible types (e.g. CSV text and Parquet numbers): validate them all as text.
        raw = pl.concat(
            [f.with_columns(pl.all().exclude(ROW).cast(pl.String)) for f in frames], how="diagonal_relaxed"
        )
    return raw, sorted(ignored)


def _validate_in_order(
    names: Collection[str], load: Callable[[str], pl.DataFrame], assume_timezone: str | None
) -> IngestResult:
    """Validate tables parents first, loading each raw table only when its turn comes (and dropping it)."""
    unknown = set(names) - set(TABLES)
    if unknown:
        raise IngestError(f"unknown table(s) {', '.join(sorted(unknown))}; known: {', '.join(TABLES)}")
    valid: dict[str, pl.DataFrame] = {}
    quarantines: list[pl.DataFrame] = []
    counts: dict[str, TableCount] = {}
    for name in (n for n in TABLE_ORDER if n in names):
        spec = table_spec(name)
        result = validate_table(load(name), spec, parents=valid, assume_timezone=assume_timezone)
        if result.rows_in != result.valid.height + result.quarantine.height:  # pragma: no cover - invariant
            raise RuntimeError(f"{name}: row accounting broken ({result.rows_in} in)")
        log.info(
            "%s: %s rows in, %s valid, %s quarantined",
            name,
            f"{result.rows_in:,}",
            f"{result.valid.height:,}",
            f"{result.quarantine.height:,}",
        )
        unchecked = [f"{col} -> {parent}" for col, parent, _ in spec.foreign_keys if parent not in valid]
        omitted = [c for c in spec.omittable_columns if c not in result.valid.columns]
        if omitted:
            log.info("%s: optional column(s) left out by the source: %s", name, ", ".join(omitted))
        valid[name] = result.valid
        quarantines.append(result.quarantine)
        counts[name] = TableCount(
            rows_in=result.rows_in,
            valid=result.valid.height,
            quarantined=result.quarantine.height,
            unchecked_foreign_keys=unchecked,
            omitted_columns=omitted,
        )
    quarantine = (
        pl.concat(quarantines).sort("table", "source_file", "row_number")
        if quarantines
        else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    return IngestResult(valid=valid, quarantine=quarantine, counts=counts)


def validate_tables(frames: Mapping[str, pl.DataFrame], assume_timezone: str | None = None) -> IngestResult:
    """Validate several raw tables together, parents first so foreign keys can be checked.

    Args:
        frames: raw frames by table name (optionally with source-file and row-number columns from
            `read_raw_table`).
        assume_timezone: IANA zone for timestamps without an offset; None quarantines them.
    """
    return _validate_in_order(list(frames), frames.__getitem__, assume_timezone)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(files: Mapping[str, pl.DataFrame | str], out_dir: Path) -> None:
    """Write frames (Parquet) and texts under `out_dir` by name: all to a temporary folder, then renamed.

    Nothing under `out_dir` changes if any write fails.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name, content in files.items():
            target = tmp / name
            if isinstance(content, pl.DataFrame):
                content.write_parquet(target, compression="zstd", statistics=True)
            else:
                target.write_text(content)
        for name in files:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ingest(raw_dir: Path, out_dir: Path, assume_timezone: str | None = None) -> IngestReport:
    """Read, validate and write every table found in `raw_dir` to `out_dir`.

    Args:
        raw_dir: folder of raw files named after the contract tables.
        out_dir: folder for the validated Parquet tables, the quarantine and the report.
        assume_timezone: IANA zone for timestamps written without an offset; None quarantines them.

    Returns:
        The report that was also written as `ingest_report.json`.

    Raises:
        IngestError: unknown table, unreadable file or missing column; nothing is written then.
    """
    sources = discover_sources(raw_dir)
    for table, paths in sources.items():  # fail fast on a missing column or unreadable file, before work
        for path in paths:
            _check_header(table, path)
    ignored: dict[str, list[str]] = {}

    def load(table: str) -> pl.DataFrame:
        raw, ignored[table] = read_raw_table(table, sources[table])
        return raw

    result = _validate_in_order(list(sources), load, assume_timezone)
    counts = {
        name: TableCount(
            rows_in=c.rows_in,
            valid=c.valid,
            quarantined=c.quarantined,
            files=[str(p) for p in sources[name]],
            ignored_columns=ignored[name],
            unchecked_foreign_keys=c.unchecked_foreign_keys,
            omitted_columns=c.omitted_columns,
        )
        for name, c in result.counts.items()
    }
    by_rule = (
        result.quarantine.group_by("table", "rule").len().sort("table", "rule")
        if result.quarantine.height
        else pl.DataFrame({"table": [], "rule": [], "len": []})
    )
    report = IngestReport(
        out_dir=str(out_dir),
        tables=counts,
        quarantine_by_rule={
            f"{r['table']}.{r['rule']}": int(r["len"]) for r in by_rule.iter_rows(named=True)
        },
        sources={str(p): _sha256(p) for paths in sources.values() for p in paths},
    )
    files: dict[str, pl.DataFrame | str] = {f"{name}.parquet": df for name, df in result.valid.items()}
    files[QUARANTINE_FILE] = result.quarantine
    files[REPORT_FILE] = report.to_json()
    write_atomic(files, out_dir)
    stale = [out_dir / f"{t}.parquet" for t in TABLES if t not in result.valid]
    for path in stale:
        if path.exists():
            log.info("removing %s: its table was not in this ingest", path)
            path.unlink()
    return report
