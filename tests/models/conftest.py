"""Seeded synthetic shipments with known structure for the model tests.

The true conditional quantiles of the transit time are in ``oracle_q50``, ``oracle_q80``, ``oracle_q95``.

Transit days are right-skewed and heteroscedastic: ``contract_days * lane factor * weight and peak effects *
exp(sigma_mode * noise)``, with the spread largest for postal and smallest for express. Lateness and customs
inspection follow known logistic rules. Rows are ordered by ``created_at`` over one year.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from models.encoding import FeatureSet
from models.shipment_tasks import ShipmentModelsConfig

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
MODES = ("postal", "dedicated_line", "express")
CONTRACT_DAYS = {"postal": 20.0, "dedicated_line": 10.0, "express": 5.0}
SIGMA = {"postal": 0.45, "dedicated_line": 0.25, "express": 0.1}
DESTINATIONS = ("US", "DE", "GB", "FR", "BR")
DEST_FACTOR = {"US": 1.0, "DE": 0.9, "GB": 1.1, "FR": 0.95, "BR": 1.5}
CARRIERS = ("c1", "c2", "c3", "c4")
CARRIER_FACTOR = {"c1": 1.0, "c2": 1.15, "c3": 0.9, "c4": 1.05}
HS_CHAPTERS = ("61", "64", "85", "95", "33")

FEATURES = FeatureSet(
    numeric=("weight_kg", "declared_value_usd", "contract_days", "is_peak"),
    categorical=("mode", "destination_country", "carrier", "hs_chapter"),
)


def make_shipments(n: int, seed: int = 0, days: int = 365) -> pl.DataFrame:
    """`n` synthetic shipments created over `days` days, sorted by creation time."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, days * 24, n))
    created = [START + dt.timedelta(hours=float(h)) for h in offsets]
    mode = rng.choice(MODES, n, p=[0.5, 0.3, 0.2])
    dest = rng.choice(DESTINATIONS, n)
    carrier = rng.choice(CARRIERS, n)
    hs = rng.choice(HS_CHAPTERS, n)
    weight = rng.lognormal(0.0, 0.6, n)
    value = rng.lognormal(3.5, 0.8, n)
    day = np.array([c.day for c in created])
    is_peak = (((day >= 10) & (day <= 12)) | (day >= 26)).astype(float)  # monthly sales, all year
    contract = np.array([CONTRACT_DAYS[m] for m in mode])
    sigma = np.array([SIGMA[m] for m in mode])
    factor = np.array([DEST_FACTOR[d] for d in dest]) * np.array([CARRIER_FACTOR[c] for c in carrier])
    median = contract * factor * (1.0 + 0.08 * weight) * (1.0 + 0.3 * is_peak)
    transit = median * np.exp(sigma * rng.standard_normal(n))
    delivered = [c + dt.timedelta(days=float(t)) for c, t in zip(created, transit, strict=True)]
    promised = contract + 3.0
    logit_insp = -3.0 + 1.2 * (value > 60) + 1.0 * np.isin(hs, ["85", "33"]) + 0.8 * (dest == "BR")
    inspected = rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit_insp))
    oracle = {f"oracle_q{round(q * 100)}": median * np.exp(sigma * norm.ppf(q)) for q in (0.5, 0.8, 0.95)}
    return pl.DataFrame(
        {
            "shipment_id": [f"S{i:07d}" for i in range(n)],
            "created_at": pl.Series(created, dtype=pl.Datetime("us", "UTC")),
            "delivered_at": pl.Series(delivered, dtype=pl.Datetime("us", "UTC")),
            "mode": pl.Series(mode, dtype=pl.Enum(list(MODES))),
            "destination_country": dest,
            "carrier": pl.Series(carrier, dtype=pl.Categorical),
            "hs_chapter": hs,
            "weight_kg": weight,
            "declared_value_usd": value,
            "contract_days": contract,
            "is_peak": is_peak.astype(bool),
            "promised_days": promised,
            "transit_days": transit,
            "is_late": transit > promised,
            "is_inspected": inspected,
            **oracle,
        }
    )


@pytest.fixture(scope="session")
def shipments() -> pl.DataFrame:
    """20,000 shipments over a year (seed 0)."""
    return make_shipments(20_000, seed=0)


@pytest.fixture(scope="session")
def small_shipments() -> pl.DataFrame:
    """1,500 shipments for quick fit/save/load tests (seed 1)."""
    return make_shipments(1_500, seed=1)


@pytest.fixture(scope="session")
def sim_world() -> dict[str, pl.DataFrame]:
    """The seeded simulated world of the shipment-suite tests: 12,000 shipments over 10 months (seed 5).

    Validated contract tables plus ``oracle`` (the simulator's per-shipment truth).
    """
    from features.ingest import validate_tables
    from features.sources.simulator import SimulatorConfig, simulate

    base = SimulatorConfig(start_date=dt.date(2024, 6, 3), end_date=dt.date(2025, 3, 30), seed=5)
    config = base.model_copy(
        update={
            "shipments": base.shipments.model_copy(update={"n_shipments": 12_000}),
            "demand": base.demand.model_copy(update={"n_skus": 10}),
        }
    )
    sim = simulate(config)
    names = ("shipments", "shipment_events", "customs_declarations", "lanes")
    valid = validate_tables({n: sim.tables[n] for n in names}).valid
    return {**valid, "oracle": sim.oracle["shipments"]}


@pytest.fixture(scope="session")
def fast_shipment_config() -> ShipmentModelsConfig:
    """Small boosters (one thread) for the shipment-suite tests; windows sized from the data."""
    from models.lgbm import LGBMConfig

    lgbm = LGBMConfig(
        num_boost_round=120,
        early_stopping_rounds=20,
        refit_after_stopping=True,
        num_threads=1,
        params={"learning_rate": 0.1},
    )
    return ShipmentModelsConfig(lgbm=lgbm)
