"""Benchmark: batch scoring throughput, shipments/s including features (issue: serving).

Scores the demo world's shipments (`data/validated/shipments.parquet`, delivery state dropped, so they are
scored as open bookings) with the models and snapshot in `outputs/models` through `pipelines.flows.score.
score_file` (streamed in chunks, Parquet out to a temporary folder), then times the two halves of one
chunk on their own: the booking features (as-of joins on the Predictor's history state) and the model
predictions (one matrix per feature set, floor on the rows that need it), beside the ceiling: LightGBM's own
`Booster.predict` of every booster once over the same matrix. Run alone: `transitcast bench
batch_score` (or `python bench/batch_score.py --rows 100000 --chunk-rows 50000`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _results import ROOT, record, write_table

COMMAND = "transitcast bench batch_score"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="shipments to score (0: all)")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads")
    args = parser.parse_args()

    import numpy as np
    import polars as pl

    from pipelines.flows.score import score_file
    from serving.online.predictor import BOOKING_TASKS, Predictor, coerce_shipments

    models = ROOT / "outputs" / "models"
    source = ROOT / "data" / "validated" / "shipments.parquet"
    if not (models / "snapshot" / "snapshot.json").exists() or not source.exists():
        raise SystemExit("needs `make demo` (models + snapshot in outputs/models, data/validated)")
    predictor = Predictor.from_dir(models, num_threads=args.threads)
    rows = pl.read_parquet(source).drop("delivered_at", "status")
    if args.rows:
        rows = rows.tail(args.rows)
    dataset = f"demo world, {rows.height:,} shipments"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.parquet"
        rows.write_parquet(path)
        summary = score_file(predictor, path, Path(tmp) / "out.parquet", chunk_rows=args.chunk_rows)
    record("batch_score", dataset, "transitcast score", "shipments_per_s", summary.rows_per_second,
           "shipments/s", COMMAND)  # fmt: skip
    record("batch_score", dataset, "transitcast score", "wall_s", summary.seconds, "s", COMMAND)

    chunk = coerce_shipments(rows.head(args.chunk_rows))
    part = f"demo world, one chunk of {chunk.height:,}"
    t0 = time.perf_counter()
    features = predictor.booking_features(chunk)
    t1 = time.perf_counter()
    matrices: dict[str, np.ndarray] = {}
    for task in BOOKING_TASKS:
        if task in predictor.models:
            model = predictor.models[task]
            if model.matrix_key not in matrices:
                matrices[model.matrix_key] = model.matrix(features)
            model.predict(features, matrix=matrices[model.matrix_key], num_threads=args.threads)
    t2 = time.perf_counter()
    # The ceiling: LightGBM's own Booster.predict, every booster once over the same matrices (no floor,
    # no calibration, no frame conversion).
    boosters = [
        (b, matrices[predictor.models[t].matrix_key])
        for t in BOOKING_TASKS
        if t in predictor.models
        for b in predictor.models[t].boosters.values()
    ]
    t3 = time.perf_counter()
    for booster, x in boosters:
        booster.predict(x, num_threads=args.threads)
    t4 = time.perf_counter()
    floors = ("dest_holidays_in_window", "peak_days_in_window")
    floored = features.select(pl.any_horizontal(pl.col(c).fill_null(1) != 0 for c in floors).mean()).item()
    record("batch_score", part, "booking features", "shipments_per_s", chunk.height / (t1 - t0),
           "shipments/s", COMMAND)  # fmt: skip
    models_rate = chunk.height / (t2 - t1)
    ceiling = chunk.height / (t4 - t3)
    record("batch_score", part, "4 booking models", "shipments_per_s", models_rate, "shipments/s", COMMAND)
    record("batch_score", part, f"LightGBM Booster.predict, {len(boosters)} boosters once (ceiling)",
           "shipments_per_s", ceiling, "shipments/s", COMMAND)  # fmt: skip
    record("batch_score", part, "4 booking models", "ratio_to_ceiling", models_rate / ceiling, "x", COMMAND)
    record("batch_score", part, "rows re-scored by the floor", "share", floored, "share", COMMAND)
    log_rate = summary.rows_per_second
    record("batch_score", dataset, "transitcast score", "ratio_to_ceiling", log_rate / ceiling, "x", COMMAND)
    write_table()


if __name__ == "__main__":
    main()
