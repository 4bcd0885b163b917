"""Benchmark: weekly demand on UCI Online Retail (country = market), next to baselines and mlforecast.

Reads ``../shared/data/online_retail_uci`` through the Online Retail adapter (`features.sources`: one
virtual warehouse per customer country, units per day x country x SKU, no stock data so no censoring);
writes figures to ``bench/results/demand_retail.jsonl`` and regenerates docs/benchmarks.md. Skipped with a
message when the dataset is absent.

The data cover 2010-12-01..2011-12-09 (54 ISO weeks), too short for 16-week horizons with 6 cutoffs and a
calibration window, so this benchmark forecasts 8 weeks ahead at 6 cutoffs 2 weeks apart; seasonal naive
has no year of history and falls back to the moving average. Same rows for every system.
Run alone: `transitcast bench demand_retail` (or `python bench/demand_retail.py`).
"""

from __future__ import annotations

import os
from pathlib import Path

from _demand_peer import accuracy_run, record_accuracy
from _results import record, write_table

COMMAND = "transitcast bench demand_retail  # python bench/demand_retail.py"
SHARED = Path(
    os.environ.get("TRANSITCAST_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def main() -> None:
    from features.demand_features import DemandFeatureConfig
    from features.sources import adapt_online_retail, read_source
    from models.demand_tasks import DemandTaskConfig

    src = SHARED / "online_retail_uci"
    if not src.is_dir():
        print(f"demand_retail skipped: {src} not found")  # noqa: T201 - benchmark script output
        return
    tables = adapt_online_retail(read_source("online-retail", src)).tables
    config = DemandTaskConfig(
        features=DemandFeatureConfig(horizons=8),
        n_cutoffs=6,
        step_weeks=2,
        origin_step=2,
        calib_origins=4,
        train_weeks=40,
    )
    result = accuracy_run(tables, config, None, recursive_vs_direct=False)
    n_series = tables["warehouse_sales"].select("warehouse_id", "sku_id").n_unique()
    dataset = f"UCI Online Retail ({n_series:,} country x SKU), 6 cutoffs x 8 weeks"
    record_accuracy("demand_retail", dataset, result, COMMAND)
    seconds = result["seconds"]
    record(
        "demand_retail",
        dataset,
        "transitcast",
        "backtest_seconds",
        seconds["transitcast_backtest"],
        "s",
        COMMAND,
    )
    record("demand_retail", dataset, "mlforecast", "fit_seconds", seconds["mlforecast_fit"], "s", COMMAND)
    record("demand_retail", dataset, "all systems", "rows_scored", result["rows"], "rows", COMMAND)
    write_table()


if __name__ == "__main__":
    main()
