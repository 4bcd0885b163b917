"""Stage: contract. The row rules of every contract table, as Polars expressions.

Reads and writes nothing. A `Rule` is a named boolean expression that is true when a row passes; a null
result counts as a pass (a null in a required column is caught by its own `not_null` rule, and a value that
could not be coerced by the `type` rule). `row_rules(spec)` derives the generic rules from column names and
specs (ISO-2 countries, 6-digit HS codes, non-negative quantities, finite numbers) and adds the table's own
cross-column rules. Table-level rules that need more than one row (unique keys, foreign keys, event order)
live in `features.contract.validation`.

Example:
    >>> import polars as pl
    >>> from features.contract.schema import table_spec
    >>> rules = {r.name: r for r in row_rules(table_spec("warehouses"))}
    >>> df = pl.DataFrame({"country": ["US", "XX"]})
    >>> df.select(rules["iso2_country:country"].check).to_series().to_list()
    [True, False]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from features.contract.countries import ISO2_CODES
from features.contract.schema import TableSpec
from features.contract.vocabularies import DOMESTIC_MODE, REPLENISHMENT_MODES

__all__ = ["Rule", "RULE_DOCS", "row_rules"]


@dataclass(frozen=True)
class Rule:
    """A row rule.

    Attributes:
        rule: short rule name written to the quarantine (`not_null`, `iso2_country`, ...).
        column: the column blamed in the quarantine.
        check: boolean expression, true (or null) when the row passes.
        detail: the rule in words, for the quarantine and the docs.
    """

    rule: str
    column: str
    check: pl.Expr
    detail: str

    @property
    def name(self) -> str:
        """Unique name within a table: `rule:column`."""
        return f"{self.rule}:{self.column}"


# Rule names and what they mean, for docs/data-contract.md.
RULE_DOCS: dict[str, str] = {
    "missing_column": "a required column is absent from the file (the whole file is refused)",
    "type": "the value cannot be read as the column's type (number, date, boolean, ...)",
    "vocabulary": "the value is not one of the column's allowed categories",
    "timezone_missing": "a timestamp has no UTC offset (write 2025-03-01T08:15:00Z or +08:00, or pass "
    "--assume-timezone)",
    "not_null": "a required value is empty",
    "iso2_country": "not an ISO 3166-1 alpha-2 country code",
    "hs_code_6_digits": "the HS code is not exactly 6 digits",
    "non_negative": "a quantity, weight, value or cost is negative",
    "positive": "the value must be greater than zero",
    "finite": "NaN or infinite number",
    "delivered_after_created": "delivered_at is before created_at",
    "delivered_iff_status_delivered": "delivered_at is set exactly when status is delivered",
    "promised_after_created": "promised_date is before the day the shipment was created",
    "domestic_same_country": f"mode {DOMESTIC_MODE} needs origin_country equal to destination_country",
    "released_after_declared": "released_at is before declared_at",
    "received_after_shipped": "received_at is before shipped_at",
    "replenishment_mode": "replenishments travel by " + ", ".join(REPLENISHMENT_MODES),
    "stockout_on_hand": "is_stockout is true but units were left on hand at the end of the day",
    "duplicate_key": "another row has the same key (the first occurrence is kept)",
    "foreign_key": "the referenced row does not exist in the parent table (or was quarantined)",
    "event_before_created": "a milestone is scanned before the shipment was created",
    "event_order": "a milestone is out of the possible order (e.g. delivered before line-haul departure)",
    "event_after_terminal": "a second terminal event (delivered/returned/lost) after the first",
}

_NON_NEGATIVE_SUFFIXES = ("_kg", "_usd", "_days", "_units", "_pct")
_NON_NEGATIVE_NAMES = {"units_sold", "on_hand_end", "units", "capacity_units", "customs_days"}
# `contract_transit_days` may be 0: a same-day quote is valid (the `_days` suffix makes it non-negative).
_POSITIVE_NAMES = {"item_count", "case_pack", "min_order_units"}


def _is_country_column(name: str) -> bool:
    return name == "country" or name.endswith("_country")


def _generic_rules(spec: TableSpec) -> list[Rule]:
    rules: list[Rule] = []
    for c in spec.columns:
        col = pl.col(c.name)
        if not c.nullable:
            rules.append(Rule("not_null", c.name, col.is_not_null(), RULE_DOCS["not_null"]))
        if _is_country_column(c.name):
            rules.append(
                Rule("iso2_country", c.name, col.is_in(sorted(ISO2_CODES)), RULE_DOCS["iso2_country"])
            )
        if c.name == "hs_code":
            rules.append(
                Rule("hs_code_6_digits", c.name, col.str.contains(r"^\d{6}$"), RULE_DOCS["hs_code_6_digits"])
            )
        if c.dtype.is_float():
            rules.append(Rule("finite", c.name, col.is_finite(), RULE_DOCS["finite"]))
        if c.dtype.is_numeric():
            if c.name in _POSITIVE_NAMES:
                rules.append(Rule("positive", c.name, col > 0, RULE_DOCS["positive"]))
            elif c.name in _NON_NEGATIVE_NAMES or c.name.endswith(_NON_NEGATIVE_SUFFIXES):
                rules.append(Rule("non_negative", c.name, col >= 0, RULE_DOCS["non_negative"]))
    return rules


def _shipments_rules() -> list[Rule]:
    delivered = pl.col("status") == "delivered"
    return [
        Rule(
            "delivered_after_created",
            "delivered_at",
            pl.col("delivered_at") >= pl.col("created_at"),
            RULE_DOCS["delivered_after_created"],
        ),
        Rule(
            "delivered_iff_status_delivered",
            "delivered_at",
            pl.col("delivered_at").is_not_null() == delivered,
            RULE_DOCS["delivered_iff_status_delivered"],
        ),
        Rule(
            "promised_after_created",
            "promised_date",
            pl.col("promised_date") >= pl.col("created_at").dt.date(),
            RULE_DOCS["promised_after_created"],
        ),
        Rule(
            "domestic_same_country",
            "mode",
            (pl.col("mode") != DOMESTIC_MODE) | (pl.col("origin_country") == pl.col("destination_country")),
            RULE_DOCS["domestic_same_country"],
        ),
    ]


def _customs_rules() -> list[Rule]:
    return [
        Rule(
            "released_after_declared",
            "released_at",
            pl.col("released_at") >= pl.col("declared_at"),
            RULE_DOCS["released_after_declared"],
        )
    ]


def _replenishment_rules() -> list[Rule]:
    return [
        Rule(
            "received_after_shipped",
            "received_at",
            pl.col("received_at") >= pl.col("shipped_at"),
            RULE_DOCS["received_after_shipped"],
        ),
        Rule(
            "replenishment_mode",
            "mode",
            pl.col("mode").cast(pl.String).is_in(list(REPLENISHMENT_MODES)),
            RULE_DOCS["replenishment_mode"],
        ),
        Rule("positive", "units", pl.col("units") > 0, RULE_DOCS["positive"]),
    ]


def _sales_rules() -> list[Rule]:
    return [
        Rule(
            "stockout_on_hand",
            "is_stockout",
            ~(pl.col("is_stockout") & (pl.col("on_hand_end") > 0)),
            RULE_DOCS["stockout_on_hand"],
        )
    ]


_TABLE_RULES: dict[str, Callable[[], list[Rule]]] = {
    "shipments": _shipments_rules,
    "customs_declarations": _customs_rules,
    "replenishments": _replenishment_rules,
    "warehouse_sales": _sales_rules,
}


def row_rules(spec: TableSpec) -> list[Rule]:
    """Every row rule of a table: the generic ones derived from its columns, then its own.

    Args:
        spec: the table's contract spec.

    Returns:
        Rules in the order they are reported (the first failing rule of a row is its quarantine reason).
    """
    own = _TABLE_RULES.get(spec.name, list)()
    generic = _generic_rules(spec)
    if spec.name == "replenishments":  # `units` must be > 0 there: drop the weaker generic rule
        generic = [r for r in generic if r.name != "non_negative:units"]
    return generic + own
