"""Stage: ingest (source adapter). Korea Customs Service synthetic declarations -> `customs_declarations`.

Reads a frame with the columns of `shared/data/customs_kcs_synthetic/*.parquet` (train, valid and test
concatenated by the caller, plus an optional `split` column naming the publisher's split, as
`features.sources.read_source("kcs", ...)` adds it) and writes one `customs_declarations` row per
declaration. The publisher's categorical codes are kept as `attr_*` String passthrough columns.

The rows are synthetic (CTGAN), generated from *inspected* declarations only: every row is an inspection,
`is_inspected` is always true, and the labels are `is_fraud` (under-declaration found) and
`fraud_severity`. `fraud_severity > 0` if and only if `is_fraud`: it must never be a feature for `is_fraud`.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from features.contract.countries import country_code
from features.contract.schema import CustomsOutcome, table_spec
from features.sources import AdapterResult, as_rejected

__all__ = ["ATTR_COLUMNS", "DESTINATION_COUNTRY", "KRW_PER_USD", "adapt_kcs"]

KRW_PER_USD: Final = 1180.0
"""Fixed KRW per USD (2020 average ~1,180); the rows span Jan 2020 - Jun 2021."""

DESTINATION_COUNTRY: Final = "KR"

ATTR_COLUMNS: Final[dict[str, str]] = {
    "Process Type": "attr_process_type",
    "Import Type": "attr_import_type",
    "Import Use": "attr_import_use",
    "Payment Type": "attr_payment_type",
    "Tax Type": "attr_tax_type",
    "Country of Origin Indicator": "attr_origin_indicator",
    "Mode of Transport": "attr_transport_mode",
    "Country of Departure": "attr_country_of_departure",
}
"""Source categorical codes kept verbatim as passthrough columns (`split` becomes `attr_split`)."""

# Rules checked in order; the first that fails rejects the row.
_RULES: Final[tuple[tuple[str, str, pl.Expr, str], ...]] = (
    ("missing_declaration_id", "Declaration ID", pl.col("Declaration ID").is_null(), "no declaration id"),
    (
        "duplicate_declaration_id",
        "Declaration ID",
        ~pl.col("Declaration ID").is_first_distinct(),
        "declaration id seen on an earlier row (first kept)",
    ),
    ("missing_date", "Date", pl.col("Date").is_null(), "no declaration date"),
    (
        "invalid_hs_code",
        "HS6 Code",
        ~pl.col("HS6 Code").str.contains(r"^\d{6}$").fill_null(False),
        "HS6 Code is not 6 digits",
    ),
    (
        "invalid_item_price",
        "Item Price",
        (pl.col("Item Price") < 0).fill_null(True),
        "Item Price negative or missing",
    ),
    ("invalid_fraud_label", "Fraud", ~pl.col("Fraud").is_in([0, 1]).fill_null(False), "Fraud not 0/1"),
)


def _origin_country(raw: pl.DataFrame) -> pl.Expr:
    names = raw.get_column("Country of Origin").drop_nulls().unique().to_list()
    mapping = {n: country_code(n) for n in names}
    # country_code also accepts names; keep only values that are already ISO-2 codes.
    valid = {n: c for n, c in mapping.items() if c is not None and c == n.strip().upper()}
    return pl.col("Country of Origin").replace_strict(valid, default=None, return_dtype=pl.String())


def adapt_kcs(raw: pl.DataFrame) -> AdapterResult:
    """Map KCS synthetic import declarations to the `customs_declarations` table.

    One row per `Declaration ID`. `declared_at` is the `Date` at 00:00 UTC; `declared_value_usd` is
    `Item Price` (KRW) / `KRW_PER_USD`; `outcome` is `duty_reassessed` when `Fraud == 1`, else `released`;
    `origin_country` is `Country of Origin` when it is a valid ISO-2 code, else null (counted in notes).

    Args:
        raw: the concatenated KCS frame (see module docstring); `split` is optional.

    Returns:
        `customs_declarations` with `attr_*` passthrough columns, rejected rows and notes.
    """
    spec = table_spec("customs_declarations")
    frame = raw.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64()))
    rule = pl.lit(None, dtype=pl.String())
    column = pl.lit(None, dtype=pl.String())
    detail = pl.lit(None, dtype=pl.String())
    raw_value = pl.lit(None, dtype=pl.String())
    for name, col, failed, text in reversed(_RULES):
        rule = pl.when(failed).then(pl.lit(name)).otherwise(rule)
        column = pl.when(failed).then(pl.lit(col)).otherwise(column)
        detail = pl.when(failed).then(pl.lit(text)).otherwise(detail)
        raw_value = pl.when(failed).then(pl.col(col).cast(pl.String())).otherwise(raw_value)
    frame = frame.with_columns(_rule=rule, column=column, detail=detail, raw_value=raw_value)
    rejected = as_rejected(
        frame.filter(pl.col("_rule").is_not_null()).rename({"_row": "source_row", "_rule": "rule"})
    )
    ok = frame.filter(pl.col("_rule").is_null())

    split = pl.col("split").cast(pl.String()) if "split" in ok.columns else pl.lit(None, dtype=pl.String())
    out = ok.select(
        declaration_id=pl.col("Declaration ID").cast(pl.String()),
        shipment_id=pl.lit(None, dtype=pl.String()),
        declared_at=pl.col("Date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        destination_country=pl.lit(DESTINATION_COUNTRY),
        hs_code=pl.col("HS6 Code"),
        declared_value_usd=pl.col("Item Price") / KRW_PER_USD,
        is_inspected=pl.lit(True),
        outcome=pl.when(pl.col("Fraud") == 1)
        .then(pl.lit("duty_reassessed"))
        .otherwise(pl.lit("released"))
        .cast(CustomsOutcome),
        released_at=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
        origin_country=_origin_country(ok),
        duty_usd=pl.lit(None, dtype=pl.Float64()),
        net_mass_kg=pl.col("Net Mass"),
        tax_rate_pct=pl.col("Tax Rate"),
        importer_id=pl.col("Importer ID"),
        declarant_id=pl.col("Declarant ID"),
        seller_id=pl.col("Seller ID"),
        courier_id=pl.col("Courier ID"),
        office_id=pl.col("Office ID"),
        is_fraud=pl.col("Fraud") == 1,
        fraud_severity=pl.col("Critical Fraud"),
        **{attr: pl.col(src).cast(pl.String()) for src, attr in ATTR_COLUMNS.items()},
        attr_split=split,
    )
    attrs = [c for c in out.columns if c.startswith("attr_")]
    out = out.select(*(pl.col(c).cast(t) for c, t in spec.schema.items()), *attrs).sort(spec.sort_by)

    origin_raw = ok.get_column("Country of Origin")
    notes = {
        "rows_in": raw.height,
        "rows_mapped": out.height,
        "rows_rejected": rejected.height,
        **{f"rejected:{r}": n for r, n in rejected.get_column("rule").value_counts().iter_rows()},
        "declarations": out.height,
        "fraud": int(out.get_column("is_fraud").sum()),
        "critical_fraud": int((out.get_column("fraud_severity") == 2).sum()),
        "outcome_duty_reassessed": int(out.get_column("is_fraud").sum()),
        "outcome_released": int((~out.get_column("is_fraud")).sum()),
        "origin_country_invalid_to_null": int(
            (out.get_column("origin_country").is_null() & origin_raw.is_not_null()).sum()
        ),
        "origin_country_missing": int(origin_raw.is_null().sum()),
        "seller_id_null": int(out.get_column("seller_id").null_count()),
        "courier_id_null": int(out.get_column("courier_id").null_count()),
        **{f"split:{s}": n for s, n in out.get_column("attr_split").fill_null("none").value_counts().rows()},
    }
    return AdapterResult(tables={"customs_declarations": out}, rejected=rejected, notes=notes)
