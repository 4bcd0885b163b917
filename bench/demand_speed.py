"""Benchmark: demand model fit and forecast time on 50,000 weekly series, next to mlforecast in the same run.

Generates (in memory, seeded) 50,000 SKU x warehouse weekly series over 104 weeks: negative-binomial counts
around a log-normal level with yearly seasonality, a Black Friday / Christmas lift and 2 % stock-out weeks,
written as one `warehouse_sales` row per series and week. Writes figures to
``bench/results/demand_speed.jsonl`` and regenerates docs/benchmarks.md.

Timed, same data, same process, 2 LightGBM threads each:
- transitcast fit = weekly panel + point-in-time features for the training and calibration origins (hash
  sample within `DemandTaskConfig.max_feature_rows`) + Tweedie fit + calibration;
- mlforecast fit = `MLForecast.fit` (its own lag features, one recursive LightGBM, 300 trees);
- forecast = 16 weeks of quantiles for every series (transitcast: `forecast_demand` from the daily table;
  mlforecast: `predict(16)`, point forecasts only).
Run alone: `transitcast bench demand_speed` (or `python bench/demand_speed.py --series 50000`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time

import numpy as np
import polars as pl
from _demand_peer import mlforecast_model
from _results import record, write_table

START = dt.date(2023, 11, 27)  # a Monday; 104 weeks end on 2025-11-23
WEEKS = 104
CATEGORIES = 10
WAREHOUSES = ("WH-US-LAX", "WH-US-NJ", "WH-DE-FRA", "WH-GB-BHX", "WH-CA-YYZ", "WH-AU-SYD")
COUNTRIES = ("US", "US", "DE", "GB", "CA", "AU")


def weekly_world(n_series: int, seed: int = 0) -> dict[str, pl.DataFrame]:
    """`n_series` weekly series as contract tables (one `warehouse_sales` row per series and week)."""
    rng = np.random.default_rng(seed)
    n_sku = -(-n_series // len(WAREHOUSES))
    sku = np.repeat(np.arange(n_sku), len(WAREHOUSES))[:n_series]
    wh = np.tile(np.arange(len(WAREHOUSES)), n_sku)[:n_series]
    level = rng.lognormal(0.0, 1.2, n_series)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    weeks = np.arange(WEEKS)
    days = [START + dt.timedelta(weeks=int(w)) for w in weeks]
    dates = np.array(days, dtype="datetime64[D]")
    peak = np.array(
        [1.8 if (d.month == 11 and d.day >= 20) or (d.month == 12 and d.day <= 20) else 1.0 for d in days]
    )
    mean = (
        level[:, None] * (1 + 0.4 * np.sin(2 * np.pi * weeks[None, :] / 52 + phase[:, None])) * peak[None, :]
    )
    disp = 2.0
    units = rng.negative_binomial(disp, disp / (disp + mean))
    stockout = rng.uniform(size=units.shape) < 0.02
    units = np.where(stockout, rng.binomial(units, 0.5), units)
    sales = pl.DataFrame(
        {
            "date": np.tile(dates, n_series),
            "warehouse_id": np.repeat(np.array(WAREHOUSES)[wh], WEEKS),
            "sku_id": np.repeat(np.char.add("SKU", np.char.zfill(sku.astype(str), 6)), WEEKS),
            "units_sold": units.reshape(-1).astype(np.int64),
            "is_stockout": stockout.reshape(-1),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    skus = pl.DataFrame(
        {
            "sku_id": np.char.add("SKU", np.char.zfill(np.arange(n_sku).astype(str), 6)),
            "category": np.char.add("cat", (np.arange(n_sku) % CATEGORIES).astype(str)),
        }
    )
    warehouses = pl.DataFrame({"warehouse_id": list(WAREHOUSES), "country": list(COUNTRIES)})
    return {"warehouse_sales": sales, "skus": skus, "warehouses": warehouses}


def main(n_series: int) -> None:
    from features.demand_panel import SERIES
    from models.demand import forecast_demand
    from models.demand_tasks import DemandTaskConfig, fit_demand_model, prepare_demand

    command = f"transitcast bench demand_speed  # python bench/demand_speed.py --series {n_series}"
    dataset = f"{n_series:,} weekly series x {WEEKS} weeks (synthetic)"
    tables = weekly_world(n_series)
    config = DemandTaskConfig(n_cutoffs=1)
    t0 = time.perf_counter()
    panel, feats = prepare_demand(tables, config)
    t_feat = time.perf_counter() - t0
    cutoff = panel["week_start"].max() + dt.timedelta(weeks=1)  # the week after the last complete week
    t0 = time.perf_counter()
    model = fit_demand_model(feats, cutoff, config)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    forecast = forecast_demand(tables, model, cutoff)
    t_fc = time.perf_counter() - t0

    frame = panel.select(
        pl.concat_str(SERIES, separator="|").alias("unique_id"),
        pl.col("week_start").cast(pl.Datetime("ns")).alias("ds"),
        pl.coalesce("demand_est", "units").cast(pl.Float64).alias("y"),
    ).to_pandas()
    mlf = mlforecast_model()
    t0 = time.perf_counter()
    mlf.fit(frame)
    t_mlf_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    mlf.predict(16)
    t_mlf_pred = time.perf_counter() - t0

    rows = model.training_["n_rows"]
    record("demand_speed", dataset, "transitcast", "features_seconds", t_feat, "s", command)
    record("demand_speed", dataset, "transitcast", "fit_seconds", t_fit, "s", command)
    record("demand_speed", dataset, "transitcast", "features_plus_fit_seconds", t_feat + t_fit, "s", command)
    record("demand_speed", dataset, "transitcast", "training_rows", rows, "rows", command)
    record("demand_speed", dataset, "transitcast", "forecast_all_series_seconds", t_fc, "s", command)
    record("demand_speed", dataset, "transitcast", "forecast_rows", forecast.height, "rows", command)
    record("demand_speed", dataset, "mlforecast", "fit_seconds", t_mlf_fit, "s", command)
    record("demand_speed", dataset, "mlforecast", "training_rows", len(frame), "rows", command)
    record("demand_speed", dataset, "mlforecast", "forecast_all_series_seconds", t_mlf_pred, "s", command)
    record("demand_speed", dataset, "transitcast / mlforecast", "fit_time_ratio", (t_feat + t_fit) / t_mlf_fit, "x",
           command)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record("demand_speed", dataset, "both (one process)", "peak_memory", peak, "MB", command)
    write_table()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=50_000)
    main(parser.parse_args().series)
