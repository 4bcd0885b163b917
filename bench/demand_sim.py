"""Benchmark: weekly demand forecasts on the simulated demo world, next to baselines, mlforecast and the oracle.

Reads the demo world (``data/validated`` and ``data/raw/oracle/demand_weekly.parquet``, 6 warehouses x 200
SKUs, 2023-01-02..2025-11-30; simulated into a temp folder when ``data/`` is absent); writes figures to
``bench/results/demand_sim.jsonl`` and regenerates docs/benchmarks.md.

One run, the same rows for every system: the rolling-origin backtest of transitcast's demand model (6
cutoffs, 4 weeks apart, 16 weeks ahead), seasonal naive, moving average, mlforecast with LightGBM and the
same lags (conformal intervals), and the simulator's oracle (true demand distribution). Also the measured
choice direct vs recursive (mlforecast both ways, MASE of the mean).
Run alone: `transitcast bench demand_sim` (or `python bench/demand_sim.py`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from _demand_peer import accuracy_run, record_accuracy
from _results import record, write_table

from pipelines.flows.demand import DEMAND_TABLES

COMMAND = "transitcast bench demand_sim  # python bench/demand_sim.py"


def _world() -> tuple[dict[str, pl.DataFrame], pl.DataFrame, str]:
    root = Path(__file__).resolve().parents[1] / "data"
    if (root / "validated" / "warehouse_sales.parquet").exists():
        tables = {n: pl.read_parquet(root / "validated" / f"{n}.parquet") for n in DEMAND_TABLES}
        oracle = pl.read_parquet(root / "raw" / "oracle" / "demand_weekly.parquet")
        return tables, oracle, "simulator demo world (1,200 SKU x warehouse)"
    import numpy as np

    from features.sources.simulator.demand import DemandConfig, simulate_demand

    tables, truth = simulate_demand(
        DemandConfig(), dt.date(2023, 1, 2), dt.date(2025, 11, 30), np.random.default_rng(7)
    )
    return tables, truth["demand_weekly"], "simulator demand world (seed 7)"


def main() -> None:
    from models.demand_tasks import DemandTaskConfig

    tables, oracle, name = _world()
    config = DemandTaskConfig()
    result = accuracy_run(tables, config, oracle)
    dataset = f"{name}, {config.n_cutoffs} cutoffs x 16 weeks"
    sp = record_accuracy("demand_sim", dataset, result, COMMAND)
    record("demand_sim", dataset, "transitcast / oracle", "scaled_pinball_ratio", sp["lgbm"] / sp["oracle"], "x",
           COMMAND)  # fmt: skip
    for r in result.get("direct_vs_recursive", pl.DataFrame()).iter_rows(named=True):
        record("demand_sim", f"{dataset}: direct vs recursive", r["model"], "mase", r["value"], "", COMMAND)
    record("demand_sim", dataset, "transitcast", "backtest_seconds", result["seconds"]["transitcast_backtest"], "s",
           COMMAND)  # fmt: skip
    record(
        "demand_sim", dataset, "mlforecast", "fit_seconds", result["seconds"]["mlforecast_fit"], "s", COMMAND
    )
    record("demand_sim", dataset, "all systems", "rows_scored", result["rows"], "rows", COMMAND)
    write_table()


if __name__ == "__main__":
    main()
