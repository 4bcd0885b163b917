"""Benchmark: shipment models on the simulated world, next to baselines and the oracle; speed at 1M.

Accuracy (demo world, 100k shipments, seed 7): rolling-origin backtest of every shipment task, every
system side by side in one run (transitcast, its baselines, the simulator's oracle), plus the ratio of
transitcast's pinball loss to the oracle's. Speed (1M shipments): point-in-time feature building and the
final fit of every shipment model, each measured in a fresh process with its peak memory.
Run alone: `transitcast bench shipments_sim` (or `python bench/shipments_sim.py --shipments 1000000`).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

from _results import record, run_child, write_table

ACCURACY = """
import json, resource, time
from pathlib import Path
import polars as pl
from features.ingest import ingest
from features.sources.simulator import SimulatorConfig, simulate, write_world
from models.shipment_tasks import TASKS, ShipmentModelsConfig, backtest_task, evaluate_task, prepare_task_frames
raw, val = Path({tmp!r}) / "raw", Path({tmp!r}) / "val"
write_world(simulate(SimulatorConfig(seed=7)), raw)
ingest(raw, val)
tables = {{n: pl.read_parquet(val / f"{{n}}.parquet") for n in ("shipments", "shipment_events", "customs_declarations", "lanes")}}
oracle = pl.read_parquet(raw / "oracle" / "shipments.parquet")
config = ShipmentModelsConfig()
frames = prepare_task_frames(tables, config)
out = []
for name, frame in frames.items():
    t0 = time.perf_counter()
    metrics = evaluate_task(backtest_task(frame, config, oracle), frame.spec)
    summary = metrics.filter(pl.col("slice") == "overall").group_by("model", "metric").agg(pl.col("value").mean())
    out += [dict(task=name, seconds=time.perf_counter() - t0, **r) for r in summary.to_dicts()]
print(json.dumps(out))
"""

SPEED = """
import json, resource, time
from pathlib import Path
import polars as pl
from features.ingest import ingest
from features.sources.simulator import SimulatorConfig, simulate, write_world
from models.shipment_tasks import ShipmentModelsConfig, fit_task, prepare_task_frames
raw, val = Path({tmp!r}) / "raw", Path({tmp!r}) / "val"
base = SimulatorConfig()
write_world(simulate(base.model_copy(update={{"shipments": base.shipments.model_copy(update={{"n_shipments": {n}}})}})), raw)
ingest(raw, val)
tables = {{n: pl.read_parquet(val / f"{{n}}.parquet") for n in ("shipments", "shipment_events", "customs_declarations", "lanes")}}
config = ShipmentModelsConfig()
result = {{}}
t0 = time.perf_counter()
frames = prepare_task_frames(tables, config)
result["features_all_tasks_s"] = time.perf_counter() - t0
t0 = time.perf_counter()
for name, frame in frames.items():
    t1 = time.perf_counter()
    fit_task(frame, config)
    result[f"fit_{{name}}_s"] = time.perf_counter() - t1
result["fit_all_s"] = time.perf_counter() - t0
result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result["rows"] = {{k: v.frame.height for k, v in frames.items()}}
print(json.dumps(result))
"""

BOOKING_ONLY = """
import json, time
from pathlib import Path
import polars as pl
from features.shipment_features import build_booking_features
val = Path({tmp!r}) / "val"
s, l, d = (pl.read_parquet(val / f"{{n}}.parquet") for n in ("shipments", "lanes", "customs_declarations"))
t0 = time.perf_counter(); build_booking_features(s, lanes=l, declarations=d); t1 = time.perf_counter()
print(json.dumps({{"booking_s": t1 - t0, "rows": s.height}}))
"""


def main(shipments: int) -> None:
    command = f"transitcast bench shipments_sim  # python bench/shipments_sim.py --shipments {shipments}"
    tmp = tempfile.mkdtemp(prefix="tc-bench-ship-")
    try:
        rows = run_child(ACCURACY.format(tmp=tmp))
        dataset = "simulator demo world (100k shipments, seed 7), 3 rolling folds"
        pinball = {(r["task"], r["model"]): r["value"] for r in rows if r["metric"] == "pinball"}
        for r in rows:
            if r["metric"] in ("pinball", "mae", "coverage_q80", "coverage_q95", "brier", "auc", "ece"):
                record(
                    "shipments_sim",
                    f"{dataset}: {r['task']}",
                    r["model"],
                    r["metric"],
                    r["value"],
                    "",
                    command,
                )
        for (task, model), value in pinball.items():
            if model == "transitcast" and (task, "oracle") in pinball:
                ratio = value / pinball[(task, "oracle")]
                record("shipments_sim", f"{dataset}: {task}", "transitcast / oracle", "pinball_ratio", ratio, "x",
                       command)  # fmt: skip
        shutil.rmtree(tmp)
        speed = run_child(SPEED.format(tmp=tmp, n=shipments))
        booking = run_child(BOOKING_ONLY.format(tmp=tmp))
        size = f"simulator {shipments:,} shipments"
        record(
            "shipments_speed",
            size,
            "transitcast",
            "booking_features_seconds",
            booking["booking_s"],
            "s",
            command,
        )
        record("shipments_speed", size, "transitcast", "all_task_frames_seconds", speed["features_all_tasks_s"], "s",
               command)  # fmt: skip
        for key, value in speed.items():
            if key.startswith("fit_"):
                record(
                    "shipments_speed",
                    size,
                    "transitcast",
                    f"{key.removesuffix('_s')}_seconds",
                    value,
                    "s",
                    command,
                )
        record("shipments_speed", size, "transitcast", "peak_memory", speed["peak_mb"], "MB", command)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_table()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shipments", type=int, default=1_000_000)
    main(parser.parse_args().shipments)
