"""Stage: orchestration. Prefect flows: thin wiring of the pure functions in `features` (and later models).

`ingest` flow: simulate (or take a raw folder) -> validate -> write -> version with DVC. It runs on Prefect's
temporary local API with nothing to start; set `PREFECT_API_URL` to use a Prefect server instead.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task

from features.ingest import IngestReport, ingest
from features.sources.simulator import SimulatorConfig, simulate, write_world
from pipelines.adapters.dvc import current_data_version, version_data
from pipelines.config import Settings

__all__ = ["ingest_flow", "ingest_task", "simulate_task", "version_task"]

log = logging.getLogger(__name__)


@task(name="simulate")
def simulate_task(config: SimulatorConfig, raw_dir: Path) -> list[str]:
    """Simulate the world and write its raw files."""
    return [str(p) for p in write_world(simulate(config), raw_dir)]


@task(name="validate-and-write")
def ingest_task(raw_dir: Path, out_dir: Path, assume_timezone: str | None = None) -> IngestReport:
    """Validate the raw files against the contract and write the valid tables and the quarantine."""
    return ingest(raw_dir, out_dir, assume_timezone=assume_timezone)


@task(name="version-data")
def version_task(data_dir: Path) -> str | None:
    """Version the data folder with DVC; a failure is logged, not fatal (the data is still written)."""
    try:
        return version_data(data_dir).md5
    except RuntimeError as exc:
        log.warning("data not versioned: %s", exc)
        current = current_data_version()
        return current.md5 if current else None


@flow(name="ingest", log_prints=False)
def ingest_flow(
    simulate_world: bool = True,
    simulator: SimulatorConfig | None = None,
    raw_dir: Path | None = None,
    data_dir: Path | None = None,
    version: bool = True,
    assume_timezone: str | None = None,
) -> dict[str, Any]:
    """Simulate or read raw files, validate them, write the validated tables, version the data.

    Args:
        simulate_world: write a simulated world to the raw folder first (the embedded default).
        simulator: the simulator config (defaults to the demo world).
        raw_dir: raw folder (default `<data_dir>/raw`).
        data_dir: data root tracked by DVC (default from `Settings`).
        version: run `dvc add` + `dvc push` on the data root.
        assume_timezone: IANA zone for timestamps without an offset.

    Returns:
        The ingest report as a dict plus the data version (`data_version`, None when not versioned).
    """
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    settings.ensure_dirs()
    raw = raw_dir or settings.raw_dir
    if simulate_world:
        simulate_task(simulator or SimulatorConfig(), raw)
    report = ingest_task(raw, settings.validated_dir, assume_timezone)
    data_version = version_task(settings.data_dir) if version else None
    return {**asdict(report), "data_version": data_version}
