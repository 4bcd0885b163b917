"""Stage: features. Import customs rules known in advance: the de minimis threshold in force, per shipment.

Reads nothing from disk. The thresholds and their dated changes come from `features.reference.customs_policy`
(the one home of these rules, read by the simulator too): the US threshold falls from 800 USD to 0 on
2025-08-29, the EU one to 0 on 2026-07-01. They are public regulations, not outcomes, so using them as
features leaks nothing; a deployment on real data passes its own table (same three columns) to
`add_de_minimis`.

Example:
    >>> t = de_minimis_table()
    >>> t.filter(pl.col("country") == "US").rows()
    [('US', datetime.date(1970, 1, 1), 800.0), ('US', datetime.date(2025, 8, 29), 0.0)]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from features.reference.customs_policy import DE_MINIMIS_SCHEMA, de_minimis_table

__all__ = ["DE_MINIMIS_SCHEMA", "add_de_minimis", "de_minimis_table"]

_SMALL_ROWS = 64


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
    rules = _default_rules() if table is None else _rules_by_country(table)
    name = pl.col(country).cast(pl.String)
    small = df.height <= _SMALL_ROWS  # a few rows: compare names in Python, no extra query
    keys = df.select(
        pl.col(at).dt.date().cast(pl.Int64).alias("day"),
        name.alias("name"),
        *([] if small else [name.rank("dense").fill_null(0).cast(pl.Int64).alias("group")]),
    )
    day = keys.get_column("day").to_numpy()  # float with NaN where null when any is null
    if small:
        labels = keys.get_column("name").to_list()
        names = sorted({n for n in labels if n is not None})
        group = np.array([0 if n is None else names.index(n) + 1 for n in labels], dtype=np.int64)
    else:
        group = keys.get_column("group").to_numpy()  # 1.. in sorted name order, 0 for null
        names = keys.get_column("name").drop_nulls().unique().sort().to_list()
    threshold = np.full(df.height, np.nan)  # NaN -> null: no rule (unknown country, undated, before any)
    for g, code in enumerate(names, start=1):
        if code not in rules:
            continue
        since, values = rules[code]
        rows = np.flatnonzero(group == g)
        days = day[rows]
        rows = rows[~np.isnan(days)] if days.dtype.kind == "f" else rows
        # the last rule in force on the day (valid_from <= day): a backward as-of join by country
        pos = np.searchsorted(since, day[rows], side="right") - 1
        hit = pos >= 0
        threshold[rows[hit]] = values[pos[hit]]
    limit = pl.Series("de_minimis_usd", threshold, dtype=pl.Float64, nan_to_null=True)
    return df.with_columns(limit).with_columns(
        (pl.col(value) > pl.col("de_minimis_usd")).alias("is_over_de_minimis"),
        (pl.col("de_minimis_usd") - pl.col(value)).alias("de_minimis_headroom_usd"),
    )


_Rules = dict[str, tuple[np.ndarray, np.ndarray]]


def _rules_by_country(table: pl.DataFrame) -> _Rules:
    """Country -> (valid_from as days, thresholds; NaN where null), sorted by valid_from."""
    rules = table.filter(pl.col("valid_from").is_not_null()).sort("valid_from", maintain_order=True)
    out: _Rules = {}
    for (name,), part in rules.partition_by("country", as_dict=True, maintain_order=True).items():
        if name is None:
            continue
        out[str(name)] = (
            part.get_column("valid_from").cast(pl.Int64).to_numpy(),
            part.get_column("de_minimis_usd").cast(pl.Float64).fill_null(float("nan")).to_numpy(),
        )
    return out


@lru_cache(maxsize=1)
def _default_rules() -> _Rules:
    return _rules_by_country(de_minimis_table())
