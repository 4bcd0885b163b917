"""Stage: simulate. Import customs of the simulated shipments: inspection risk, holds, outcomes, duties.

Reads nothing. `inspection_probability` is the true booking-time probability of an inspection (the oracle's
`p_inspection`); `draw_customs` draws what customs does with each parcel (clearance and hold times in
destination working days, outcome, fraud found); `build_declarations` turns the per-shipment customs facts
into the contract's `customs_declarations` table, right-censored at "now".

Mechanisms: risk by HS chapter, formal entry above the destination's de minimis threshold (more checks and
duties), the seller's latent declaration quality and under-declaration, the carrier class (express brokers
are fast, dedicated lines are pre-cleared in bulk, postal is slow) and temporary crackdowns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import TABLES, CustomsOutcome

__all__ = [
    "OUTCOME_CODES",
    "CustomsDraw",
    "CustomsRisk",
    "build_declarations",
    "draw_customs",
    "inspection_probability",
]

OUTCOME_CODES: dict[str, int] = {"released": 0, "duty_reassessed": 1, "held": 2, "seized": 3, "returned": 4}

_BASE_LOGIT = -3.6
_FORMAL_LOGIT = 1.2
_QUALITY_LOGIT = 2.0  # times (1 - declaration quality)
_UNDER_LOGIT = 0.8  # risk engines flag implausible value per kg
_FRAUD_DETECTION = 0.75
_CRITICAL_SEIZE = 0.25
_REASSESS_DAYS = 1.5
_PENALTY_SHARE = 0.2


@dataclass(frozen=True)
class CustomsRisk:
    """What customs will do with each parcel, fixed at booking (one array element per shipment).

    Attributes:
        p_inspect: probability of an inspection (hold).
        is_under: the parcel is under-declared (declared value below the true value).
        severity: 0 honest, 1 under-declared, 2 critically under-declared (declared < 35% of the value).
        seize_p / refuse_p: probability an inspected parcel is seized / refused entry.
        clear_days: median clearance in destination working days (formal entry included).
        hold_days: median extra working days of an inspection hold.
    """

    p_inspect: np.ndarray
    is_under: np.ndarray
    severity: np.ndarray
    seize_p: np.ndarray
    refuse_p: np.ndarray
    clear_days: np.ndarray
    hold_days: np.ndarray

    def take(self, idx: np.ndarray) -> CustomsRisk:
        """The risk of the shipments at positions `idx` (repeats allowed)."""
        return CustomsRisk(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class CustomsDraw:
    """One draw of the customs stage.

    Attributes:
        is_inspected: the parcel was held for inspection.
        working_days: working days from import entry to the customs decision.
        outcome: `OUTCOME_CODES` (never `held`: that only appears when the decision is after "now").
        is_fraud: the inspection found under-declaration.
    """

    is_inspected: np.ndarray
    working_days: np.ndarray
    outcome: np.ndarray
    is_fraud: np.ndarray


def inspection_probability(
    risk_logit: np.ndarray,
    is_formal: np.ndarray,
    quality: np.ndarray,
    is_under: np.ndarray,
) -> np.ndarray:
    """True probability that customs holds a parcel for inspection.

    Args:
        risk_logit: sum of the destination strictness, the HS-chapter risk, the mode shift and any
            crackdown active when the parcel is expected at customs.
        is_formal: declared value above the destination de minimis (formal entry).
        quality: the seller's latent declaration quality in [0, 1] (1 = complete, accurate data).
        is_under: the parcel is under-declared.

    Returns:
        Probabilities in (0, 1).
    """
    logit = (
        _BASE_LOGIT
        + risk_logit
        + _FORMAL_LOGIT * is_formal
        + _QUALITY_LOGIT * (1.0 - quality)
        + _UNDER_LOGIT * is_under
    )
    return 1.0 / (1.0 + np.exp(-logit))


def draw_customs(risk: CustomsRisk, slow: np.ndarray, u: np.ndarray, z: np.ndarray) -> CustomsDraw:
    """Draw inspections, clearance/hold times and outcomes.

    Args:
        risk: booking-time customs risk of each parcel.
        slow: congestion multiplier of the destination when the parcel arrives (>= ~0.8).
        u: uniform(0, 1) noise, shape (4, parcels).
        z: standard normal noise, shape (2, parcels).

    Returns:
        The customs draw of each parcel.
    """
    inspected = u[0] < risk.p_inspect
    fraud = inspected & risk.is_under & (u[1] < _FRAUD_DETECTION)
    seize_p = risk.seize_p + _CRITICAL_SEIZE * (fraud & (risk.severity == 2))
    seized = inspected & (u[2] < seize_p)
    refused = inspected & ~seized & (u[3] < risk.refuse_p)
    hold = risk.hold_days * np.exp(0.8 * z[1]) + _REASSESS_DAYS * fraud
    days = risk.clear_days * slow * np.exp(0.6 * z[0]) + np.where(inspected, hold * slow, 0.0)
    outcome = np.where(seized, 3, np.where(refused, 4, np.where(fraud, 1, 0))).astype(np.int8)
    return CustomsDraw(is_inspected=inspected, working_days=days, outcome=outcome, is_fraud=fraud)


def build_declarations(facts: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """The `customs_declarations` table, as an import system would export it at `now`.

    Args:
        facts: one row per cross-border shipment that reached import customs, with `shipment_id`,
            `declared_at`, `decision_at` (UTC timestamps), `outcome` (code), `is_inspected`, `is_fraud`,
            `severity`, `destination_country`, `hs_code`, `declared_value_usd`, `true_value_usd`,
            `is_formal`, `duty_rate`, `weight_kg`, `seller_id`, `importer_id`, `declarant_id`,
            `courier_id`, `office_id`.
        now: the export moment (a UTC datetime); later declarations are absent, undecided ones `held`.

    Returns:
        Declarations with exactly the contract schema, ids `D000000001`... in declaration order.
    """
    spec = TABLES["customs_declarations"]
    now_lit = pl.lit(now).cast(spec.schema["declared_at"])
    decided = pl.col("decision_at") <= now_lit
    code = pl.when(decided).then(pl.col("outcome")).otherwise(OUTCOME_CODES["held"])
    released = code.is_in([OUTCOME_CODES["released"], OUTCOME_CODES["duty_reassessed"]])
    formal_duty = pl.when(pl.col("is_formal")).then(pl.col("duty_rate") * pl.col("declared_value_usd"))
    reassessed = pl.col("duty_rate") * pl.col("true_value_usd") + _PENALTY_SHARE * (
        pl.col("true_value_usd") - pl.col("declared_value_usd")
    )
    duty = pl.when(code == OUTCOME_CODES["duty_reassessed"]).then(reassessed).otherwise(formal_duty)
    out = (
        facts.filter(pl.col("declared_at") <= now_lit)
        .sort("declared_at", "shipment_id")
        .with_columns(
            ("D" + pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(9)).alias("declaration_id"),
            code.alias("__code"),
        )
        .with_columns(
            pl.col("__code")
            .replace_strict({v: k for k, v in OUTCOME_CODES.items()}, return_dtype=CustomsOutcome)
            .alias("outcome"),
            pl.when(released).then(pl.col("decision_at")).alias("released_at"),
            pl.lit("CN").alias("origin_country"),
            duty.fill_null(0.0).round(2).alias("duty_usd"),
            (pl.col("weight_kg") * 0.85).round(3).alias("net_mass_kg"),
            (pl.col("duty_rate") * 100.0).round(2).alias("tax_rate_pct"),
            pl.when(decided).then(pl.col("is_fraud")).alias("is_fraud"),
            pl.when(decided)
            .then(pl.when(pl.col("is_fraud")).then(pl.col("severity")).otherwise(0))
            .cast(pl.Int8)
            .alias("fraud_severity"),
        )
    )
    return out.select([pl.col(c).cast(t) for c, t in spec.schema.items()])
