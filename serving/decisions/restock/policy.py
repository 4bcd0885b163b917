"""Stage: decisions. Restock policy settings, ABC classes and the service quantile of each series.

Pure: `RestockConfig` (the policy's knobs), `abc_classes` (sales and SKUs in, a class per series out),
`volume_band` and `service_quantile` (arrays in and out). Reads and writes nothing; `RestockConfig.from_json`
reads a calibration file (`serving.decisions.restock.calibration`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from serving.decisions.restock.calibration import BANDS, parse_restock_calibration

__all__ = ["MODES", "SERIES", "RestockConfig", "abc_classes", "service_quantile", "volume_band"]

MODES: Final = ("sea", "rail", "air")  # replenishment modes the plan may choose from
SERIES: Final = ["warehouse_id", "sku_id"]


class RestockConfig(BaseModel):
    """Restock policy settings.

    Attributes:
        review_days: days between two reviews (the plan is weekly).
        handling_days: days between placing an order and its departure (added to the history's lead times).
        service_by_class: cycle service level target per ABC class.
        abc_cutoffs: cumulative revenue shares that end class A and class B.
        abc_lookback_days: revenue window of the ABC classification.
        modes: candidate replenishment modes.
        capital_rate_per_year: cost of capital on goods in transit (share of unit cost per year).
        stockout_penalty_usd: goodwill cost per unit short, on top of the lost margin.
        budget_usd: cap on purchase value + freight of all new orders, or None.
        expedite_only: use a faster mode than the regular (cheapest per kg) one only when the regular mode
            would arrive too late (P(stock-out before it can arrive) > 1 - target). Myopic one-cycle costs
            otherwise favour small weekly air top-ups, which cost more over a season (see docs/decisions.md).
        volume_bands: mean weekly units (forecast, first 4 weeks) that end the slow and the medium band;
            faster series are `fast`.
        quantile_map: calibration per volume band (`slow`, `medium`, `fast`): `(targets, levels)`, the
            quantile level of the demand over cover that realised each service target in a replay on an
            earlier window (`fit_quantile_map`). Targets are interpolated linearly and clamped to the ends.
            A band without a map uses the target itself (the uncalibrated policy).
        seed: lead-time draws.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    review_days: float = Field(default=7.0, gt=0)
    handling_days: float = Field(default=4.5, ge=0)
    service_by_class: dict[str, float] = Field(default_factory=lambda: {"A": 0.97, "B": 0.93, "C": 0.85})
    abc_cutoffs: tuple[float, float] = (0.8, 0.95)
    abc_lookback_days: int = Field(default=91, ge=7)
    modes: tuple[str, ...] = MODES
    capital_rate_per_year: float = Field(default=0.15, ge=0)
    stockout_penalty_usd: float = Field(default=1.0, ge=0)
    budget_usd: float | None = Field(default=None, ge=0)
    expedite_only: bool = True
    volume_bands: tuple[float, float] = (1.0, 10.0)
    quantile_map: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = Field(default_factory=dict)
    seed: int = 0

    @field_validator("quantile_map")
    @classmethod
    def _monotone_map(
        cls, value: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        for band, (xs, ys) in value.items():
            if band not in BANDS:
                raise ValueError(f"quantile_map: band {band!r} is not one of {list(BANDS)}")
            x, y = np.asarray(xs, float), np.asarray(ys, float)
            if x.size < 1 or x.size != y.size:
                raise ValueError(f"quantile_map[{band!r}]: targets and levels need the same length >= 1")
            if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
                raise ValueError(f"quantile_map[{band!r}]: targets must increase, levels not decrease")
            if np.any((x <= 0) | (x >= 1) | (y <= 0) | (y >= 1)):
                raise ValueError(f"quantile_map[{band!r}]: targets and levels must lie in (0, 1)")
        return value

    @classmethod
    def from_json(cls, path: str | Path, **overrides: object) -> RestockConfig:
        """A config whose `quantile_map` (and `volume_bands`) come from a calibration JSON file.

        Args:
            path: JSON with `volume_bands` and `quantile_map: {band: {targets, levels}}` (the
                `calibrate-restock` flow writes one; so does `python bench/decisions_sim.py --calibrate`).
            **overrides: other settings (`service_by_class`, `seed`, ...).

        Raises:
            ValueError: when a field is missing or the map is not monotone.
        """
        calibration = parse_restock_calibration(Path(path).read_text(), source=str(path))
        return cls.model_validate({**calibration.config_fields(), **overrides})


def volume_band(weekly_mean: np.ndarray, config: RestockConfig) -> np.ndarray:
    """`slow` / `medium` / `fast` per series from its mean weekly units."""
    lo, hi = config.volume_bands
    return np.where(weekly_mean < lo, "slow", np.where(weekly_mean <= hi, "medium", "fast"))


def service_quantile(target: np.ndarray, weekly_mean: np.ndarray, config: RestockConfig) -> np.ndarray:
    """The quantile level of demand over cover that the policy uses for each series' service target.

    Identity without a calibration; otherwise the band's `quantile_map` interpolated at the target
    (monotone in the target because the map is).
    """
    level = np.asarray(target, float).copy()
    bands = volume_band(np.asarray(weekly_mean, float), config)
    for band, (xs, ys) in config.quantile_map.items():
        m = bands == band
        if m.any():
            level[m] = np.interp(level[m], xs, ys)
    return level


def abc_classes(
    sales: pl.DataFrame, skus: pl.DataFrame, as_of: dt.date, config: RestockConfig
) -> pl.DataFrame:
    """ABC class of each SKU within its warehouse by revenue over the look-back window before `as_of`.

    Revenue is `units_sold x price_usd` (the sales row's price, else the SKU's list price). Class A holds the
    series making the first `abc_cutoffs[0]` of the warehouse's revenue, B up to `abc_cutoffs[1]`, C the rest
    (series without sales are C).

    Returns:
        `warehouse_id`, `sku_id`, `revenue_usd`, `abc_class`.
    """
    start = as_of - dt.timedelta(days=config.abc_lookback_days)
    price = pl.col("price_usd") if "price_usd" in sales.columns else pl.lit(None, pl.Float64)
    rev = (
        sales.filter((pl.col("date") >= start) & (pl.col("date") < as_of))
        .with_columns(price.alias("_p"))
        .join(skus.select("sku_id", pl.col("price_usd").alias("_list")), on="sku_id", how="left")
        .group_by(SERIES)
        .agg((pl.col("units_sold") * pl.coalesce("_p", "_list")).sum().alias("revenue_usd"))
        .sort("warehouse_id", "revenue_usd", "sku_id", descending=[False, True, False])
    )
    a, b = config.abc_cutoffs
    share = (pl.col("revenue_usd").cum_sum() - pl.col("revenue_usd")) / pl.col("revenue_usd").sum()
    return rev.with_columns(
        pl.when(pl.col("revenue_usd").sum().over("warehouse_id") <= 0)
        .then(pl.lit("C"))
        .when(share.over("warehouse_id") < a)
        .then(pl.lit("A"))
        .when(share.over("warehouse_id") < b)
        .then(pl.lit("B"))
        .otherwise(pl.lit("C"))
        .alias("abc_class")
    )
