"""Stage: contract. Render the data contract as Markdown (`docs/data-contract.md`).

Reads and writes nothing: `contract_markdown()` returns the text; `transitcast contract --markdown` prints it
and a test keeps the committed file equal to it.
"""

from __future__ import annotations

import polars as pl

from features.contract.rules import RULE_DOCS, row_rules
from features.contract.schema import EVENT_RANK, TABLES, TableSpec, table_spec
from features.contract.vocabularies import (
    DOMESTIC_MODE,
    NOT_SHIPPED_STATUSES,
    UNDELIVERED_STATUSES,
)
from features.reference.time_zones import CAPITAL_ZONES

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
  the expected type, and nothing is written). Optional columns may be left out: a nullable one is then
  null; an optional business column that is not nullable ({business}) stays absent from the validated
  table, `ingest_report.json` lists it under `omitted_columns`, and the features that read it are not built
  (never a placeholder value standing in for data). A model trained with such a column refuses rows
  without it, naming the column. When the column is present, every value must be set and pass its rules.
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


_LEGS = """### Multi-leg shipments

A shipment that travels as several legs (parallel inbound legs of a split consignment, or successive hops
each scanned from pickup to arrival) gives each scan its `leg_id`. The order and terminal rules hold per
shipment x leg, so legs never conflict with each other; scans without `leg_id` (or an absent column) form
one chain per shipment. For the in-transit features the legs collapse to one chain: the scans of every leg
are read in time order (the state after a scan is that scan's milestone; `leg_id` is not a feature), and a
leg's terminal scan ends the shipment's chain only when it is the last of its legs to end. Mark the final
hand-over to the buyer as `delivered` on the last leg; the shipment's own `delivered_at` is the target.
"""


def _events_section() -> str:
    ranks: dict[int, list[str]] = {}
    for event, rank in EVENT_RANK.items():
        ranks.setdefault(rank, []).append(f"`{event}`")
    order = " -> ".join(" / ".join(v) for _, v in sorted(ranks.items()))
    return (
        "## Milestone order\n\nThe scans of one shipment and leg, sorted by time, must follow this order "
        "(stages may be skipped; scans in the same stage may alternate, e.g. repeated `out_for_delivery` / "
        "`delivery_failed`):\n\n" + order + "\n\nWhen scans are out of order, the smaller set of scans that "
        "explains the conflict is quarantined (`event_order`).\n\n" + _LEGS
    )


def _outcomes_section() -> str:
    late = " or ".join(f"`{s}`" for s in UNDELIVERED_STATUSES)
    not_shipped = " or ".join(f"`{s}`" for s in NOT_SHIPPED_STATUSES)
    capitals = ", ".join(
        f"{z.split('/')[-1].replace('_', ' ')} for {c}" for c, z in CAPITAL_ZONES.items() if "/" in z
    )
    return f"""## Dates, time zones and lateness

* `promised_date` is a date in the destination's local calendar. A shipment is on time when `delivered_at`,
  converted to the time zone of its `destination_country`, falls on or before that date; the promised day
  ends at the next local midnight (when lateness of an undelivered parcel becomes known). The zone of a
  country is its capital's: the first zone the IANA time zone database lists for the country, except where
  that is not the capital's ({capitals}). A country the database does not know is judged in UTC.
* A parcel with status {late} never reached the buyer: it counts as late.
* An order with status {not_shipped} was cancelled before it shipped: it has no `delivered_at`, is never
  quarantined for it, and is left out of every target and of the punctuality history (neither on time nor
  late).
* Mode `{DOMESTIC_MODE}` is a parcel that never crosses a border: its origin and destination countries are
  equal (`domestic_same_country`). A lane's `contract_transit_days` may be 0 (a same-day quote).
* Calendar features follow each shipment's own countries: public holidays of the origin and of the
  destination (the `holidays` package), the e-commerce peaks that apply between them (Singles' Day when
  the parcel leaves from or goes to China, Black Friday / Cyber Monday everywhere, Christmas where the
  destination keeps 25 December), and the Lunar New Year only where the origin keeps it.
"""


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
    business = ", ".join(f"`{c}`" for c in table_spec("shipments").omittable_columns)
    return (
        _INTRO.format(business=business)
        + "\n".join(sections)
        + "\n"
        + _events_section()
        + "\n"
        + _outcomes_section()
        + "\n"
        + _quarantine_section()
    )
