"""Benchmark: simulator and ingest throughput and peak memory at 1M shipments (issue: foundation).

Each step runs in a fresh process so its peak RSS is its own. Ingest is reported next to a plain
`polars.read_parquet` of the same raw files (the floor: reading without validating), as a ratio.
Run alone: `transitcast bench simulator` (or `python bench/simulator.py --shipments 200000`).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

from _results import record, run_child, write_table

CHILD_PRELUDE = """
import json, resource, time
from pathlib import Path
def peak_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

SIMULATE = (
    CHILD_PRELUDE
    + """
from features.sources.simulator import SimulatorConfig, simulate, write_world
base = SimulatorConfig()
cfg = base.model_copy(update={{"shipments": base.shipments.model_copy(update={{"n_shipments": {n}}}),
                              "dirty_rate": {dirty}}})
t0 = time.perf_counter(); world = simulate(cfg); t1 = time.perf_counter()
write_world(world, Path({raw!r})); t2 = time.perf_counter()
rows = {{k: v.height for k, v in world.tables.items()}}
print(json.dumps({{"simulate_s": t1 - t0, "write_s": t2 - t1, "peak_mb": peak_mb(),
                  "shipments": rows["shipments"], "rows": sum(rows.values())}}))
"""
)

INGEST = (
    CHILD_PRELUDE
    + """
from features.ingest import ingest
t0 = time.perf_counter(); report = ingest(Path({raw!r}), Path({out!r})); t1 = time.perf_counter()
rows = sum(c.rows_in for c in report.tables.values())
print(json.dumps({{"ingest_s": t1 - t0, "rows": rows, "peak_mb": peak_mb()}}))
"""
)

READ_ONLY = (
    CHILD_PRELUDE
    + """
import polars as pl
t0 = time.perf_counter()
rows = sum(pl.read_parquet(p).height for p in sorted(Path({raw!r}).glob("*.parquet")))
t1 = time.perf_counter()
print(json.dumps({{"read_s": t1 - t0, "rows": rows, "peak_mb": peak_mb()}}))
"""
)


def _ingest_side_by_side(raw: str, out: str, dataset: str, command: str) -> None:
    ing = run_child(INGEST.format(raw=raw, out=out))
    base = run_child(READ_ONLY.format(raw=raw))
    record("ingest", dataset, "transitcast", "ingest_seconds", ing["ingest_s"], "s", command)
    record(
        "ingest", dataset, "transitcast", "rows_per_second", ing["rows"] / ing["ingest_s"], "rows/s", command
    )
    record("ingest", dataset, "transitcast", "peak_memory", ing["peak_mb"], "MB", command)
    peer = "polars.read_parquet (no validation)"
    record("ingest", dataset, peer, "read_seconds", base["read_s"], "s", command)
    record("ingest", dataset, peer, "peak_memory", base["peak_mb"], "MB", command)
    ratio = ing["ingest_s"] / base["read_s"]
    record("ingest", dataset, "transitcast / read_parquet", "time_ratio", ratio, "x", command)


def main(shipments: int) -> None:
    command = f"transitcast bench simulator  # python bench/simulator.py --shipments {shipments}"
    tmp = tempfile.mkdtemp(prefix="tc-bench-")
    try:
        dataset = f"simulator {shipments:,} shipments"
        sim = run_child(SIMULATE.format(n=shipments, raw=f"{tmp}/raw", dirty=0.0))
        record("simulator", dataset, "transitcast", "simulate_seconds", sim["simulate_s"], "s", command)
        record("simulator", dataset, "transitcast", "write_parquet_seconds", sim["write_s"], "s", command)
        rate = sim["shipments"] / sim["simulate_s"]
        record("simulator", dataset, "transitcast", "shipments_per_second", rate, "rows/s", command)
        record("simulator", dataset, "transitcast", "peak_memory", sim["peak_mb"], "MB", command)
        record("simulator", dataset, "transitcast", "rows_all_tables", sim["rows"], "rows", command)
        _ingest_side_by_side(f"{tmp}/raw", f"{tmp}/validated", f"{dataset}, typed Parquet", command)
        shutil.rmtree(f"{tmp}/raw")
        run_child(SIMULATE.format(n=shipments, raw=f"{tmp}/dirty", dirty=0.001))
        dataset_dirty = f"{dataset}, text columns + 0.1% faults"
        _ingest_side_by_side(f"{tmp}/dirty", f"{tmp}/validated_dirty", dataset_dirty, command)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_table()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shipments", type=int, default=1_000_000)
    main(parser.parse_args().shipments)
