"""Stage: simulate. The whole world: both sides of the simulator, fault injection, and writing raw files.

Reads nothing. `simulate(config)` returns the raw contract tables (shipments, milestone events, customs
declarations, lanes; SKUs, warehouses, daily warehouse sales, replenishments) and the oracle (the true
transit-time and demand distributions, for evaluation only). `write_world` writes them as
`<out>/<table>.parquet|csv` and `<out>/oracle/*.parquet`.

The shipment side lives in `shipments`/`events`/`customs`/`world`, the overseas-warehouse side in `demand`.
Each side draws from its own child random stream, so changing the number of shipments never changes the
demand world, and the same seed always gives the same data.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contract.schema import TABLES
from features.sources.simulator.demand import DemandConfig, simulate_demand
from features.sources.simulator.dirty import inject_errors
from features.sources.simulator.shipments import ShipmentConfig, simulate_shipments

__all__ = ["FileFormat", "SimulatedWorld", "SimulatorConfig", "simulate", "write_world"]

log = logging.getLogger(__name__)

FileFormat = Literal["parquet", "csv"]


class SimulatorConfig(BaseModel):
    """The whole simulated world. Defaults give the demo size (a few seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    start_date: dt.date = dt.date(2023, 1, 2)
    end_date: dt.date = Field(default=dt.date(2025, 11, 30), description="'now': later events are not known")
    shipments: ShipmentConfig = ShipmentConfig()
    demand: DemandConfig = DemandConfig()
    dirty_rate: float = Field(
        default=0.0, ge=0.0, le=0.2, description="share of raw rows broken on purpose (see simulator.dirty)"
    )
    drop_columns: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="optional columns left out of the raw files, per table (a source that lacks them)",
    )

    @model_validator(mode="after")
    def _check_dates(self) -> SimulatorConfig:
        if self.end_date <= self.start_date + dt.timedelta(days=56):
            raise ValueError("end_date must be at least 8 weeks after start_date")
        for table, columns in self.drop_columns.items():
            if table not in TABLES:
                raise ValueError(f"drop_columns: unknown table {table!r}; tables: {', '.join(TABLES)}")
            spec = TABLES[table]
            unknown = sorted(set(columns) - set(spec.schema))
            if unknown:
                raise ValueError(f"drop_columns: {table} has no column(s) {', '.join(unknown)}")
            keys = sorted(set(columns) & set(spec.key))
            if keys:
                raise ValueError(f"drop_columns: {', '.join(keys)} is the key of {table}; keep it")
        return self


@dataclass(frozen=True)
class SimulatedWorld:
    """Raw contract tables and the oracle (evaluation only)."""

    tables: dict[str, pl.DataFrame]
    oracle: dict[str, pl.DataFrame]


def simulate(config: SimulatorConfig) -> SimulatedWorld:
    """Simulate the world described by `config` (deterministic per `config.seed`)."""
    ship_seq, demand_seq, dirty_seq = np.random.SeedSequence(config.seed).spawn(3)
    log.info("simulating warehouse demand ...")
    demand_tables, demand_oracle = simulate_demand(
        config.demand, config.start_date, config.end_date, np.random.default_rng(demand_seq)
    )
    log.info("simulating shipments (%s) ...", f"{config.shipments.n_shipments:,}")
    # One SKU catalogue: parcels carry the HS codes and weights of the SKUs the warehouses stock.
    ship_tables, ship_oracle = simulate_shipments(
        config.shipments,
        config.start_date,
        config.end_date,
        np.random.default_rng(ship_seq),
        skus=demand_tables["skus"],
    )
    tables = {**ship_tables, **demand_tables}
    unknown = set(tables) - set(TABLES)
    if unknown:  # pragma: no cover - guards the simulator modules
        raise RuntimeError(f"simulator produced non-contract tables: {sorted(unknown)}")
    oracle = {**ship_oracle, **demand_oracle}
    tables = {name: df.drop(config.drop_columns.get(name, ())) for name, df in tables.items()}
    if config.dirty_rate > 0:
        tables, oracle["injected_errors"] = inject_errors(
            tables, config.dirty_rate, np.random.default_rng(dirty_seq)
        )
    return SimulatedWorld(tables=tables, oracle=oracle)


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO 8601 with a Z, as an export from a carrier system would write them."""
    return df.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        for c, t in df.schema.items()
        if isinstance(t, pl.Datetime)
    )


def write_world(world: SimulatedWorld, out_dir: Path, file_format: FileFormat = "parquet") -> list[Path]:
    """Write raw tables to `out_dir` and the oracle to `out_dir/oracle`.

    Returns:
        The paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "oracle").mkdir(exist_ok=True)
    written: list[Path] = []
    for name, df in world.tables.items():
        for stale in (out_dir / f"{name}.parquet", out_dir / f"{name}.csv"):
            stale.unlink(missing_ok=True)
        path = out_dir / f"{name}.{file_format}"
        if file_format == "csv":
            _csv_ready(df).write_csv(path)
        else:
            df.write_parquet(path, compression="zstd")
        written.append(path)
    for name, df in world.oracle.items():
        path = out_dir / "oracle" / f"{name}.parquet"
        df.write_parquet(path, compression="zstd")
        written.append(path)
    return written
