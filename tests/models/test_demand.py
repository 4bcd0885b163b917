"""Model tests for models.demand / models.demand_tasks on a small seeded simulated world."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.demand_features import build_demand_features
from features.demand_panel import build_weekly_panel
from features.sources.simulator.demand import DemandConfig, simulate_demand
from models.demand import FORECAST_SCHEMA, DemandModel, forecast_demand
from models.demand_paths import sample_paths
from models.demand_tasks import (
    DemandTaskConfig,
    baseline_predictions,
    demand_backtest,
    demand_metrics,
    fit_demand_model,
    model_columns,
    needed_origins,
    prepare_demand,
)
from models.lgbm import LGBMConfig

START, END = dt.date(2023, 1, 2), dt.date(2025, 3, 30)
CUTOFF = dt.date(2024, 10, 14)  # Black Friday 2024-11-29 falls in horizon 7
CONFIG = DemandTaskConfig(
    lgbm=LGBMConfig(
        num_boost_round=120, early_stopping_rounds=20, num_threads=1, params={"learning_rate": 0.1}
    ),
    train_weeks=60,
    calib_origins=6,
    origin_step=2,
)
Q = ["demand_q50", "demand_q80", "demand_q90", "demand_q95"]


@pytest.fixture(scope="module")
def world() -> dict[str, pl.DataFrame]:
    tables, oracle = simulate_demand(DemandConfig(n_skus=12), START, END, np.random.default_rng(3))
    return {**tables, "oracle": oracle["demand_weekly"]}


@pytest.fixture(scope="module")
def prepared(world: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    panel = build_weekly_panel(world["warehouse_sales"], world["skus"])
    return panel, build_demand_features(panel, world["warehouses"], config=CONFIG.features)


@pytest.fixture(scope="module")
def model(prepared: tuple[pl.DataFrame, pl.DataFrame]) -> DemandModel:
    return fit_demand_model(prepared[1], CUTOFF, CONFIG)


@pytest.fixture(scope="module")
def forecast(world: dict[str, pl.DataFrame], model: DemandModel) -> pl.DataFrame:
    return forecast_demand(world, model, CUTOFF, model_version="m1", data_version="d1")


def test_demand_quantiles_never_cross(
    prepared: tuple[pl.DataFrame, pl.DataFrame], model: DemandModel
) -> None:
    preds = model.predict(prepared[1].filter(pl.col("origin_week") >= CUTOFF))
    q = preds.select(Q).to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    assert (q >= 0).all() and np.allclose(q, np.round(q))  # integer quantiles of integer demand
    assert (preds["demand_mean"] >= 0).all()


def test_demand_model_learns_no_target_after_cutoff(model: DemandModel) -> None:
    assert model.training_["n_rows"] > 0
    assert model.levels and model.dispersion and model.path_rho is not None
    nominal = [0.5, 0.8, 0.9, 0.95]
    assert all(abs(a - b) < 0.3 for a, b in zip(model.levels["*"], nominal, strict=True))


def test_refit_keeps_the_calibrated_distribution_and_trains_on_more_weeks(
    prepared: tuple[pl.DataFrame, pl.DataFrame], model: DemandModel
) -> None:
    refitted = fit_demand_model(prepared[1], CUTOFF, CONFIG.model_copy(update={"refit": True}))
    assert refitted._state() == model._state()  # distribution, levels, dispersion, paths carried over
    assert refitted.training_["n_rows"] > model.training_["n_rows"]  # calibration weeks join the fit


def test_demand_save_load_parity(
    tmp_path: Path, prepared: tuple[pl.DataFrame, pl.DataFrame], model: DemandModel
) -> None:
    rows = prepared[1].filter(pl.col("origin_week") == CUTOFF)
    assert rows.height > 0
    loaded = DemandModel.load(model.save(tmp_path / "demand"))
    assert loaded.predict(rows).equals(model.predict(rows))
    assert loaded.feature_config == model.feature_config
    assert loaded.path_rho == model.path_rho


def test_forecast_follows_the_contract(forecast: pl.DataFrame) -> None:
    assert forecast.schema == pl.Schema(FORECAST_SCHEMA)
    assert forecast["forecast_week"].unique().to_list() == ["2024-W42"]
    per_series = forecast.group_by("warehouse_id", "sku_id").agg(pl.col("horizon").sort())
    assert all(h.to_list() == list(range(1, 17)) for h in per_series["horizon"])
    first = forecast.filter(pl.col("horizon") == 1)["week_start"].unique().to_list()
    assert first == [CUTOFF]
    assert forecast["model_version"].unique().to_list() == ["m1"]
    paths = sample_paths(forecast, n_paths=50)
    assert paths.height == forecast.height * 50


def test_forecast_rejects_a_cutoff_that_is_not_a_monday(
    world: dict[str, pl.DataFrame], model: DemandModel
) -> None:
    with pytest.raises(ValueError, match="Monday"):
        forecast_demand(world, model, CUTOFF + dt.timedelta(days=1))


def test_forecast_ignores_sales_on_or_after_the_cutoff(
    world: dict[str, pl.DataFrame], model: DemandModel, forecast: pl.DataFrame
) -> None:
    future = world["warehouse_sales"].filter(pl.col("date") >= CUTOFF).with_columns(pl.col("units_sold") * 10)
    changed = {
        **world,
        "warehouse_sales": pl.concat([world["warehouse_sales"].filter(pl.col("date") < CUTOFF), future]),
    }
    assert forecast_demand(changed, model, CUTOFF, model_version="m1", data_version="d1").equals(forecast)


def test_peak_week_forecast_is_higher_than_an_ordinary_week(forecast: pl.DataFrame) -> None:
    by_week = forecast.group_by("horizon").agg(pl.col("demand_mean").sum()).sort("horizon")
    peak = by_week.filter(pl.col("horizon") == 7)["demand_mean"][0]  # week of Black Friday 2024
    ordinary = by_week.filter(pl.col("horizon") == 2)["demand_mean"][0]  # late October
    assert peak > 1.2 * ordinary


def test_stockout_weeks_do_not_pull_the_forecast_down(
    world: dict[str, pl.DataFrame], model: DemandModel, forecast: pl.DataFrame
) -> None:
    top = (
        forecast.filter(pl.col("horizon") <= 4)
        .group_by("warehouse_id", "sku_id")
        .agg(pl.col("demand_mean").sum())
    )
    wh, sku = top.sort("demand_mean", descending=True).row(0)[:2]
    window = pl.col("date").is_between(CUTOFF - dt.timedelta(days=56), CUTOFF - dt.timedelta(days=1))
    target = (pl.col("warehouse_id") == wh) & (pl.col("sku_id") == sku) & window
    sales = world["warehouse_sales"]

    def mean_next_4(flagged: bool) -> float:
        changed = sales.with_columns(
            pl.when(target).then(0).otherwise(pl.col("units_sold")).alias("units_sold"),
            pl.when(target).then(flagged).otherwise(pl.col("is_stockout")).alias("is_stockout"),
        )
        out = forecast_demand({**world, "warehouse_sales": changed}, model, CUTOFF)
        sel = out.filter(
            (pl.col("warehouse_id") == wh) & (pl.col("sku_id") == sku) & (pl.col("horizon") <= 4)
        )
        return float(sel["demand_mean"].sum())

    original = float(top.sort("demand_mean", descending=True)["demand_mean"][0])
    stocked_out, true_zeros = mean_next_4(True), mean_next_4(False)
    assert stocked_out > 1.05 * true_zeros
    assert stocked_out >= 0.85 * original


def test_baselines_have_monotone_quantiles(prepared: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    panel, feats = prepared
    rows = baseline_predictions(panel, feats.filter(pl.col("origin_week") == CUTOFF))
    for m in ("seasonal_naive", "moving_average"):
        q = rows.select([f"{m}_q{p}" for p in (50, 80, 90, 95)]).to_numpy()
        assert (np.diff(q, axis=1) >= 0).all(), m


@pytest.mark.slow
def test_demand_backtest_beats_moving_average_and_is_calibrated(
    world: dict[str, pl.DataFrame], prepared: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    preds = demand_backtest(world, CONFIG, oracle=world["oracle"], prepared=prepared)
    assert preds["cutoff"].n_unique() == 6
    metrics = demand_metrics(preds, model_columns(preds))
    mean = metrics.group_by("model", "metric").agg(pl.col("value").mean())

    def value(model: str, metric: str) -> float:
        return float(mean.filter((pl.col("model") == model) & (pl.col("metric") == metric))["value"][0])

    assert {"rmsse", "wrmsse"} <= set(metrics["metric"])
    assert value("lgbm", "scaled_pinball") < value("moving_average", "scaled_pinball")
    assert value("oracle", "scaled_pinball") < value("lgbm", "scaled_pinball")
    assert abs(value("lgbm", "coverage_q90") - 0.9) < 0.06


def test_prepare_demand_builds_only_the_origins_the_folds_read(world: dict[str, pl.DataFrame]) -> None:
    panel, feats = prepare_demand(world, CONFIG)
    built = set(feats["origin_week"].unique().to_list())
    last = panel["week_start"].max()
    final = last + dt.timedelta(weeks=1)  # the cutoff of the final fit: no panel row yet
    assert set(needed_origins(final, CONFIG)) - {final} <= built
    assert len(built) < panel["week_start"].n_unique()


def test_empirical_ratio_quantiles_are_calibrated_on_lumpy_demand() -> None:
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mu = rng.uniform(5.0, 50.0, n)  # zero-or-lump weeks: P(lump) = 0.4, lump ~ 2.5 mu
        y = np.where(rng.uniform(size=n) < 0.4, rng.poisson(2.5 * mu), 0).astype(np.float64)
        return mu, y, np.full(n, "fast"), np.zeros(n, dtype=np.int64)

    ratios, edges = DemandModel._ratio_tables(*draw(3000))
    assert {"*", "fast", "fast|0", "fast|0|0", "fast|0|2"} <= set(ratios)
    mu, y, classes, buckets = draw(4000)
    q = DemandModel._empirical_q(mu, classes, buckets, ratios, edges)
    assert np.allclose(q, np.round(q)) and (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()
    cover = (y[:, None] <= q).mean(axis=0)
    assert np.abs(cover[1:] - np.array([0.8, 0.9, 0.95])).max() < 0.03, cover
    assert (q[:, 0] == 0).all()  # the median of a mostly-zero week is 0 (P(0) = 0.6: discreteness)
    assert (q[:, 1] > 0.5 * mu).all()  # P80 is inside the lump, not a mid-sized value


def test_demand_distribution_is_chosen_per_class_and_round_trips(
    tmp_path: Path, prepared: tuple[pl.DataFrame, pl.DataFrame], model: DemandModel
) -> None:
    assert model.ratios and set(model.distribution.values()) <= {"nb", "empirical"}
    assert set(model.distribution) <= {"new", "slow", "medium", "fast"}
    loaded = DemandModel.load(model.save(tmp_path / "demand"))
    assert loaded.distribution == model.distribution and loaded.ratios == model.ratios
    rows = prepared[1].filter(pl.col("origin_week") == CUTOFF)
    nb = DemandModel.load(tmp_path / "demand")
    nb.distribution = dict.fromkeys(("new", "slow", "medium", "fast"), "nb")
    emp = DemandModel.load(tmp_path / "demand")
    emp.distribution = dict.fromkeys(("new", "slow", "medium", "fast"), "empirical")
    got, q_nb, q_emp = (m.predict(rows).select(Q).to_numpy() for m in (model, nb, emp))
    classes = rows["volume_class"].cast(pl.String).fill_null("new").to_numpy()
    for c, dist in model.distribution.items():
        mask = classes == c
        assert np.array_equal(got[mask], (q_emp if dist == "empirical" else q_nb)[mask]), c
    assert (np.diff(q_emp, axis=1) >= 0).all() and np.allclose(q_emp, np.round(q_emp))


def test_sample_paths_match_the_empirical_marginals(
    tmp_path: Path, world: dict[str, pl.DataFrame], model: DemandModel
) -> None:
    emp = DemandModel.load(model.save(tmp_path / "demand"))
    emp.distribution = dict.fromkeys(("new", "slow", "medium", "fast"), "empirical")
    fc = forecast_demand(world, emp, CUTOFF)
    paths = sample_paths(fc, n_paths=400, seed=2, rho=emp.path_rho)
    joined = paths.join(fc, on=["warehouse_id", "sku_id", "horizon"])
    for tau, col in zip((0.5, 0.8, 0.9, 0.95), Q, strict=True):
        at_most = float((joined["units"] <= joined[col]).mean())
        below = float((joined["units"] < joined[col]).mean())
        assert at_most >= tau - 0.01 and below <= tau + 0.01, (col, at_most, below)
