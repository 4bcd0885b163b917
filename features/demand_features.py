"""Stage: features (demand). Leak-free direct multi-horizon features for weekly SKU x warehouse demand.

Reads the weekly panel from `features.demand_panel` and the `warehouses` table (for the destination country);
writes nothing. Output: one row per series x origin week x horizon, where the *origin* (the cutoff, a Monday)
is the first forecast week and ``week_start`` = origin + 7 * (horizon - 1) days is the target week.

Point in time: every origin feature of origin ``t`` is computed from panel rows strictly before ``t``
(``shift(1)`` before every rolling window, grouped by series); cross-series aggregates are means of those
per-series origin features at the same origin; seasonal features read the target week minus 51-53 weeks,
which lie before the origin for every horizon <= 36. Appending later weeks to the panel never changes the
features of an earlier origin (tested).

Features (names derive from `DemandFeatureConfig`):
    lags ``lag_{k}`` and rolling means ``roll_mean_{w}`` of the censoring-aware demand estimate; rolling std,
    zero share, max and censored share over 13 weeks; trend ratio; price relative to its 13-week mean and
    promotion share over 4 weeks; history/age; aggregates ``cat_wh_mean_{4,13}`` (category x warehouse) and
    ``sku_all_wh_mean_4`` (the SKU across warehouses); seasonal ``seasonal_lag52`` (mean of target-51..-53
    weeks), ``cat_wh_season_ratio`` (last year's category x warehouse ratio target week / origin level);
    calendar of the target week: days in 11.11, Black Friday/Cyber Monday and Christmas windows, destination
    public holidays, days to Chinese New Year, week of year; ``horizon``; categorical ``warehouse_id``,
    ``category``, ``volume_class``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.demand_panel import SERIES
from features.feature_set import FeatureSet
from features.reference.calendar import country_holidays, daily_calendar

__all__ = [
    "DemandFeatureConfig",
    "build_demand_features",
    "demand_feature_set",
    "origin_features",
    "weekly_calendar",
]


_REQUIRED_WINDOWS = (4, 13, 26)


class DemandFeatureConfig(BaseModel):
    """Which lags, windows and horizons the demand features use.

    Attributes:
        horizons: forecast horizons in weeks (1..horizons).
        lags: lags of the weekly demand estimate, in weeks before the origin (1 = the last complete week).
        windows: rolling-mean windows in weeks; must include 4, 13 and 26.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizons: int = Field(default=16, ge=1, le=36)
    lags: tuple[int, ...] = (1, 2, 3, 4)
    windows: tuple[int, ...] = (4, 8, 13, 26, 52)

    @field_validator("lags", "windows")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError(f"lags and windows must be non-empty and >= 1, got {value}")
        return value

    @field_validator("windows")
    @classmethod
    def _required_windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        missing = sorted(set(_REQUIRED_WINDOWS) - set(value))
        if missing:
            raise ValueError(
                f"windows must include {_REQUIRED_WINDOWS} (trend and aggregates); missing {missing}"
            )
        return value


_CAL_COLS = ["days_singles_day", "days_black_friday", "days_christmas", "days_to_cny", "week_of_year"]


def demand_feature_set(config: DemandFeatureConfig | None = None) -> FeatureSet:
    """The columns the demand model reads, derived from the config."""
    cfg = config or DemandFeatureConfig()
    numeric = (
        "horizon",
        *[f"lag_{k}" for k in cfg.lags],
        *[f"roll_mean_{w}" for w in cfg.windows],
        "roll_std_13",
        "roll_max_13",
        "zero_share_13",
        "censored_share_13",
        "trend_4_26",
        "price_ratio_13",
        "promo_share_4",
        "hist_weeks",
        "age_weeks",
        "cat_wh_mean_4",
        "cat_wh_mean_13",
        "sku_all_wh_mean_4",
        "seasonal_lag52",
        "cat_wh_season_ratio",
        *_CAL_COLS,
        "holidays_in_week",
    )
    return FeatureSet(numeric=numeric, categorical=("warehouse_id", "category", "volume_class"))


def origin_features(panel: pl.DataFrame, config: DemandFeatureConfig | None = None) -> pl.DataFrame:
    """Per series and week, features known at the start of that week (from earlier weeks only).

    Args:
        panel: weekly panel (possibly extended with empty future weeks by `extend_panel`).
        config: lags and windows.

    Returns:
        ``[*SERIES, "origin_week", category, volume_class, hist_weeks, age_weeks, <origin features>]``.
    """
    cfg = config or DemandFeatureConfig()
    est = pl.col("demand_est")
    past = est.shift(1)
    exprs: list[pl.Expr] = [est.shift(k).alias(f"lag_{k}") for k in cfg.lags]
    exprs += [past.rolling_mean(w, min_samples=1).alias(f"roll_mean_{w}") for w in cfg.windows]
    exprs += [
        past.rolling_std(13, min_samples=2).alias("roll_std_13"),
        past.rolling_max(13, min_samples=1).alias("roll_max_13"),
        (past == 0).cast(pl.Float64).rolling_mean(13, min_samples=1).alias("zero_share_13"),
        pl.col("is_censored")
        .shift(1)
        .cast(pl.Float64)
        .rolling_mean(13, min_samples=1)
        .alias("censored_share_13"),
        (pl.col("promo_days").shift(1).cast(pl.Float64).rolling_sum(4, min_samples=1) / 28.0).alias(
            "promo_share_4"
        ),
        (pl.col("price_usd").shift(1) / pl.col("price_usd").shift(1).rolling_mean(13, min_samples=1)).alias(
            "price_ratio_13"
        ),
    ]
    frame = panel.sort([*SERIES, "week_start"])
    if "category" not in frame.columns:
        frame = frame.with_columns(category=pl.lit("unknown"))
    if "price_usd" not in frame.columns:
        frame = frame.with_columns(price_usd=pl.lit(None, pl.Float64))
    feats = frame.with_columns([e.over(SERIES) for e in exprs]).with_columns(
        # Lags of censored weeks fall back to the recent level instead of a learned low value.
        *[pl.col(f"lag_{k}").fill_null(pl.col(f"roll_mean_{cfg.windows[0]}")) for k in cfg.lags],
        trend_4_26=(pl.col("roll_mean_4") + 0.1) / (pl.col("roll_mean_26") + 0.1),
    )
    feats = feats.with_columns(
        cat_wh_mean_4=pl.col("roll_mean_4").mean().over("warehouse_id", "category", "week_start"),
        cat_wh_mean_13=pl.col("roll_mean_13").mean().over("warehouse_id", "category", "week_start"),
        sku_all_wh_mean_4=pl.col("roll_mean_4").mean().over("sku_id", "week_start"),
    )
    keep = [
        *SERIES,
        pl.col("week_start").alias("origin_week"),
        "category",
        "volume_class",
        "hist_weeks",
        "age_weeks",
        *[
            n
            for n in demand_feature_set(cfg).numeric
            if n in feats.columns and n not in ("hist_weeks", "age_weeks")
        ],
    ]
    return feats.select(keep)


def weekly_calendar(countries: Sequence[str], start: dt.date, end: dt.date) -> pl.DataFrame:
    """Calendar features per country and ISO week (Monday) between `start` and `end`.

    Returns:
        ``country``, ``week_start`` and `_CAL_COLS` + ``holidays_in_week`` (destination public holidays).
    """
    start = start - dt.timedelta(days=start.weekday())
    end = end + dt.timedelta(days=6 - end.weekday())
    daily = daily_calendar(start, end).with_columns(week_start=pl.col("date").dt.truncate("1w"))
    peak = pl.col("ecommerce_peak")
    weekly = daily.group_by("week_start").agg(
        (peak == "singles_day").sum().cast(pl.Float64).alias("days_singles_day"),
        (peak == "black_friday_cyber_monday").sum().cast(pl.Float64).alias("days_black_friday"),
        (peak == "christmas").sum().cast(pl.Float64).alias("days_christmas"),
        pl.col("days_to_cny").min().clip(0, 120).cast(pl.Float64).alias("days_to_cny"),
        pl.col("date").min().dt.week().cast(pl.Float64).alias("week_of_year"),
    )
    countries = sorted(set(countries)) or ["__none__"]
    hol = (
        country_holidays(countries, start, end)
        .with_columns(week_start=pl.col("date").dt.truncate("1w"))
        .group_by("country", "week_start")
        .agg(pl.len().cast(pl.Float64).alias("holidays_in_week"))
    )
    grid = pl.DataFrame({"country": countries}).join(weekly, how="cross")
    return grid.join(hol, on=["country", "week_start"], how="left").with_columns(
        pl.col("holidays_in_week").fill_null(0.0)
    )


def build_demand_features(
    panel: pl.DataFrame,
    warehouses: pl.DataFrame | None = None,
    *,
    origins: Sequence[dt.date] | None = None,
    config: DemandFeatureConfig | None = None,
    keep: pl.Expr | None = None,
) -> pl.DataFrame:
    """Feature rows for every series x origin x horizon, with the target of each row.

    Args:
        panel: weekly panel; for forecasting, extended through the origin week by `extend_panel`.
        warehouses: `warehouses` table (``warehouse_id``, ``country``) for destination holidays; optional.
        origins: origin weeks (Mondays) to build; None builds every week of the panel.
        config: lags, windows, horizons.
        keep: optional filter on the origin rows (``warehouse_id``, ``sku_id``, ``origin_week``) applied
            before the horizons are expanded, e.g. a seeded hash sample of series x origin for large
            catalogues.

    Returns:
        ``warehouse_id``, ``sku_id``, ``origin_week``, ``horizon`` (Int32), ``week_start`` (target week),
        the features of `demand_feature_set`, and the target columns ``y`` (uncensored demand, null when the
        target week is censored or not observed yet), ``y_units`` (sales), ``y_censored``.
    """
    cfg = config or DemandFeatureConfig()
    # A series exists at an origin only when it has at least one week before it: a series whose first sale
    # falls in the origin week is unknown at that cutoff (a forecast could not produce its row).
    orig = origin_features(panel, cfg).filter(pl.col("hist_weeks") >= 1)
    if origins is not None:
        orig = orig.filter(pl.col("origin_week").is_in(list(origins)))
    if keep is not None:
        orig = orig.filter(keep)
    horizons = pl.DataFrame({"horizon": pl.int_range(1, cfg.horizons + 1, eager=True).cast(pl.Int32)})
    rows = orig.join(horizons, how="cross").with_columns(
        week_start=pl.col("origin_week") + pl.duration(weeks=pl.col("horizon") - 1)
    )
    est = panel.select(*SERIES, "week_start", "demand_est")
    seasonal = est.with_columns(
        pl.col("demand_est").rolling_mean(3, min_samples=1, center=True).over(SERIES).alias("_s")
    ).select(*SERIES, (pl.col("week_start") + pl.duration(weeks=52)).alias("week_start"), "_s")
    # Last year's category x warehouse level: target week vs. the 4 weeks before the origin.
    cat_key = ["warehouse_id", "category"]
    if "category" not in panel.columns:
        panel = panel.with_columns(category=pl.lit("unknown"))
    cw = (
        panel.group_by(*cat_key, "week_start")
        .agg(pl.col("demand_est").sum().alias("_cw"))
        .sort(*cat_key, "week_start")
        .with_columns(_cw4=pl.col("_cw").shift(1).rolling_mean(4, min_samples=1).over(cat_key))
    )
    cw_target = cw.select(*cat_key, (pl.col("week_start") + pl.duration(weeks=52)).alias("week_start"), "_cw")
    cw_origin = cw.select(
        *cat_key, (pl.col("week_start") + pl.duration(weeks=52)).alias("origin_week"), "_cw4"
    )
    target = panel.select(
        *SERIES,
        "week_start",
        pl.col("demand_obs").alias("y"),
        pl.col("units").alias("y_units"),
        pl.col("is_censored").alias("y_censored"),
    )
    rows = (
        rows.join(seasonal, on=[*SERIES, "week_start"], how="left")
        .join(cw_target, on=[*cat_key, "week_start"], how="left")
        .join(cw_origin, on=[*cat_key, "origin_week"], how="left")
        .join(target, on=[*SERIES, "week_start"], how="left")
        .with_columns(
            seasonal_lag52=pl.col("_s"),
            cat_wh_season_ratio=(pl.col("_cw") + 1.0) / (pl.col("_cw4") + 1.0),
        )
        .drop("_s", "_cw", "_cw4")
    )
    if rows.height == 0:
        cal = weekly_calendar([], dt.date(2000, 1, 3), dt.date(2000, 1, 9))
    else:
        lo, hi = rows.get_column("week_start").min(), rows.get_column("week_start").max()
        assert isinstance(lo, dt.date) and isinstance(hi, dt.date)
        country = (
            warehouses.select("warehouse_id", "country")
            if warehouses is not None
            else rows.select("warehouse_id").unique().with_columns(country=pl.lit("__none__"))
        )
        cal = weekly_calendar(country.get_column("country").to_list(), lo, hi)
    if warehouses is not None:
        rows = rows.join(warehouses.select("warehouse_id", "country"), on="warehouse_id", how="left")
    else:
        rows = rows.with_columns(country=pl.lit("__none__"))
    rows = rows.join(cal, on=["country", "week_start"], how="left").drop("country")
    return rows.sort([*SERIES, "origin_week", "horizon"])
