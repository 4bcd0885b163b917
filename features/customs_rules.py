"""Stage: features. Import customs rules known in advance: de minimis thresholds by country and date.

Reads nothing from disk. The thresholds are those of the simulator's reference world
(`features.simulator.world.DESTINATIONS` and its dated `POLICY_CHANGES`: the US threshold falls from 800 USD
to 0 on 2025-08-29, the EU one to 0 on 2026-07-01), converted to USD. They are public regulations, not
outcomes, so using them as features leaks nothing; they are realistic-ish, not authoritative: a deployment
on real data passes its own table (same three columns) to `add_de_minimis`.

Example:
    >>> import datetime as dt
    >>> t = de_minimis_table()
    >>> t.filter(pl.col("country") == "US").rows()
    [('US', datetime.date(1970, 1, 1), 800.0), ('US', datetime.date(2025, 8, 29), 0.0)]
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from features.simulator.world import DESTINATIONS, POLICY_CHANGES

__all__ = ["DE_MINIMIS_SCHEMA", "add_de_minimis", "de_minimis_table"]

DE_MINIMIS_SCHEMA = pl.Schema(
    {"country": pl.String(), "valid_from": pl.Date(), "de_minimis_usd": pl.Float64()}
)
_EPOCH = dt.date(1970, 1, 1)


def de_minimis_table() -> pl.DataFrame:
    """The de minimis threshold of each destination from each date on.

    Returns:
        Frame `country` (ISO-2), `valid_from` (Date, 1970-01-01 for the standing rule), `de_minimis_usd`,
        sorted by country and date.
    """
    rows = [(d.country, _EPOCH, d.de_minimis_usd) for d in DESTINATIONS]
    rows += [(c, p.date, p.de_minimis_usd) for p in POLICY_CHANGES for c in p.countries]
    return pl.DataFrame(rows, schema=DE_MINIMIS_SCHEMA, orient="row").sort("country", "valid_from")


def add_de_minimis(
    df: pl.DataFrame,
    *,
    country: str = "destination_country",
    at: str = "created_at",
    value: str = "declared_value_usd",
    table: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Add the destination's threshold in force on the day of `at` and the value's position against it.

    Adds `de_minimis_usd` (null for a country not in the table), `is_over_de_minimis` (declared value above
    the threshold: a formal, dutiable entry) and `de_minimis_headroom_usd` (threshold minus value; negative
    when over). Row order is kept.

    Args:
        df: frame with the `country`, `at` (timestamp) and `value` columns.
        country: destination country column.
        at: moment the rule is read at (its UTC date).
        value: declared value column (USD).
        table: thresholds as `de_minimis_table()` returns them; defaults to it.
    """
    rules = (de_minimis_table() if table is None else table).sort("valid_from")
    tmp_date, tmp_row = "__dm_date", "__dm_row"
    out = (
        df.with_row_index(tmp_row)
        .with_columns(pl.col(at).dt.date().alias(tmp_date))
        .sort(tmp_date)
        .join_asof(
            rules.rename({"country": country}),
            left_on=tmp_date,
            right_on="valid_from",
            by=country,
            strategy="backward",
            check_sortedness=False,
        )
        .sort(tmp_row)
    )
    threshold = pl.col("de_minimis_usd")
    return out.with_columns(
        (pl.col(value) > threshold).alias("is_over_de_minimis"),
        (threshold - pl.col(value)).alias("de_minimis_headroom_usd"),
    ).select(*df.columns, "de_minimis_usd", "is_over_de_minimis", "de_minimis_headroom_usd")
