"""Stage: orchestration. The `batch-score` flow: score a Parquet/CSV file of shipments, chunk by chunk.

Reads a file of contract `shipments` rows (Parquet or CSV, any size: it is streamed in chunks of
`chunk_rows`, so files larger than memory work), optionally a file of their `shipment_events`, and the models
+ feature snapshot through `serving.online.predictor.Predictor` (a local folder or MLflow aliases, given by
the caller). Writes one output file (Parquet or CSV, by suffix) with the Predictor's columns, one row per
scored row, in the input order; with `rejects_path`, the rejected rows there (row number, column, rule, raw
value, fix, the whole raw row).

Every row is checked with the rules `/v1/eta` applies (`serving.online.inputs.check_rows`: the ingest's
parser, the contract's row rules, unique ids within a chunk, the scoring bounds). Without `rejects_path` a
bad row stops the run with the rows, columns, rules and fixes named. Files are written under a temporary
name and renamed at the end: a failed run leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl
from prefect import flow, task

from serving.online.inputs import EVENTS_SPEC, REJECTS_SCHEMA, Rejects, check_rows
from serving.online.predictor import Predictor
from serving.online.snapshot import SNAPSHOT_DIR

__all__ = ["ModelSource", "ScoreSummary", "batch_score", "read_chunks", "score_file"]

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did: rows read, scored and rejected, where they went, how fast."""

    input: str
    output: str
    rows_in: int
    rows: int
    rejected: int
    rejects: str | None
    chunks: int
    seconds: float
    model_version: str

    @property
    def rows_per_second(self) -> float:
        """Rows read per second, checks and features included."""
        return self.rows_in / self.seconds if self.seconds > 0 else float("nan")


def _check_suffix(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{role} file {path}: use a .parquet or .csv file (got {suffix or 'no suffix'!r})")
    return suffix


def _scan(path: Path) -> pl.LazyFrame:
    if _check_suffix(path, "input") == ".parquet":
        return pl.scan_parquet(path)
    return pl.scan_csv(path, infer_schema=False)


def read_chunks(path: Path, chunk_rows: int = 50_000) -> Iterator[pl.DataFrame]:
    """Stream a Parquet/CSV file in chunks of at most `chunk_rows` rows, as read (CSV columns as text)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    for chunk in _scan(path).collect_batches(chunk_size=chunk_rows, lazy=True):
        if chunk.height:
            yield chunk


class _Writer:
    """Appends frames to a Parquet (one row group per chunk) or CSV file under a temporary name; `commit`
    renames it into place, `abort` removes it (and the folders it created)."""

    def __init__(self, path: Path) -> None:
        self.suffix = _check_suffix(path, "output")
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self._created: list[Path] = []
        self._parquet: Any = None
        self._csv: IO[bytes] | None = None

    def write(self, frame: pl.DataFrame) -> None:
        if self._parquet is None and self._csv is None:
            self._created = [p for p in reversed(self.path.parents) if not p.exists()]
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.suffix == ".csv":
            header = self._csv is None
            if self._csv is None:
                self._csv = self.partial.open("wb")
            frame.write_csv(self._csv, include_header=header)
            return
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.partial, table.schema)
        self._parquet.write_table(table)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def commit(self, empty: pl.DataFrame) -> None:
        if self._parquet is None and self._csv is None:  # no rows: still write a typed empty file
            self.write(empty)
        self._close()
        self.partial.replace(self.path)

    def abort(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)
        for folder in reversed(self._created):
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()


def _events_for(events_path: Path | None, ids: pl.Series, assume_timezone: str | None) -> pl.DataFrame | None:
    if events_path is None:
        return None
    raw = _scan(events_path).filter(pl.col("shipment_id").is_in(ids.implode())).collect()
    checked = check_rows(raw, EVENTS_SPEC, assume_timezone=assume_timezone, unique_key=False)
    if checked.rejects.height:
        raise Rejects("shipment_events", checked.rejects, checked.rows_in, where=str(events_path))
    return checked.valid


def score_file(
    predictor: Predictor,
    in_path: Path,
    out_path: Path,
    *,
    events_path: Path | None = None,
    chunk_rows: int = 50_000,
    assume_timezone: str | None = None,
    rejects_path: Path | None = None,
) -> ScoreSummary:
    """Score every row of `in_path` into `out_path`, chunk by chunk (memory bounded by `chunk_rows`).

    Args:
        predictor: models and snapshot.
        in_path: Parquet/CSV of contract `shipments` rows.
        out_path: Parquet/CSV to write (replaced only when the run succeeds).
        events_path: optional Parquet/CSV of their `shipment_events` (in-transit ETA); bad ones stop the run.
        chunk_rows: rows per chunk.
        assume_timezone: IANA zone of timestamps written without a UTC offset; None refuses them.
        rejects_path: where to write rejected rows (Parquet/CSV); None: a rejected row stops the run.

    Raises:
        Rejects: a row breaks a rule and there is no `rejects_path` (names rows, columns, rules and fixes).
        ValueError: a missing column or an unknown file type. Nothing is written in either case.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    start = time.perf_counter()
    writer = _Writer(out_path)
    rejects = None if rejects_path is None else _Writer(rejects_path)
    rows_in = rows = rejected = chunks = 0
    try:
        for chunk in read_chunks(in_path, chunk_rows):
            checked = check_rows(chunk, first_row=rows_in + 1, assume_timezone=assume_timezone)
            if checked.rejects.height and rejects is None:
                where = f"{in_path} (rows {rows_in + 1:,}-{rows_in + chunk.height:,})"
                raise Rejects("shipments", checked.rejects, chunk.height, where=where)
            if rejects is not None and checked.rejects.height:
                rejects.write(checked.rejects)
            events = _events_for(events_path, checked.valid["shipment_id"], assume_timezone)
            writer.write(predictor.predict_shipments(checked.valid, events))
            rows_in, rows, rejected = (
                rows_in + chunk.height,
                rows + checked.valid.height,
                rejected + checked.rejects.height,
            )
            chunks += 1
            log.info("scored %s rows (%s rejected)", f"{rows:,}", f"{rejected:,}")
        writer.commit(pl.DataFrame(schema=predictor.output_schema()))
        if rejects is not None:
            rejects.commit(pl.DataFrame(schema=REJECTS_SCHEMA))
    except BaseException:
        writer.abort()
        if rejects is not None:
            rejects.abort()
        raise
    return ScoreSummary(
        input=str(in_path),
        output=str(out_path),
        rows_in=rows_in,
        rows=rows,
        rejected=rejected,
        rejects=None if rejects_path is None else str(rejects_path),
        chunks=chunks,
        seconds=time.perf_counter() - start,
        model_version=predictor.info.model_version,
    )


@dataclass(frozen=True)
class ModelSource:
    """Which models score: the registry's `alias` at `tracking_uri` if set, else the local `models_dir`
    (whose `snapshot/` also serves a registered run that has none)."""

    models_dir: Path | None = None
    alias: str | None = None
    tracking_uri: str | None = None

    def load(self, num_threads: int = 2) -> Predictor:
        """The Predictor of this source.

        Raises:
            ValueError: neither a folder nor an alias with its tracking URI.
        """
        if self.alias is not None:
            if self.tracking_uri is None:
                raise ValueError(f"alias {self.alias!r} needs the MLflow tracking URI")
            return Predictor.from_registry(
                self.alias,
                tracking_uri=self.tracking_uri,
                snapshot_dir=None if self.models_dir is None else self.models_dir / SNAPSHOT_DIR,
                num_threads=num_threads,
            )
        if self.models_dir is None:
            raise ValueError("give the models folder or a registry alias")
        return Predictor.from_dir(self.models_dir, num_threads=num_threads)


@task(name="load-predictor")
def _load(source: ModelSource) -> Predictor:
    return source.load()


@task(name="score-file")
def _score(
    predictor: Predictor,
    in_path: Path,
    out_path: Path,
    events_path: Path | None,
    chunk_rows: int,
    assume_timezone: str | None,
    rejects_path: Path | None,
) -> ScoreSummary:
    return score_file(
        predictor,
        in_path,
        out_path,
        events_path=events_path,
        chunk_rows=chunk_rows,
        assume_timezone=assume_timezone,
        rejects_path=rejects_path,
    )


@flow(name="batch-score")
def batch_score(
    in_path: Path,
    out_path: Path,
    source: ModelSource,
    events_path: Path | None = None,
    chunk_rows: int = 50_000,
    assume_timezone: str | None = None,
    rejects_path: Path | None = None,
) -> ScoreSummary:
    """Score a file of shipments with the models of `source` (see `score_file`).

    Returns:
        The `ScoreSummary` (rows read, scored and rejected, chunks, seconds, model version, paths).
    """
    predictor = _load(source)
    return _score(
        predictor, Path(in_path), Path(out_path), events_path, chunk_rows, assume_timezone, rejects_path
    )
