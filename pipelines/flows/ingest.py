"""Stage: orchestration. The `ingest` Prefect flow: thin wiring of the pure functions in `features`.

Simulate (or take a raw folder) -> validate -> write -> version with DVC. Reads `<data>/raw/` (or the
folder given), writes `<data>/validated/` (tables, quarantine, ingest report; paths from the catalog) and
`<data>.dvc`. It runs on Prefect's temporary local API with nothing to start; set `PREFECT_API_URL` to use
a Prefect server instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task

from features.ingest import IngestReport, ingest
from features.sources.simulator import SimulatorConfig, simulate, write_world
from pipelines.adapters.dvc import current_data_version, version_data
from pipelines.config import Settings

__all__ = ["IngestOutcome", "ingest_flow", "ingest_task", "simulate_task", "version_task"]

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
def version_task(data_dir: Path, dvc_file: Path) -> str | None:
    """Version the data folder with DVC; a failure is logged, not fatal (the data is still written)."""
    try:
        return version_data(data_dir).md5
    except RuntimeError as exc:
        log.warning("data not versioned: %s", exc)
        current = current_data_version(dvc_file)
        return current.md5 if current else None


@dataclass(frozen=True)
class IngestOutcome:
    """What the `ingest` flow did: the ingest report and the data version (None when not versioned)."""

    report: IngestReport
    data_version: str | None


@flow(name="ingest", log_prints=False)
def ingest_flow(
    simulate_world: bool = True,
    simulator: SimulatorConfig | None = None,
    raw_dir: Path | None = None,
    settings: Settings | None = None,
    version: bool = True,
    assume_timezone: str | None = None,
) -> IngestOutcome:
    """Simulate or read raw files, validate them, write the validated tables, version the data.

    Args:
        simulate_world: write a simulated world to the raw folder first (the embedded default).
        simulator: the simulator config (defaults to the demo world).
        raw_dir: raw folder (default: the catalog's `<data>/raw`).
        settings: roots and tracking (default: `Settings()` from the environment).
        version: run `dvc add` + `dvc push` on the data root.
        assume_timezone: IANA zone for timestamps without an offset.

    Returns:
        The ingest report and the data version.
    """
    catalog = (settings or Settings()).catalog
    catalog.ensure_dirs()
    raw = raw_dir or catalog.data.raw
    if simulate_world:
        simulate_task(simulator or SimulatorConfig(), raw)
    report = ingest_task(raw, catalog.data.validated, assume_timezone)
    data_version = version_task(catalog.data.root, catalog.data.dvc_file) if version else None
    return IngestOutcome(report=report, data_version=data_version)
