"""Stage: decisions. One replenishment mode as an option of each series: lead times, order and cycle cost.

Pure: the aligned `SeriesInputs`, lead-time samples and freight rates in; a `ModeOption` per mode out (the
order-up-to level, the order, and its expected cost over one cycle: freight, in-transit capital, on-hand
holding and stock-outs). Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from serving.decisions.restock.inputs import SeriesInputs, cover_demand
from serving.decisions.restock.policy import RestockConfig

__all__ = [
    "FreightRate",
    "ModeLeads",
    "ModeOption",
    "draw_mode_leads",
    "mode_option",
    "round_order",
    "select",
]


@dataclass(frozen=True)
class FreightRate:
    """Freight of one shipment per series: `fixed` + `per_kg` x units x kg per unit (arrays [S])."""

    fixed: np.ndarray
    per_kg: np.ndarray

    def cost(self, qty: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Freight of shipping `qty` [S] units (0 where nothing ships)."""
        return np.where(qty > 0, self.fixed + self.per_kg * qty * weight, 0.0)


@dataclass(frozen=True)
class ModeLeads:
    """Lead-time draws of one mode, order placed -> received (handling included).

    Attributes:
        draws: [S, P] lead days per series and path (NaN where the warehouse lacks the mode).
        rate: freight per series (NaN where the warehouse lacks the mode).
        ok: [S] the warehouse has lead-time history and a freight rate for the mode.
    """

    draws: np.ndarray
    rate: FreightRate
    ok: np.ndarray


@dataclass(frozen=True)
class ModeOption:
    """The plan of each series [S] if it were replenished by one mode.

    Attributes:
        ok: the warehouse has the mode.
        lead_mean, lead_p90: lead days (mean, P90 over the draws).
        cover_weeks: mean cover (lead + review) in weeks.
        demand_cover_mean: mean demand over the cover.
        order_up_to: order-up-to level S (the service quantile of demand over cover, rounded up).
        need: the service quantile of demand over cover minus position (raw order, may be <= 0).
        qty: the order, rounded to case packs and at least the MOQ.
        freight, transit, holding, stockout: cost of the cycle (USD); total: their sum (inf if not ok).
        short: expected units short at the end of the cycle; p_stockout: P(short > 0).
        fixed, per_kg: freight rate (0 where not ok).
        early_risk: P(stock-out before an order by this mode could arrive).
        lead_demand_mean: mean demand over the lead time.
    """

    ok: np.ndarray
    lead_mean: np.ndarray
    lead_p90: np.ndarray
    cover_weeks: np.ndarray
    demand_cover_mean: np.ndarray
    order_up_to: np.ndarray
    need: np.ndarray
    qty: np.ndarray
    freight: np.ndarray
    transit: np.ndarray
    holding: np.ndarray
    stockout: np.ndarray
    total: np.ndarray
    short: np.ndarray
    p_stockout: np.ndarray
    fixed: np.ndarray
    per_kg: np.ndarray
    early_risk: np.ndarray
    lead_demand_mean: np.ndarray

    @property
    def rate(self) -> FreightRate:
        """The freight rate of this option."""
        return FreightRate(self.fixed, self.per_kg)


def select(options: list[ModeOption], choice: np.ndarray) -> ModeOption:
    """Per series `i`, the option `options[choice[i]]`."""
    rows = np.arange(choice.size)
    picked = {
        f.name: np.stack([getattr(o, f.name) for o in options], axis=1)[rows, choice]
        for f in fields(ModeOption)
    }
    return ModeOption(**picked)


def round_order(raw: np.ndarray, case: np.ndarray, moq: np.ndarray) -> np.ndarray:
    """Positive raw quantities up to the case pack, at least the MOQ (itself rounded up to a case)."""
    cases = np.ceil(np.maximum(raw, 0) / case) * case
    moq_cases = np.ceil(moq / case) * case
    return np.where(raw > 0, np.maximum(cases, moq_cases), 0).astype(np.int64)


def draw_mode_leads(
    keys: pl.DataFrame,
    lead_samples: pl.DataFrame,
    freight: pl.DataFrame,
    mode: str,
    n_paths: int,
    seed: int,
    handling_days: float,
) -> ModeLeads | None:
    """Lead-time draws [S, P] (resampled from the warehouse's history, + handling) and freight of one mode.

    Returns:
        None when no warehouse of `keys` has both lead-time history and a freight rate for the mode.
    """
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
    if not available.any():
        return None
    return ModeLeads(draws + handling_days, FreightRate(fixed, per_kg), available)


def _quantile_per_series(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The `alpha[i]` quantile of `values[i]` [S, P], rounded up."""
    return np.ceil(np.array([np.quantile(values[i], alpha[i]) for i in range(values.shape[0])]))


def mode_option(inputs: SeriesInputs, leads: ModeLeads, mode: str, config: RestockConfig) -> ModeOption:
    """Order-up-to level, order and expected cycle cost of every series if replenished by this mode.

    Raises:
        ValueError: when the cover (lead + review) is longer than the demand paths.
    """
    d, pos0, lead, ok = inputs.demand, inputs.position, leads.draws, leads.ok
    cover_w = (lead + config.review_days) / 7.0
    too_long = np.nanmax(np.where(ok[:, None], cover_w, 0.0)) if ok.any() else 0.0
    if too_long > d.shape[2]:
        raise ValueError(
            f"{mode}: cover of {too_long:.1f} weeks exceeds the {d.shape[2]} weeks of demand paths"
        )
    dem = cover_demand(d, np.nan_to_num(cover_w))
    # on order counts on a path only when it is due before the end of that path's cover window
    pos = pos0.within(np.nan_to_num(lead) + config.review_days)
    need = _quantile_per_series(dem - pos, inputs.alpha)
    # risk of running out before an order by this mode could arrive (what only a faster mode can fix)
    lead_dem = cover_demand(d, np.nan_to_num(lead) / 7.0)
    early_risk = (lead_dem > pos0.within(lead)).mean(axis=1)
    qty = round_order(need, inputs.case, inputs.moq)
    after = pos + qty[:, None]
    short = np.maximum(dem - after, 0.0).mean(axis=1)
    left = np.maximum(after - dem, 0.0).mean(axis=1)
    lead_ok = np.where(ok[:, None], lead, 0.0)
    mean_lead = np.where(ok, lead_ok.mean(axis=1), np.nan)
    freight = leads.rate.cost(qty, inputs.weight)
    transit = qty * inputs.unit_cost * config.capital_rate_per_year / 52.0 * mean_lead / 7.0
    review_w = config.review_days / 7.0
    holding = (left + inputs.review_demand / 2.0) * inputs.hold * review_w
    stockout = short * inputs.short_cost
    return ModeOption(
        ok=ok,
        lead_mean=mean_lead,
        lead_p90=np.where(ok, np.quantile(lead_ok, 0.9, axis=1), np.nan),
        cover_weeks=np.where(ok, np.nan_to_num(cover_w).mean(axis=1), np.nan),
        demand_cover_mean=dem.mean(axis=1),
        order_up_to=_quantile_per_series(dem, inputs.alpha),
        need=need,
        qty=qty,
        freight=freight,
        transit=transit,
        holding=holding,
        stockout=stockout,
        total=np.where(ok, freight + transit + holding + stockout, np.inf),
        short=short,
        p_stockout=(dem > after).mean(axis=1),
        fixed=np.nan_to_num(leads.rate.fixed),
        per_kg=np.nan_to_num(leads.rate.per_kg),
        early_risk=early_risk,
        lead_demand_mean=lead_dem.mean(axis=1),
    )
