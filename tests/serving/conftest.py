"""A small seeded world with all five shipment models and a feature snapshot, shared by the serving tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from features.ingest import validate_tables
from features.sources.simulator import SimulatorConfig, simulate
from models.lgbm import LGBMConfig
from models.shipment_tasks import ShipmentModelsConfig, fit_task, prepare_task_frames
from models.windows import WindowConfig
from serving.online.snapshot import SNAPSHOT_DIR, build_snapshot, write_snapshot

TABLES = ("shipments", "shipment_events", "customs_declarations", "lanes")


def make_world() -> dict[str, pl.DataFrame]:
    """Validated contract tables of a ~4,000-shipment world (seeded)."""
    base = SimulatorConfig(start_date=dt.date(2024, 9, 2), end_date=dt.date(2025, 2, 28), seed=21)
    config = base.model_copy(
        update={
            "shipments": base.shipments.model_copy(update={"n_shipments": 4_000}),
            "demand": base.demand.model_copy(update={"n_skus": 5}),
        }
    )
    sim = simulate(config)
    return validate_tables({n: sim.tables[n] for n in TABLES}).valid


@pytest.fixture(scope="session")
def serving_world() -> dict[str, pl.DataFrame]:
    """Validated contract tables of a ~4,000-shipment world (seeded)."""
    return make_world()


def train_models(world: dict[str, pl.DataFrame], out: Path, seed: int = 0) -> Path:
    """Fit every shipment task with small boosters into `out/<task>/` and write the snapshot."""
    lgbm = LGBMConfig(
        num_boost_round=25,
        early_stopping_rounds=None,
        num_threads=1,
        seed=seed,
        params={"learning_rate": 0.2, "num_leaves": 15},
    )
    config = ShipmentModelsConfig(windows=WindowConfig(maturity_days=20, calibration_days=21), lgbm=lgbm)
    for name, frame in prepare_task_frames(world, config).items():
        model = fit_task(frame, config).model  # the boosted model (what ships when it beats its baselines)
        assert model is not None, name
        model.save(out / name)
    write_snapshot(
        build_snapshot(world, booking=config.booking, milestone=config.milestone, data_version="test"),
        out / SNAPSHOT_DIR,
    )
    return out


@pytest.fixture(scope="session")
def models_dir(serving_world: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models of all five tasks and their snapshot, in a temporary `outputs/models`-like folder."""
    return train_models(serving_world, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def open_rows(serving_world: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The last 30 shipments of the world as open bookings (delivery state dropped)."""
    return serving_world["shipments"].tail(30).drop("delivered_at", "status")
