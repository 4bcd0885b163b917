"""Stage: orchestration. The `batch-score` flow: score a Parquet/CSV file of shipments, chunk by chunk.

Reads a file of contract `shipments` rows (Parquet or CSV, any size: it is streamed in chunks of
`chunk_rows`, so files larger than memory work), optionally a file of their `shipment_events`, and the
models + feature snapshot through `serving.online.predictor.Predictor` (local folder or MLflow alias). Writes one
output file (Parquet or CSV, by suffix) with the Predictor's columns, one row per input row, in the input
order, written chunk by chunk (default folder `outputs/scores/`).

CSV text is parsed with the ingest's own column parser (`features.contract.validation.coerce_column`): timestamps in
ISO-8601 with an offset, dates `YYYY-MM-DD`, countries upper-cased; a value that cannot be parsed makes the
chunk fail with the column named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl
from prefect import flow, task

from features.contract.schema import table_spec
from features.contract.validation import coerce_column
from serving.online.predictor import Predictor

__all__ = ["ScoreSummary", "batch_score", "read_chunks", "score_file"]

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did."""

    input: str
    output: str
    rows: int
    chunks: int
    seconds: float
    model_version: str

    @property
    def rows_per_second(self) -> float:
        """Shipments scored per second, features included."""
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def _check_suffix(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{role} file {path}: use a .parquet or .csv file (got {suffix or 'no suffix'!r})")
    return suffix


def _scan(path: Path) -> pl.LazyFrame:
    if _check_suffix(path, "input") == ".parquet":
        return pl.scan_parquet(path)
    return pl.scan_csv(path, infer_schema=False)


def _parse_text(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Contract types for the String columns of a CSV chunk (the ingest's parser)."""
    schema = table_spec(table).schema
    exprs = []
    for name, dtype in frame.schema.items():
        target = schema.get(name)
        if target is None or target == dtype:
            continue
        typed, _ = coerce_column(pl.col(name), name, target, dtype)
        exprs.append(typed.alias(name))
    parsed = frame.with_columns(exprs) if exprs else frame
    for name in parsed.columns:
        bad = parsed[name].null_count() - frame[name].null_count()
        if bad > 0:
            raise ValueError(f"{table}.{name}: {bad} value(s) cannot be read as {schema[name]}")
    return parsed


def read_chunks(path: Path, chunk_rows: int = 50_000, table: str = "shipments") -> Iterator[pl.DataFrame]:
    """Stream a Parquet/CSV file of contract rows in chunks of at most `chunk_rows`, typed to the contract."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    for chunk in _scan(path).collect_batches(chunk_size=chunk_rows, lazy=True):
        if chunk.height:
            yield _parse_text(chunk, table)


class _Writer:
    """Appends frames to a Parquet (one row group per chunk) or CSV file."""

    def __init__(self, path: Path) -> None:
        self.suffix = _check_suffix(path, "output")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._parquet: Any = None
        self._csv: IO[bytes] | None = None

    def write(self, frame: pl.DataFrame) -> None:
        if self.suffix == ".csv":
            header = self._csv is None
            if self._csv is None:
                self._csv = self.path.open("wb")
            frame.write_csv(self._csv, include_header=header)
            return
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

    def close(self, empty_schema: dict[str, pl.DataType]) -> None:
        if self._parquet is None and self._csv is None:  # no rows: still write a typed empty file
            self.write(pl.DataFrame(schema=empty_schema))
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()


def _events_for(events_path: Path | None, ids: pl.Series) -> pl.DataFrame | None:
    if events_path is None:
        return None
    scan = _scan(events_path).filter(pl.col("shipment_id").is_in(ids.implode()))
    return _parse_text(scan.collect(), "shipment_events")


def score_file(
    predictor: Predictor,
    in_path: Path,
    out_path: Path,
    *,
    events_path: Path | None = None,
    chunk_rows: int = 50_000,
) -> ScoreSummary:
    """Score every row of `in_path` into `out_path`, chunk by chunk (memory bounded by `chunk_rows`).

    Args:
        predictor: models and snapshot.
        in_path: Parquet/CSV of contract `shipments` rows.
        out_path: Parquet/CSV to write (replaced).
        events_path: optional Parquet/CSV of their `shipment_events` (in-transit ETA).
        chunk_rows: rows per chunk.

    Raises:
        ValueError: on an unreadable value or invalid rows (the message names the chunk and column).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    start = time.perf_counter()
    writer = _Writer(out_path)
    rows = chunks = 0
    try:
        for i, chunk in enumerate(read_chunks(in_path, chunk_rows)):
            try:
                preds = predictor.predict_shipments(chunk, _events_for(events_path, chunk["shipment_id"]))
            except ValueError as exc:
                raise ValueError(f"{in_path}, rows {rows + 1}-{rows + chunk.height}: {exc}") from exc
            writer.write(preds)
            rows += chunk.height
            chunks = i + 1
            log.info("scored %s rows", f"{rows:,}")
    finally:
        writer.close(predictor.output_schema())
    return ScoreSummary(
        input=str(in_path),
        output=str(out_path),
        rows=rows,
        chunks=chunks,
        seconds=time.perf_counter() - start,
        model_version=predictor.info.model_version,
    )


@task(name="load-predictor")
def _load(models_dir: Path | None, alias: str | None) -> Predictor:
    if alias is not None:
        return Predictor.from_registry(alias, num_threads=2)
    return Predictor.from_dir(models_dir or Path("outputs/models"), num_threads=2)


@task(name="score-file")
def _score(
    predictor: Predictor, in_path: Path, out_path: Path, events_path: Path | None, chunk_rows: int
) -> ScoreSummary:
    return score_file(predictor, in_path, out_path, events_path=events_path, chunk_rows=chunk_rows)


@flow(name="batch-score")
def batch_score(
    in_path: Path,
    out_path: Path,
    models_dir: Path | None = None,
    alias: str | None = None,
    events_path: Path | None = None,
    chunk_rows: int = 50_000,
) -> dict[str, Any]:
    """Score a file of shipments with the local models (`models_dir`) or the registry's `alias` models.

    Returns:
        The `ScoreSummary` as a dict (rows, chunks, seconds, rows_per_second, model_version, paths).
    """
    predictor = _load(models_dir, alias)
    summary = _score(predictor, Path(in_path), Path(out_path), events_path, chunk_rows)
    return {**asdict(summary), "rows_per_second": summary.rows_per_second}
