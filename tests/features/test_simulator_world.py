"""The whole simulated world: contract conformance, determinism, injected faults, CSV round trip."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.ingest import ingest, validate_tables
from features.sources.simulator import SimulatedWorld, SimulatorConfig, simulate, write_world


def _config(seed: int = 11, dirty_rate: float = 0.0) -> SimulatorConfig:
    base = SimulatorConfig(
        start_date=dt.date(2024, 9, 2), end_date=dt.date(2025, 3, 30), seed=seed, dirty_rate=dirty_rate
    )
    return base.model_copy(
        update={
            "shipments": base.shipments.model_copy(update={"n_shipments": 4_000}),
            "demand": base.demand.model_copy(update={"n_skus": 30}),
        }
    )


@cache
def _world(seed: int = 11, dirty_rate: float = 0.0) -> SimulatedWorld:
    return simulate(_config(seed, dirty_rate))


def test_simulate_clean_world_passes_the_contract() -> None:
    result = validate_tables(_world().tables)
    assert result.quarantine.height == 0, result.quarantine.group_by("table", "rule").len().to_dicts()
    assert set(result.valid) >= {
        "shipments",
        "shipment_events",
        "customs_declarations",
        "lanes",
        "skus",
        "warehouses",
        "warehouse_sales",
        "replenishments",
    }


def test_simulate_same_seed_same_world_other_seed_differs() -> None:
    again = simulate(_config())
    for name, df in _world().tables.items():
        assert_frame_equal(again.tables[name], df)
    other = _world(seed=12)
    assert not other.tables["shipments"].equals(_world().tables["shipments"])


def test_simulate_injected_faults_are_exactly_what_ingest_quarantines() -> None:
    world = _world(dirty_rate=0.01)
    injected = world.oracle["injected_errors"]
    assert injected.height > 20
    q = validate_tables(world.tables).quarantine
    found = injected.join(q, on=["table", "row_number"], how="left")
    assert found["rule_right"].null_count() == 0, "an injected fault was not quarantined"
    assert (found["rule"] == found["rule_right"]).all(), found.filter(pl.col("rule") != pl.col("rule_right"))
    extra = q.join(injected, on=["table", "row_number"], how="anti")
    # Anything else quarantined must be a consequence: rows pointing at a quarantined parent.
    assert set(extra["rule"].unique()) <= {"foreign_key"}
    assert set(extra["table"].unique()) <= {"shipment_events", "customs_declarations"}


def test_write_world_csv_and_parquet_ingest_to_the_same_tables(tmp_path: Path) -> None:
    world = _world()
    small = SimulatedWorld(
        tables={k: v for k, v in world.tables.items() if k in ("shipments", "shipment_events", "skus")},
        oracle={},
    )
    write_world(small, tmp_path / "csv", "csv")
    write_world(small, tmp_path / "pq", "parquet")
    ingest(tmp_path / "csv", tmp_path / "out_csv")
    ingest(tmp_path / "pq", tmp_path / "out_pq")
    for name in small.tables:
        assert_frame_equal(
            pl.read_parquet(tmp_path / "out_csv" / f"{name}.parquet"),
            pl.read_parquet(tmp_path / "out_pq" / f"{name}.parquet"),
        )


def test_simulator_config_rejects_a_too_short_window() -> None:
    with pytest.raises(ValueError, match="8 weeks"):
        SimulatorConfig(start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 1, 20))
