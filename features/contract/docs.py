"""Stage: contract. Render the data contract as Markdown (`docs/data-contract.md`).

Reads and writes nothing: `contract_markdown()` returns the text; `transitcast contract --markdown` prints it
and a test keeps the committed file equal to it.
"""

from __future__ import annotations

import polars as pl

from features.contract.rules import RULE_DOCS, row_rules
from features.contract.schema import EVENT_RANK, TABLES, TableSpec

__all__ = ["contract_markdown"]

_INTRO = """# The transitcast data contract

Every source (your own files, a public dataset through `transitcast adapt`, or the simulator) is mapped to
these tables before anything else reads it. Put one file per table in a folder, named after the table
(`shipments.csv`, `shipments.parquet`, `shipments.csv.gz`, or a folder `shipments/` of parts), and run

```bash
transitcast ingest --raw my_raw_folder --out data/validated
```

Ingest writes `<out>/<table>.parquet` with exactly the types below, `<out>/quarantine.parquet` with every
rejected row and its reason, and `<out>/ingest_report.json` with the row accounting
(`rows in = valid + quarantined` for every table). Nothing is dropped silently.

Conventions:

* Column suffixes carry units and types: `_id` identifier, `_at` timestamp (UTC), `_date` calendar date,
  `_days`, `_kg`, `_usd`, `_pct`, `_country` ISO 3166-1 alpha-2, `is_` booleans.
* Timestamps in CSV files are ISO 8601 with an offset: `2025-03-01T08:15:00Z` or
  `2025-03-01 16:15:00+08:00`. They are converted to UTC. A timestamp without an offset is quarantined
  (`timezone_missing`) unless you pass `--assume-timezone Asia/Shanghai` (any IANA zone).
* Dates are `YYYY-MM-DD`. Booleans are `true/false` (also `1/0`, `yes/no`, `t/f`).
* Integers must be whole numbers (`3`, or `3.0` in Parquet); `3.7` in an integer column is a `type` error,
  never truncated.
* HS codes are 6 digits; dots and spaces are removed (`8518.30` is read as `851830`), and integer HS codes
  in Parquet get their leading zero back (`10121` is `010121`). Country codes are upper-cased.
* Required columns must be present in the file (a missing one refuses the whole file, naming the column and
  the expected type, and nothing is written). Optional columns may be left out; they are then null.
* Columns that are not in the contract are ignored (listed in the report), except in tables with a
  passthrough prefix (`attr_*` in `customs_declarations`), which are kept as text.
* CSV files are read as text first, so a bad value is reported with exactly what was in the file.

"""


def _rules_of(spec: TableSpec) -> list[str]:
    seen: dict[str, list[str]] = {}
    for r in row_rules(spec):
        seen.setdefault(r.rule, []).append(r.column)
    lines = [f"* `{rule}` ({', '.join(cols)}): {RULE_DOCS[rule]}" for rule, cols in seen.items()]
    lines.append(f"* `duplicate_key` ({', '.join(spec.key)}): {RULE_DOCS['duplicate_key']}")
    for column, parent, parent_col in spec.foreign_keys:
        lines.append(
            f"* `foreign_key` ({column} -> {parent}.{parent_col}): {RULE_DOCS['foreign_key']}; checked when "
            f"{parent} is ingested in the same run"
        )
    if spec.name == "shipment_events":
        for rule in ("event_before_created", "event_order", "event_after_terminal"):
            lines.append(f"* `{rule}`: {RULE_DOCS[rule]}")
    return lines


def _example_row(spec: TableSpec) -> str:
    return ",".join(spec.schema.names()) + "\n" + ",".join(c.example for c in spec.columns)


def _dtype_text(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Enum):
        return "Enum: " + ", ".join(f"`{v}`" for v in dtype.categories.to_list())
    if isinstance(dtype, pl.Datetime):
        return f"Datetime[{dtype.time_unit}, {dtype.time_zone}]"
    return str(dtype)


def _table_section(spec: TableSpec) -> str:
    rows = [
        "| column | type | required | nullable | unit | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for c in spec.columns:
        dtype = _dtype_text(c.dtype)
        rows.append(
            f"| `{c.name}` | {dtype} | {'yes' if c.required else 'no'} | {'yes' if c.nullable else 'no'} "
            f"| {c.unit} | {c.description} |"
        )
    parts = [
        f"## `{spec.name}`",
        "",
        f"One row per {spec.grain}. Key: `{', '.join(spec.key)}`.",
        "",
        *rows,
        "",
        "Rules (the first broken rule is the row's quarantine reason; all are listed in `violations`):",
        "",
        *_rules_of(spec),
        "",
        "Example (CSV):",
        "",
        "```csv",
        _example_row(spec),
        "```",
        "",
    ]
    return "\n".join(parts)


def _events_section() -> str:
    ranks: dict[int, list[str]] = {}
    for event, rank in EVENT_RANK.items():
        ranks.setdefault(rank, []).append(f"`{event}`")
    order = " -> ".join(" / ".join(v) for _, v in sorted(ranks.items()))
    return (
        "## Milestone order\n\nA shipment's scans, sorted by time, must follow this order (stages may be "
        "skipped; scans in the same stage may alternate, e.g. repeated `out_for_delivery` / "
        "`delivery_failed`):\n\n" + order + "\n\nWhen scans are out of order, the smaller set of scans that "
        "explains the conflict is quarantined (`event_order`).\n"
    )


def _quarantine_section() -> str:
    return """## The quarantine

`quarantine.parquet` has one row per rejected input row:

| column | meaning |
|---|---|
| `table` | contract table |
| `source_file` | the raw file the row came from |
| `row_number` | 1-based data row in that file (the header is not counted) |
| `column` | the column of the first broken rule |
| `rule` | the first broken rule (see the rules of each table) |
| `raw_value` | the value of that column exactly as read |
| `detail` | the rule in words |
| `violations` | every broken rule, as `rule:column` |
| `raw_row` | the whole raw row as JSON, to fix and re-ingest |
"""


def contract_markdown() -> str:
    """The whole contract as Markdown."""
    sections = [_table_section(spec) for spec in TABLES.values()]
    return _INTRO + "\n".join(sections) + "\n" + _events_section() + "\n" + _quarantine_section()
