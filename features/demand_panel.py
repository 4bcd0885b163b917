"""Stage: features (demand). The weekly SKU x warehouse panel built from the daily `warehouse_sales` table.

Reads validated `warehouse_sales` (and optionally `skus` for launch dates); writes nothing. Every step is an
expression grouped by series (``warehouse_id``, ``sku_id``), so the builder runs per partition (Dask later).

One row per series and ISO week (``week_start`` is the Monday):

* weeks between a series' first week and the last complete week of the data are present; weeks without
  any sales row are filled with zero units (``n_days = 0``);
* ``is_censored``: the SKU was out of stock on at least one day of the week, so ``units`` is a lower bound of
  demand. ``demand_obs`` is ``units`` on uncensored weeks and null on censored ones (the training target);
  ``demand_est`` is a censoring-aware demand estimate used for lag features: ``units`` scaled up to seven
  selling days (``selling_days``: an in-stock day counts 1, a stock-out day with sales 0.5, a stock-out day
  without sales 0), null when fewer than two selling days remain;
* ``hist_weeks``: weeks of history before this week; ``age_weeks``: weeks since launch (launch date from
  `skus` when given, else the first week with a sales row);
* ``volume_class``: from the mean weekly demand estimate over the weeks *before* this one (point in time):
  ``new`` (< `NEW_SKU_WEEKS` weeks of history), ``slow`` (< 1 unit/week), ``medium`` (< 10), ``fast``.

Example:
    >>> panel = build_weekly_panel(sales, skus)  # doctest: +SKIP
    >>> panel.columns[:4]  # doctest: +SKIP
    ['warehouse_id', 'sku_id', 'week_start', 'units']
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from features.reference.weeks import iso_week_label, iso_week_monday

__all__ = [
    "NEW_SKU_WEEKS",
    "SERIES",
    "VOLUME_CLASSES",
    "build_weekly_panel",
    "extend_panel",
    "iso_week_label",
    "iso_week_start",
    "volume_class",
]

# `iso_week_start` is the ISO-week Monday of `features.reference.weeks`, kept under its old name here.
iso_week_start = iso_week_monday

SERIES = ["warehouse_id", "sku_id"]
NEW_SKU_WEEKS = 8
VOLUME_CLASSES = ("new", "slow", "medium", "fast")
_SALES_COLUMNS = ["date", "warehouse_id", "sku_id", "units_sold", "is_stockout"]


def volume_class(mean_units: pl.Expr, hist_weeks: pl.Expr) -> pl.Expr:
    """Volume class from the trailing mean weekly demand and the weeks of history (see module doc)."""
    return (
        pl.when(hist_weeks < NEW_SKU_WEEKS)
        .then(pl.lit("new"))
        .when(mean_units.fill_null(0.0) < 1.0)
        .then(pl.lit("slow"))
        .when(mean_units < 10.0)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("fast"))
    )


def _check_sales(sales: pl.DataFrame) -> None:
    missing = [c for c in _SALES_COLUMNS if c not in sales.columns]
    if missing:
        raise ValueError(f"warehouse_sales is missing columns {missing}")
    bad = sales.filter(pl.col("units_sold").is_null() | (pl.col("units_sold") < 0))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"warehouse_sales.units_sold must be a non-negative integer; got {row['units_sold']} for "
            f"{row['warehouse_id']}/{row['sku_id']} on {row['date']}"
        )


def build_weekly_panel(
    sales: pl.DataFrame, skus: pl.DataFrame | None = None, *, cutoff: dt.date | None = None
) -> pl.DataFrame:
    """Aggregate daily sales into the zero-filled, censoring-aware weekly panel.

    Args:
        sales: validated `warehouse_sales` (``date``, ``warehouse_id``, ``sku_id``, ``units_sold``,
            ``is_stockout``; ``price_usd`` and ``is_promo`` are used when present).
        skus: optional `skus` table; its ``launch_date`` and ``category`` are joined when present.
        cutoff: use only sales strictly before this date (the forecast moment). Weeks that are not complete
            before the cutoff / the last sales date are dropped.

    Returns:
        The panel described in the module docstring, sorted by series and week.
    """
    _check_sales(sales)
    data = sales if cutoff is None else sales.filter(pl.col("date") < cutoff)
    if data.height == 0:
        raise ValueError("no warehouse_sales rows before the cutoff")
    last_day = data.get_column("date").max()
    assert isinstance(last_day, dt.date)
    # Last complete week: its Sunday is on or before the last observed day (or the day before the cutoff).
    end = last_day if cutoff is None else max(last_day, cutoff - dt.timedelta(days=1))
    last_week = end - dt.timedelta(days=(end.weekday() + 1) % 7) - dt.timedelta(days=6)
    price = pl.col("price_usd").mean() if "price_usd" in data.columns else pl.lit(None, pl.Float64)
    promo = pl.col("is_promo").cast(pl.Int32).sum() if "is_promo" in data.columns else pl.lit(0)
    weekly = (
        data.with_columns(week_start=pl.col("date").dt.truncate("1w"))
        .filter(pl.col("week_start") <= last_week)
        .group_by([*SERIES, "week_start"])
        .agg(
            pl.col("units_sold").sum().cast(pl.Float64).alias("units"),
            pl.len().cast(pl.Int32).alias("n_days"),
            pl.col("is_stockout").cast(pl.Int32).sum().alias("stockout_days"),
            # An in-stock day sells a full day; a stock-out day with sales about half; one without none.
            pl.when(~pl.col("is_stockout"))
            .then(1.0)
            .when(pl.col("units_sold") > 0)
            .then(0.5)
            .otherwise(0.0)
            .sum()
            .alias("selling_days"),
            price.cast(pl.Float64).alias("price_usd"),
            promo.cast(pl.Int32).alias("promo_days"),
        )
    )
    grid = (
        weekly.group_by(SERIES)
        .agg(pl.col("week_start").min().alias("first_week"))
        .with_columns(week_start=pl.date_ranges(pl.col("first_week"), pl.lit(last_week), interval="1w"))
        .explode("week_start")
    )
    panel = grid.join(weekly, on=[*SERIES, "week_start"], how="left").with_columns(
        pl.col("units").fill_null(0.0),
        pl.col("n_days").fill_null(0),
        pl.col("stockout_days").fill_null(0),
        pl.col("promo_days").fill_null(0),
        pl.col("selling_days").fill_null(0.0),
    )
    if skus is not None and "launch_date" in skus.columns:
        launch = skus.select("sku_id", pl.col("launch_date").dt.truncate("1w").alias("launch_week"))
        panel = panel.join(launch, on="sku_id", how="left")
        start = pl.min_horizontal(pl.col("first_week"), pl.col("launch_week").fill_null(pl.col("first_week")))
    else:
        start = pl.col("first_week")
    if skus is not None and "category" in skus.columns:
        panel = panel.join(skus.select("sku_id", "category"), on="sku_id", how="left")
    # Days without a sales row (zero-filled) count as in-stock selling days.
    selling_days = pl.col("selling_days") + (7 - pl.col("n_days")).clip(0)
    censored = pl.col("stockout_days") > 0
    panel = (
        panel.sort([*SERIES, "week_start"])
        .with_columns(
            is_censored=censored,
            demand_obs=pl.when(censored).then(None).otherwise(pl.col("units")),
            demand_est=pl.when(~censored)
            .then(pl.col("units"))
            .when(selling_days >= 2)
            .then(pl.col("units") * 7.0 / selling_days)
            .otherwise(None),
            age_weeks=((pl.col("week_start") - start).dt.total_days() // 7).cast(pl.Int32),
            hist_weeks=pl.int_range(pl.len(), dtype=pl.Int32).over(SERIES),
        )
        .drop("first_week", *(["launch_week"] if "launch_week" in panel.columns else []))
    )
    return _with_volume_class(panel)


def _with_volume_class(panel: pl.DataFrame) -> pl.DataFrame:
    """(Re)compute ``volume_class`` from the weeks strictly before each row."""
    est = pl.col("demand_est")
    trail = (est.fill_null(0.0).cum_sum().shift(1) / est.cum_count().shift(1)).over(SERIES)
    return panel.with_columns(volume_class=volume_class(trail, pl.col("hist_weeks")))


def extend_panel(panel: pl.DataFrame, through_week: dt.date) -> pl.DataFrame:
    """Append empty (null-target) weeks to every series up to `through_week` (inclusive).

    Used at forecast time: the row of the cutoff week then carries the origin features computed from the
    weeks before it. Observed columns are null on the appended rows; ``age_weeks`` and ``hist_weeks``
    continue counting; the categorical columns carry forward.
    """
    last = panel.group_by(SERIES).agg(
        pl.col("week_start").max().alias("_last"),
        pl.col("age_weeks").max().alias("_age"),
        pl.col("hist_weeks").max().alias("_hist"),
        *[pl.col(c).last() for c in ("category",) if c in panel.columns],
    )
    new = (
        last.with_columns(
            week_start=pl.date_ranges(pl.col("_last") + dt.timedelta(days=7), pl.lit(through_week), "1w")
        )
        .explode("week_start")
        .drop_nulls("week_start")
        .with_columns(
            _k=((pl.col("week_start") - pl.col("_last")).dt.total_days() // 7).cast(pl.Int32),
        )
        .with_columns(
            age_weeks=(pl.col("_age") + pl.col("_k")).cast(pl.Int32),
            hist_weeks=(pl.col("_hist") + pl.col("_k")).cast(pl.Int32),
        )
        .drop("_last", "_age", "_hist", "_k")
    )
    return _with_volume_class(pl.concat([panel, new], how="diagonal_relaxed").sort([*SERIES, "week_start"]))
