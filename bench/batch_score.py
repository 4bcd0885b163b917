"""Benchmark: batch scoring throughput, shipments/s including features (issue: serving).

Scores the demo world's shipments (`data/validated/shipments.parquet`, delivery state dropped, so they are
scored as open bookings) with the models and snapshot in `outputs/models` through `pipelines.scoring.
score_file` (streamed in chunks, Parquet out to a temporary folder), then times the two halves of one
chunk on their own: the feature builders and the model predictions. Run alone: `transitcast bench
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

    import polars as pl

    from features.shipment_features import build_booking_features
    from pipelines.scoring import score_file
    from serving.predictor import BOOKING_TASKS, Predictor

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

    chunk = rows.head(args.chunk_rows)
    snap = predictor.snapshot
    t0 = time.perf_counter()
    features = build_booking_features(
        chunk, history=snap.shipments, lanes=snap.lanes, declarations=snap.declarations, config=snap.booking
    )
    t1 = time.perf_counter()
    for task in BOOKING_TASKS:
        if task in predictor.models:
            predictor.models[task].predict(features)
    t2 = time.perf_counter()
    part = f"demo world, one chunk of {chunk.height:,}"
    record("batch_score", part, "booking features", "shipments_per_s", chunk.height / (t1 - t0),
           "shipments/s", COMMAND)  # fmt: skip
    record("batch_score", part, "4 booking models", "shipments_per_s", chunk.height / (t2 - t1),
           "shipments/s", COMMAND)  # fmt: skip
    write_table()


if __name__ == "__main__":
    main()
