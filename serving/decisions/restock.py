"""Stage: decisions. Weekly restock plan: periodic-review order-up-to per SKU x warehouse.

Pure: demand sample paths (`models.demand_paths.sample_paths`), stock positions, lead-time samples and freight
rates (`serving.decisions.lead_times`), the `skus` and `warehouses` tables and ABC classes in; one plan row per SKU x
warehouse out (order lines and lines without an order, so the report can show cover and risk everywhere).
Reads and writes nothing.

The policy, per series and per candidate mode (sea, rail, air: each mode the warehouse has history for):

1. **Demand over the cover window.** Cover = lead time + review period. For each sample path `p` a lead time
   `L_p` is drawn from the mode's recent lead times (plus `handling_days`, order -> departure), so the demand
   over the window, `D_p = sum_h w_h(L_p) x units_{p,h}` with `w_h = clip(cover_weeks - (h - 1), 0, 1)`
   (the rule of `models.demand_paths.lead_time_demand`), carries both demand and lead-time uncertainty and the
   week-to-week dependence of the paths. Weekly quantiles are never summed.
2. **Order-up-to level** `S` = the `service_quantile` quantile of `D_p`, rounded up: the service target
   (per ABC class) itself, or, with a calibration (`RestockConfig.quantile_map`, per volume band), the
   quantile level that realised that target in a lost-sales replay on an earlier window.
   Safety stock = `S - mean(D_p)`.
3. **Order** = the `service_quantile` quantile of `D_p - position_p` when positive (= `S - (on hand + on
   order)` when everything on order arrives within the window), rounded up to the case pack and at least the
   minimum order quantity; 0 otherwise. `position_p` = on hand + the on-order lots due within path p's lead
   time + review period, when the positions carry lots with due days (`stock_positions(..., lead_samples)`).
4. **Cost of the mode** for this order over one cycle: freight (fixed + per kg) + in-transit holding
   (capital cost of the goods during the mean lead time) + on-hand holding (expected leftover at the end of
   the cycle plus half the review-period demand, for one review period, at the warehouse's holding cost) +
   expected stock-out cost (expected units short at the end of the cycle x lost margin + penalty). The
   regular mode is the cheapest per kg (sea); when it would arrive too late (P(stock-out before it can
   arrive) > 1 - target) the mode with the lowest total is chosen (ties: the faster one).
5. **Limits.** Per warehouse, the expected stock when the regular order lands (on hand + on order - mean
   demand over the regular lead time) + new orders never exceeds `capacity_units`. Over all warehouses,
   the purchase value + freight of new orders never exceeds `budget_usd` when set. Lines are served in
   priority order (expedites, then class A first, then the largest expected stock-out cost avoided per
   unit); a line that does not fit is cut to the largest case multiple that fits and is at least the MOQ,
   or dropped. Its reason says so.

Each line carries its reason: cover (lead time + review), target (quantile, class), on hand, on order, mode
(and the cost of the alternatives).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.contract.vocabularies import WAREHOUSE_INBOUND_MODES

__all__ = [
    "RestockConfig",
    "abc_classes",
    "fit_quantile_map",
    "plan_restock",
    "service_quantile",
    "volume_band",
]

_MODES: Final = WAREHOUSE_INBOUND_MODES
_SERIES: Final = ["warehouse_id", "sku_id"]
_BANDS: Final = ("slow", "medium", "fast")


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
    modes: tuple[str, ...] = _MODES
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
            if band not in _BANDS:
                raise ValueError(f"quantile_map: band {band!r} is not one of {list(_BANDS)}")
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
            path: JSON with `volume_bands` and `quantile_map: {band: {targets, levels}}`
                (`python bench/decisions_sim.py --calibrate` writes one).
            **overrides: other settings (`service_by_class`, `seed`, ...).

        Raises:
            ValueError: when a field is missing or the map is not monotone.
        """
        raw = json.loads(Path(path).read_text())
        try:
            qmap = {b: (tuple(m["targets"]), tuple(m["levels"])) for b, m in raw["quantile_map"].items()}
            bands = tuple(raw["volume_bands"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: calibration needs volume_bands and quantile_map.<band>.targets/levels "
                             f"({exc!r})") from exc  # fmt: skip
        return cls.model_validate({"quantile_map": qmap, "volume_bands": bands, **overrides})


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


def fit_quantile_map(
    levels: list[float], realised: list[float], targets: list[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Map service targets to quantile levels from a replay: the level whose realised CSL meets each target.

    The realised CSL per level is made monotone (pool-adjacent-violators), then inverted by linear
    interpolation; targets below the lowest realised CSL get the lowest level tried, above the highest the
    highest level. Duplicate (target, level) pairs are dropped so the result validates in `RestockConfig`.

    Args:
        levels: quantile levels replayed (increasing).
        realised: realised cycle service level at each level.
        targets: service targets to map (increasing, in (0, 1)).

    Returns:
        `(targets, levels)` for `RestockConfig.quantile_map`.
    """
    x, y = np.asarray(levels, float), np.asarray(realised, float)
    if x.size < 2 or x.size != y.size or np.any(np.diff(x) <= 0):
        raise ValueError("levels must be increasing, at least 2, one realised CSL each")
    blocks = [[v, 1.0] for v in y]  # pool adjacent violators: non-decreasing fit of y
    fit: list[list[float]] = []
    for v, n in blocks:
        fit.append([v, n])
        while len(fit) > 1 and fit[-2][0] > fit[-1][0]:
            (a, na), (b, nb) = fit[-2], fit.pop()
            fit[-1] = [(a * na + b * nb) / (na + nb), na + nb]
    iso = np.concatenate([np.full(int(n), v) for v, n in fit])
    out_t: list[float] = []
    out_l: list[float] = []
    for t in sorted(targets):
        if t <= iso[0]:
            lvl = x[0]
        elif t >= iso[-1]:
            lvl = x[-1]
        else:
            k = int(np.searchsorted(iso, t, side="left"))  # iso[k-1] < t <= iso[k]
            lvl = x[k - 1] + (t - iso[k - 1]) / (iso[k] - iso[k - 1]) * (x[k] - x[k - 1])
        lvl = max(lvl, out_l[-1]) if out_l else lvl
        out_t.append(float(t))
        out_l.append(float(lvl))
    return tuple(out_t), tuple(out_l)


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
        .group_by(_SERIES)
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


def _path_array(paths: pl.DataFrame, keys: pl.DataFrame) -> np.ndarray:
    """Paths as an array [series, path, horizon] in the order of `keys`."""
    p = paths.join(keys.with_row_index("_s"), on=_SERIES, how="inner").sort("_s", "path_id", "horizon")
    n_s = keys.height
    n_h = int(p["horizon"].n_unique())
    if p.is_empty() or p["horizon"].min() != 1 or p["horizon"].max() != n_h:
        raise ValueError("paths must cover horizons 1..H (horizon 1 = the week starting on the plan date)")
    n_p = p.height // (n_s * n_h)
    if n_p * n_s * n_h != p.height:
        raise ValueError("paths must hold the same paths x horizons 1..H for every series")
    return p["units"].to_numpy().reshape(n_s, n_p, n_h)


def _lots(base: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """On-order lots [S, K] (units, days until due); one lot due at day 0 per series without lot columns."""
    if "on_order_lots" not in base.columns:
        return base["on_order_units"].to_numpy().astype(float)[:, None], np.zeros((base.height, 1))
    units = base["on_order_lots"].fill_null([]).to_list()
    due = base["on_order_due_days"].fill_null([]).to_list()
    k = max(1, max((len(u) for u in units), default=1))
    u_arr, d_arr = np.zeros((base.height, k)), np.full((base.height, k), np.inf)
    for i, (u, dd) in enumerate(zip(units, due, strict=True)):
        if len(u) != len(dd):
            raise ValueError(f"series {i}: on_order_lots and on_order_due_days differ in length")
        u_arr[i, : len(u)], d_arr[i, : len(dd)] = u, dd
    return u_arr, d_arr


def _cover_demand(d: np.ndarray, cover_weeks: np.ndarray) -> np.ndarray:
    """Demand over `cover_weeks` [S, P] (fractional last week) from paths `d` [S, P, H]."""
    h = np.arange(d.shape[2])
    w = np.clip(cover_weeks[:, :, None] - h[None, None, :], 0.0, 1.0)
    return (d * w).sum(axis=2)


def _round_order(raw: np.ndarray, case: np.ndarray, moq: np.ndarray) -> np.ndarray:
    """Positive raw quantities up to the case pack, at least the MOQ (itself rounded up to a case)."""
    cases = np.ceil(np.maximum(raw, 0) / case) * case
    moq_cases = np.ceil(moq / case) * case
    return np.where(raw > 0, np.maximum(cases, moq_cases), 0).astype(np.int64)


def _mode_arrays(
    keys: pl.DataFrame, lead_samples: pl.DataFrame, freight: pl.DataFrame, mode: str, n_paths: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Lead-time draws [S, P] and freight (fixed, per kg) [S] for one mode; None when no warehouse has it."""
    lt = lead_samples.filter(pl.col("mode") == mode)
    if lt.is_empty():
        return None
    rng = np.random.default_rng(seed)
    groups = {str(w): g["lead_days"].to_numpy() for (w,), g in lt.group_by("warehouse_id")}
    fr = {
        r["warehouse_id"]: (r["fixed_usd"], r["per_kg_usd"])
        for r in freight.filter(pl.col("mode") == mode).iter_rows(named=True)
    }
    n = keys.height
    draws = np.full((n, n_paths), np.nan)
    fixed, per_kg = np.full(n, np.nan), np.full(n, np.nan)
    for i, wh in enumerate(keys["warehouse_id"].to_list()):
        sample = groups.get(wh)
        if sample is None or sample.size == 0 or wh not in fr:
            continue
        draws[i] = rng.choice(sample, size=n_paths, replace=True)
        fixed[i], per_kg[i] = fr[wh]
    available = ~np.isnan(fixed)
    return (draws, fixed, per_kg, available) if available.any() else None


def plan_restock(
    paths: pl.DataFrame,
    positions: pl.DataFrame,
    skus: pl.DataFrame,
    warehouses: pl.DataFrame,
    lead_samples: pl.DataFrame,
    freight: pl.DataFrame,
    classes: pl.DataFrame | None,
    config: RestockConfig,
) -> pl.DataFrame:
    """The restock plan: one row per SKU x warehouse present in both `paths` and `positions`.

    Args:
        paths: demand sample paths from the plan week on (`warehouse_id, sku_id, path_id, horizon, units`,
            horizon 1 = the week starting on the plan date).
        positions: `warehouse_id, sku_id, on_hand_units, on_order_units`
            (`serving.decisions.lead_times.stock_positions`), optionally `on_order_lots` (list of units) and
            `on_order_due_days` (list of days until each lot is expected): with them, a lot counts on a
            path only if it is due within that path's lead time +
            review period (so a fast air order is not cancelled by sea stock arriving after it is needed);
            without them all of `on_order_units` counts.
        skus: the contract table (`unit_cost_usd`, `price_usd`, `weight_kg`, `case_pack`, `min_order_units`).
        warehouses: the contract table (`capacity_units`, `holding_cost_usd_per_unit_week`).
        lead_samples: `warehouse_id, mode, lead_days` (`serving.decisions.lead_times.lead_time_samples`).
        freight: `warehouse_id, mode, fixed_usd, per_kg_usd` (`serving.decisions.lead_times.freight_rates`).
        classes: `warehouse_id, sku_id, abc_class` (`abc_classes`); None or missing series: class C.
        config: policy settings.

    Returns:
        One row per series: class, service target, chosen mode, lead days, cover, demand over cover (mean,
        target quantile), safety stock, on hand, on order, order-up-to, order units and cases, costs,
        P(stock-out) and expected fill over the cycle, weeks of cover, `is_order` and `reason`.

    Raises:
        ValueError: on missing columns, a series without a SKU row, or a cover longer than the paths.
    """
    for name, frame, cols in (
        ("positions", positions, [*_SERIES, "on_hand_units", "on_order_units"]),
        ("paths", paths, [*_SERIES, "path_id", "horizon", "units"]),
        ("skus", skus, ["sku_id", "unit_cost_usd", "price_usd"]),
        ("warehouses", warehouses, ["warehouse_id", "capacity_units"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} is missing columns {missing}")
    keys = paths.select(_SERIES).unique().join(positions.select(_SERIES), on=_SERIES).sort(_SERIES)
    sku_cols = ["sku_id", "unit_cost_usd", "price_usd", "weight_kg", "case_pack", "min_order_units"]
    sku = skus.select(*(c if c in skus.columns else pl.lit(None).alias(c) for c in sku_cols))
    wh_cols = warehouses.select(
        "warehouse_id",
        "capacity_units",
        (pl.col("holding_cost_usd_per_unit_week") if "holding_cost_usd_per_unit_week" in warehouses.columns
         else pl.lit(0.06)).fill_null(0.06).alias("holding_usd_week"),
    )  # fmt: skip
    cls = (
        classes.select(*_SERIES, "abc_class")
        if classes is not None
        else pl.DataFrame(schema={"warehouse_id": pl.String, "sku_id": pl.String, "abc_class": pl.String})
    )
    lots = [c for c in ("on_order_lots", "on_order_due_days") if c in positions.columns]
    if len(lots) == 1:
        raise ValueError("positions need both on_order_lots and on_order_due_days, or neither")
    base = (
        keys.join(
            positions.select(*_SERIES, "on_hand_units", "on_order_units", *lots), on=_SERIES, how="left"
        )
        .join(sku, on="sku_id", how="left")
        .join(wh_cols, on="warehouse_id", how="left")
        .join(cls, on=_SERIES, how="left")
        .with_columns(
            pl.col("abc_class").fill_null("C"),
            pl.col("case_pack").fill_null(1).clip(1, None),
            pl.col("min_order_units").fill_null(0),
            pl.col("weight_kg").fill_null(0.0),
        )
    )
    no_sku = base.filter(pl.col("unit_cost_usd").is_null())
    if no_sku.height:
        row = no_sku.row(0, named=True)
        raise ValueError(f"sku {row['sku_id']!r} (warehouse {row['warehouse_id']}) is not in skus")
    base = base.with_columns(
        pl.col("abc_class").replace_strict(config.service_by_class, default=None, return_dtype=pl.Float64)
        .alias("service_target")
    )  # fmt: skip
    if base["service_target"].is_null().any():
        raise ValueError(f"service_by_class has no target for classes {base['abc_class'].unique().to_list()}")
    if keys.is_empty():
        raise ValueError("no SKU x warehouse is in both the demand paths and the stock positions")
    base = base.sort(_SERIES)  # joins do not keep row order: align every array with the paths array
    d = _path_array(paths, base.select(_SERIES))
    n_s, n_p, n_h = d.shape
    weekly_mean = d[:, :, : min(4, n_h)].sum(axis=2).mean(axis=1) / min(4, n_h)
    alpha = service_quantile(base["service_target"].to_numpy(), weekly_mean, config)
    on_hand = base["on_hand_units"].to_numpy().astype(float)
    lot_units, lot_due = _lots(base)
    case, moq = base["case_pack"].to_numpy().astype(float), base["min_order_units"].to_numpy().astype(float)
    weight, unit_cost = base["weight_kg"].to_numpy(), base["unit_cost_usd"].to_numpy()
    short_cost = np.maximum(base["price_usd"].to_numpy() - unit_cost, 0.0) + config.stockout_penalty_usd
    hold = base["holding_usd_week"].to_numpy()
    review_w = config.review_days / 7.0
    review_demand = _cover_demand(d, np.full((n_s, n_p), review_w)).mean(axis=1)

    per_mode: dict[str, dict[str, np.ndarray]] = {}
    for k, mode in enumerate(config.modes):
        arrays = _mode_arrays(base.select(_SERIES), lead_samples, freight, mode, n_p, config.seed + k)
        if arrays is None:
            continue
        lead, fixed, per_kg, ok = arrays
        lead = lead + config.handling_days
        cover_w = (lead + config.review_days) / 7.0
        too_long = np.nanmax(np.where(ok[:, None], cover_w, 0.0)) if ok.any() else 0.0
        if too_long > n_h:
            raise ValueError(f"{mode}: cover of {too_long:.1f} weeks exceeds the {n_h} weeks of demand paths")
        dem = _cover_demand(d, np.nan_to_num(cover_w))
        s_level = np.ceil(np.array([np.quantile(dem[i], alpha[i]) for i in range(n_s)]))
        # on order counts on a path only when it is due before the end of that path's cover window
        window = np.nan_to_num(lead) + config.review_days
        pos = on_hand[:, None] + (lot_units[:, None, :] * (lot_due[:, None, :] <= window[:, :, None])).sum(-1)
        need = np.ceil(np.array([np.quantile(dem[i] - pos[i], alpha[i]) for i in range(n_s)]))
        # risk of running out before an order by this mode could arrive (what only a faster mode can fix)
        lead_dem = _cover_demand(d, np.nan_to_num(lead) / 7.0)
        lead_pos = on_hand[:, None] + (lot_units[:, None, :] * (lot_due[:, None, :] <= lead[:, :, None])).sum(
            -1
        )
        early_risk = (lead_dem > lead_pos).mean(axis=1)
        qty = _round_order(need, case, moq)
        after = pos + qty[:, None]
        short = np.maximum(dem - after, 0.0).mean(axis=1)
        left = np.maximum(after - dem, 0.0).mean(axis=1)
        lead_ok = np.where(ok[:, None], lead, 0.0)
        mean_lead = np.where(ok, lead_ok.mean(axis=1), np.nan)
        freight_usd = np.where(qty > 0, fixed + per_kg * qty * weight, 0.0)
        transit = qty * unit_cost * config.capital_rate_per_year / 52.0 * mean_lead / 7.0
        holding = (left + review_demand / 2.0) * hold * review_w
        stockout = short * short_cost
        per_mode[mode] = {
            "ok": ok, "lead_mean": mean_lead,
            "lead_p90": np.where(ok, np.quantile(lead_ok, 0.9, axis=1), np.nan),
            "cover_weeks": np.where(ok, np.nan_to_num(cover_w).mean(axis=1), np.nan),
            "dem_mean": dem.mean(axis=1), "S": s_level, "qty": qty, "need": need, "freight": freight_usd,
            "transit": transit,
            "holding": holding, "stockout": stockout, "short": short,
            "p_stockout": (dem > after).mean(axis=1), "dem_for_fill": dem.mean(axis=1),
            "total": np.where(ok, freight_usd + transit + holding + stockout, np.inf),
            "fixed": np.nan_to_num(fixed), "per_kg": np.nan_to_num(per_kg), "early_risk": early_risk,
            "lead_dem_mean": lead_dem.mean(axis=1),
        }  # fmt: skip
    if not per_mode:
        raise ValueError("no lead-time history for any candidate mode; cannot plan")
    modes = list(per_mode)
    totals = np.stack([per_mode[m]["total"] for m in modes], axis=1)
    speed = np.stack([np.nan_to_num(per_mode[m]["lead_mean"], nan=np.inf) for m in modes], axis=1)
    qtys = np.stack([per_mode[m]["qty"] for m in modes], axis=1)
    rate = np.stack([np.where(per_mode[m]["ok"], per_mode[m]["per_kg"], np.inf) for m in modes], axis=1)
    # The regular mode is the cheapest per kg. A faster mode is considered when the regular one would
    # arrive too late (P(stock-out before it can arrive) above 1 - target) or always with
    # `expedite_only=False`; then the order goes by the cheapest mode in total expected cost.
    regular = rate.argmin(axis=1)
    rows = np.arange(n_s)
    early = np.stack([per_mode[m]["early_risk"] for m in modes], axis=1)[rows, regular]
    open_choice = ~np.full(n_s, config.expedite_only) | (early > 1.0 - alpha)
    cheapest_total = np.lexsort((speed.T, totals.T), axis=0)[0]
    best = np.where((qtys.max(axis=1) > 0) & open_choice, cheapest_total, regular)
    pick = {k: np.stack([per_mode[m][k] for m in modes], axis=1)[rows, regular] for k in per_mode[modes[0]]}
    fast = {k: np.stack([per_mode[m][k] for m in modes], axis=1)[rows, best] for k in per_mode[modes[0]]}
    # Dual sourcing: the faster mode ships what is needed before the regular mode could arrive; the regular
    # mode still ships the rest of the need over its own (longer) window, so the pipeline keeps flowing.
    expedite = np.where(best != regular, fast["qty"], 0).astype(np.int64)
    case, moq_units = base["case_pack"].to_numpy(), base["min_order_units"].to_numpy()
    regular_qty = np.where(
        best != regular,
        _round_order(pick["need"] - expedite, case.astype(float), moq_units.astype(float)),
        pick["qty"],
    ).astype(np.int64)
    reg_freight = np.where(regular_qty > 0, pick["fixed"] + pick["per_kg"] * regular_qty * weight, 0.0)
    alt = [
        "; ".join(f"{m} {per_mode[m]['total'][i]:.0f}" for m in modes if np.isfinite(per_mode[m]["total"][i]))
        for i in range(n_s)
    ]
    plan = base.with_columns(
        pl.Series("mode", [modes[j] for j in regular]),
        pl.Series("lead_days_mean", pick["lead_mean"]).round(1),
        pl.Series("lead_days_p90", pick["lead_p90"]).round(1),
        pl.Series("cover_weeks", pick["cover_weeks"]).round(2),
        pl.Series("demand_cover_mean", pick["dem_mean"]).round(1),
        pl.Series("order_up_to_units", pick["S"].astype(np.int64)),
        pl.Series("order_units_unconstrained", regular_qty),
        pl.Series("freight_usd", reg_freight).round(2),
        pl.Series("expedite_mode", [modes[j] if j != r else None for j, r in zip(best, regular, strict=True)],
                  dtype=pl.String),
        pl.Series("expedite_units_unconstrained", expedite),
        pl.Series("transit_holding_usd", fast["transit"]).round(2),
        pl.Series("holding_usd", fast["holding"]).round(2),
        pl.Series("stockout_cost_usd", fast["stockout"]).round(2),
        pl.Series("expected_cost_usd", fast["total"]).round(2),
        pl.Series("p_stockout", fast["p_stockout"]).round(3),
        pl.Series("p_stockout_before_regular", early).round(3),
        pl.Series("expected_short_units", fast["short"]).round(2),
        pl.Series("mode_costs", alt),
        pl.Series("weekly_demand_mean", weekly_mean),
        pl.Series("service_quantile", alpha).round(3),
    ).with_columns(
        (pl.col("order_up_to_units") - pl.col("demand_cover_mean")).round(1).alias("safety_stock_units"),
        (pl.col("on_hand_units") + pl.col("on_order_units")).alias("inventory_position"),
        pl.Series("demand_over_lead_mean", pick["lead_dem_mean"]).round(1),
        (pl.col("on_hand_units") / pl.col("weekly_demand_mean").clip(1e-9, None))
        .round(1)
        .alias("weeks_of_cover"),
    )  # fmt: skip
    plan = plan.with_columns(
        (pl.col("inventory_position") - pl.col("demand_over_lead_mean"))
        .clip(0, None)
        .ceil()
        .cast(pl.Int64)
        .alias("stock_at_arrival_units")
    )
    plan = _apply_limits(plan, (fast["fixed"], fast["per_kg"]), (pick["fixed"], pick["per_kg"]), config)
    return _with_reason(plan)


def _fit_lines(
    plan: pl.DataFrame,
    want: np.ndarray,
    rates: tuple[np.ndarray, np.ndarray],
    room: dict[str, float],
    budget: list[float],
) -> tuple[np.ndarray, list[str]]:
    """Fit order lines in priority order (class A first, then the largest stock-out cost avoided per unit)
    into the warehouses' remaining room and the remaining budget (both updated in place)."""
    fixed, per_kg = rates
    case = plan["case_pack"].to_numpy().astype(np.int64)
    moq = np.ceil(plan["min_order_units"].to_numpy() / case).astype(np.int64) * case
    var_cost = plan["unit_cost_usd"].to_numpy() + per_kg * plan["weight_kg"].to_numpy()  # purchase + freight
    avoided = plan["stockout_cost_usd"].to_numpy() / np.maximum(want, 1)
    priority = np.lexsort((-avoided, plan["abc_class"].to_numpy()))
    wh = plan["warehouse_id"].to_list()
    qty = want.copy()
    note = [""] * plan.height
    for i in priority:
        if want[i] <= 0:
            continue
        space = int(min(room[wh[i]], 1e15))
        fit = min(int(want[i]), space // case[i] * case[i])
        by_budget = False
        if np.isfinite(budget[0]):
            afford = int(max(budget[0] - fixed[i], 0.0) // max(var_cost[i], 1e-9))
            if afford // case[i] * case[i] < fit:
                fit, by_budget = afford // case[i] * case[i], True
        if fit < moq[i]:
            fit = 0
        if fit < want[i]:
            why = [w for w, hit in (("capacity", space < want[i]), ("budget", by_budget)) if hit]
            note[i] = f"cut from {want[i]} by {' and '.join(why)}"
        room[wh[i]] -= fit
        if fit > 0:
            budget[0] -= fit * var_cost[i] + fixed[i]
        qty[i] = fit
    return qty, note


def _apply_limits(
    plan: pl.DataFrame,
    fast_rates: tuple[np.ndarray, np.ndarray],
    regular_rates: tuple[np.ndarray, np.ndarray],
    config: RestockConfig,
) -> pl.DataFrame:
    """Cut lines so capacity (per warehouse) and budget (overall) hold.

    Capacity: the expected stock when the regular order lands (`stock_at_arrival_units` = on hand + on
    order - mean demand over the regular lead time, at least 0) plus the new orders stays within
    `capacity_units`.

    Expedite lines are served first (they prevent the nearest stock-outs), then the regular ones.
    """
    room: dict[str, float] = {}
    cols = ("warehouse_id", "capacity_units", "stock_at_arrival_units")
    for w, cap, stock in plan.select(cols).iter_rows():
        room[w] = room.get(w, float("inf") if cap is None else float(cap)) - stock
    room = {w: max(v, 0.0) for w, v in room.items()}
    budget = [np.inf if config.budget_usd is None else float(config.budget_usd)]
    exp_want = plan["expedite_units_unconstrained"].to_numpy().astype(np.int64)
    exp_qty, exp_note = _fit_lines(plan, exp_want, fast_rates, room, budget)
    reg_want = plan["order_units_unconstrained"].to_numpy().astype(np.int64)
    reg_qty, reg_note = _fit_lines(plan, reg_want, regular_rates, room, budget)
    weight = plan["weight_kg"].to_numpy()
    reg_freight = np.where(reg_qty > 0, regular_rates[0] + regular_rates[1] * reg_qty * weight, 0.0)
    exp_freight = np.where(exp_qty > 0, fast_rates[0] + fast_rates[1] * exp_qty * weight, 0.0)
    notes = [
        "; ".join(x for x in (f"expedite {e}" if e else "", r) if x)
        for e, r in zip(exp_note, reg_note, strict=True)
    ]
    return plan.with_columns(
        pl.Series("order_units", reg_qty),
        pl.Series("expedite_units", exp_qty),
        pl.Series("freight_usd", reg_freight + exp_freight).round(2),
        pl.Series("limit_note", notes, dtype=pl.String),
    ).with_columns(
        (pl.col("order_units") // pl.col("case_pack")).alias("order_cases"),
        ((pl.col("order_units") + pl.col("expedite_units")) * pl.col("unit_cost_usd"))
        .round(2)
        .alias("order_value_usd"),
        ((pl.col("order_units") + pl.col("expedite_units")) > 0).alias("is_order"),
    )


def _with_reason(plan: pl.DataFrame) -> pl.DataFrame:
    reason = pl.format(
        "cover {} wk (lead {} d, p90 {} d, + review); target {} = P{} of demand over cover "
        "(class {} service {}%, mean {}); on hand {} + on order {} = {}; {}",
        pl.col("cover_weeks"),
        pl.col("lead_days_mean"),
        pl.col("lead_days_p90"),
        pl.col("order_up_to_units"),
        (pl.col("service_quantile") * 100).round(0).cast(pl.Int64),
        pl.col("abc_class"),
        (pl.col("service_target") * 100).round(0).cast(pl.Int64),
        pl.col("demand_cover_mean"),
        pl.col("on_hand_units"),
        pl.col("on_order_units"),
        pl.col("inventory_position"),
        pl.when(pl.col("order_units") > 0)
        .then(pl.format("order {} ({} cases of {}) by {}", "order_units", "order_cases", "case_pack", "mode"))
        .when(pl.col("expedite_units") > 0)
        .then(pl.format("no {} order (the expedite covers the need)", "mode"))
        .otherwise(pl.lit("no order (position covers the target)")),
    )  # fmt: skip
    expedite = pl.format(
        "; expedite {} by {}: P(stock-out before {} arrives) {}% (expected cost USD: {})",
        "expedite_units", "expedite_mode", "mode", (pl.col("p_stockout_before_regular") * 100).round(0),
        "mode_costs",
    )  # fmt: skip
    reason = pl.when(pl.col("expedite_units") > 0).then(pl.concat_str(reason, expedite)).otherwise(reason)
    cut = pl.concat_str(reason, pl.lit("; "), "limit_note")
    reason = pl.when(pl.col("limit_note") != "").then(cut).otherwise(reason)
    return plan.with_columns(reason.alias("reason")).sort("warehouse_id", "sku_id")
