"""Stage: ingest (source adapters). Map public datasets into raw contract tables.

Reads the saved public datasets (`read_source`, the only function here that touches the disk) and maps each
one, as a pure frame-in -> frames-out function, into the contract tables of `features.contract.schema`:

- `scms` (USAID SCMS delivery history) -> `shipments`
- `online-retail` (UCI Online Retail) -> `warehouse_sales`, `skus`, `warehouses`
- `kcs` (Korea Customs Service synthetic declarations) -> `customs_declarations`

Any other flat export goes through a mapping file instead of code: `features.sources.mapping`.

Every adapter returns an `AdapterResult`: the contract tables (exact contract dtypes, plus `attr_*` String
passthrough columns where the table allows them), the source rows it could not map (`rejected`, one row per
source row with the rule that rejected it), a log of values that were derived rather than observed
(`imputed`), and `notes`, the count of each mapping decision. Source rows are never dropped silently:
`notes["rows_in"] == notes["rows_mapped"] + notes["rows_rejected"]`, where a mapped row may be aggregated
with others into one output row. `docs/adapters.md` documents every decision with counts on the real files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, get_args

import polars as pl

__all__ = [
    "ADAPTERS",
    "IMPUTED_SCHEMA",
    "REJECTED_SCHEMA",
    "AdapterResult",
    "SourceName",
    "adapt_kcs",
    "adapt_online_retail",
    "adapt_scms",
    "as_imputed",
    "as_rejected",
    "read_source",
]

SourceName = Literal["scms", "online-retail", "kcs"]

REJECTED_SCHEMA: Final = pl.Schema(
    {
        "source_row": pl.Int64(),
        "column": pl.String(),
        "rule": pl.String(),
        "raw_value": pl.String(),
        "detail": pl.String(),
    }
)
IMPUTED_SCHEMA: Final = pl.Schema(
    {
        "table": pl.String(),
        "key": pl.String(),
        "column": pl.String(),
        "rule": pl.String(),
        "raw_value": pl.String(),
    }
)


@dataclass(frozen=True)
class AdapterResult:
    """What a source adapter produces.

    Attributes:
        tables: contract tables by name, with the exact dtypes of
            `features.contract.schema.TABLES[name].schema`
            (plus `attr_*` String columns where the table has a passthrough prefix).
        rejected: source rows the adapter could not map, one row per source row (`REJECTED_SCHEMA`):
            `source_row` is the 1-based row in the source frame.
        notes: count of each mapping decision (rows in/mapped/rejected, rules applied, values derived).
        imputed: values that were derived by a documented rule rather than read (`IMPUTED_SCHEMA`):
            table, key of the output row, column, rule and the raw source value.
    """

    tables: dict[str, pl.DataFrame]
    rejected: pl.DataFrame
    notes: dict[str, int]
    imputed: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=IMPUTED_SCHEMA))


def as_rejected(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the `REJECTED_SCHEMA` columns of `frame`, ordered by source row.

    Examples:
        >>> as_rejected(pl.DataFrame({"source_row": [2], "column": ["a"], "rule": ["r"], "raw_value": [1],
        ...                           "detail": ["d"]})).dtypes
        [Int64, String, String, String, String]
    """
    columns = (pl.col(name).cast(dtype) for name, dtype in REJECTED_SCHEMA.items())
    return frame.select(columns).sort("source_row")


def as_imputed(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the `IMPUTED_SCHEMA` columns of `frame`, ordered by column then key."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in IMPUTED_SCHEMA.items()).sort(
        "column", "key", "rule"
    )


def _only_file(folder: Path, pattern: str) -> Path:
    files = sorted(folder.glob(pattern))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one {pattern} in {folder}, found {[f.name for f in files]}")
    return files[0]


def _kcs_split(path: Path) -> str | None:
    suffix = path.stem.rsplit("_", 1)[-1]
    return suffix if suffix in ("train", "valid", "test") else None


def _read_kcs(src: Path) -> pl.DataFrame:
    files = sorted(src.glob("*.parquet")) if src.is_dir() else [src]
    if not files:
        raise FileNotFoundError(f"no parquet files in {src}")
    order = {"train": 0, "valid": 1, "test": 2}
    files.sort(key=lambda f: (order.get(_kcs_split(f) or "", 3), f.name))
    return pl.concat(
        [pl.read_parquet(f).with_columns(split=pl.lit(_kcs_split(f), dtype=pl.String())) for f in files],
        how="vertical",
    )


def read_source(name: SourceName, src: Path) -> pl.DataFrame:
    """Read one saved public dataset as the frame its adapter expects.

    Args:
        name: which dataset (`scms`, `online-retail` or `kcs`).
        src: the dataset folder (e.g. `shared/data/scms_shipment_pricing`) or its Parquet file. For `kcs` a
            folder means all its Parquet files, concatenated train, valid, test, with a `split` column taken
            from the file name suffix (null when the name has none).

    Returns:
        The source frame, columns and dtypes as saved (plus `split` for `kcs`).

    Raises:
        ValueError: unknown `name`.
        FileNotFoundError: no (or more than one, for `scms`/`online-retail`) Parquet file in `src`.
    """
    if name not in get_args(SourceName):
        raise ValueError(f"unknown source {name!r}; known: {', '.join(get_args(SourceName))}")
    src = Path(src)
    if name == "kcs":
        return _read_kcs(src)
    return pl.read_parquet(_only_file(src, "*.parquet") if src.is_dir() else src)


# The adapters import AdapterResult and the helpers above, so they are imported after them.
from features.sources.kcs import adapt_kcs  # noqa: E402
from features.sources.online_retail import adapt_online_retail  # noqa: E402
from features.sources.scms import adapt_scms  # noqa: E402

ADAPTERS: Final[dict[str, Callable[[pl.DataFrame], AdapterResult]]] = {
    "scms": adapt_scms,
    "online-retail": adapt_online_retail,
    "kcs": adapt_kcs,
}
