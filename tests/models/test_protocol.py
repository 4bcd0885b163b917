"""One protocol for backtest folds and the shipped model: censoring, row selection, equivalence."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.metrics import coverage
from models.protocol import ProtocolColumns, censor_at, lower_col, split_at_cutoff, tables_known_at
from models.shipment_tasks import (
    ShipmentModelsConfig,
    TaskFrame,
    fit_cutoff,
    fit_task,
    prepare_task_frames,
    task_cutoffs,
    task_windows,
)
from models.windows import Windows

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
COLS = ProtocolColumns("created_at", "delivered_at", "transit_days", "is_open", censored_bound=True)


def _day(d: float) -> dt.datetime:
    return T0 + dt.timedelta(days=d)


def test_censor_at_keeps_known_labels_and_bounds_open_ones() -> None:
    frame = pl.DataFrame(
        {
            "created_at": [_day(0), _day(0), _day(1), _day(2)],
            "delivered_at": [_day(3), _day(12), None, None],
            "transit_days": [3.0, 12.0, None, None],
            "is_open": [False, False, True, False],  # the last one was lost: never labelled
        }
    )
    out = censor_at(frame, COLS, _day(10))
    assert out["transit_days"].to_list() == [3.0, None, None, None]
    assert out[lower_col("transit_days")].to_list() == [None, 10.0, 9.0, None]
    labels = ProtocolColumns("created_at", "delivered_at", "transit_days", "is_open")  # no bound kept
    assert lower_col("transit_days") not in censor_at(frame, labels, _day(10)).columns


def test_split_at_cutoff_follows_the_timeline_and_skips_young_rows() -> None:
    n = 200
    frame = pl.DataFrame(
        {
            "created_at": [_day(i) for i in range(n)],
            "delivered_at": [_day(i + 5) for i in range(n)],
            "transit_days": [5.0] * n,
            "is_open": [False] * n,
        }
    )
    windows = Windows(
        history_days=100, calibration_days=10, early_stopping_days=20, maturity_days=7, fold_days=14,
        folds=1, as_of=_day(n),
    )  # fmt: skip
    rows = split_at_cutoff(frame, COLS, _day(150), windows, max_train_rows=10_000)

    def day(part: pl.DataFrame) -> tuple[int, int]:
        return (part["created_at"].min() - T0).days, (part["created_at"].max() - T0).days  # type: ignore[operator]

    assert day(rows.calibration) == (133, 149)  # durations: [C-M-K, C), each row with its age at C
    assert rows.calibration["age_days"].min() == 1.0 and rows.calibration["transit_days"].null_count() == 5
    assert day(rows.stopping) == (113, 132)  # [C-M-K-S, C-M-K)
    assert day(rows.train) == (43, 112)  # [C-M-H, C-M-K-S)
    assert rows.counts()["calibration_censored"] == 5  # delivered on or after C: still open at C
    capped = split_at_cutoff(frame, COLS, _day(150), windows, max_train_rows=10)
    assert day(capped.train) == (103, 112)  # the most recent rows are kept


@pytest.fixture(scope="module")
def eta_world(
    sim_world: dict[str, pl.DataFrame], fast_shipment_config: ShipmentModelsConfig
) -> tuple[ShipmentModelsConfig, TaskFrame, Windows, dt.datetime]:
    config = fast_shipment_config
    frame = prepare_task_frames(sim_world, config, ("eta",))["eta"]
    windows = task_windows(frame, config)
    return config, frame, windows, task_cutoffs(windows)[-1]


def test_shipped_model_is_fitted_and_calibrated_like_the_backtest_fold_with_its_cutoff(
    sim_world: dict[str, pl.DataFrame],
    eta_world: tuple[ShipmentModelsConfig, TaskFrame, Windows, dt.datetime],
) -> None:
    config, full, windows, cutoff = eta_world
    fold = fit_cutoff(full, cutoff, windows, config, with_baselines=False)
    # `train` run at that cutoff: only what was known then, fitted by `fit_task`
    then = prepare_task_frames(tables_known_at(sim_world, cutoff), config, ("eta",), as_of=cutoff)["eta"]
    shipped = fit_task(then, config, dataclasses.replace(windows, as_of=cutoff))
    assert fold.model is not None and shipped.model is not None
    assert fold.model.conformal == shipped.model.conformal  # type: ignore[attr-defined]
    assert fold.rows.counts() == shipped.rows.counts()
    # realised coverage on the following weeks (labels known at the data's end): shipped vs backtest fold
    end = cutoff + dt.timedelta(days=windows.fold_days)
    test = censor_at(full.frame, full.spec.columns, full.as_of).filter(
        (pl.col("created_at") >= cutoff) & (pl.col("created_at") < end)
    )
    names = {f"eta_days_q{q}": f"{{}}_q{q}" for q in (50, 80, 95)}
    scored = test.hstack(fold.model.predict(test).rename({k: v.format("backtest") for k, v in names.items()}))
    scored = scored.hstack(
        shipped.model.predict(test).rename({k: v.format("shipped") for k, v in names.items()})
    )
    cov = coverage(scored, ["backtest", "shipped"], "transit_days", None, lower_col=lower_col("transit_days"))
    for q in ("coverage_q80", "coverage_q95"):
        b, a = (
            cov.filter((pl.col("metric") == q) & (pl.col("model") == m))["value"].item()
            for m in ("backtest", "shipped")
        )
        assert abs(a - b) <= 0.03, (q, a, b)
        assert abs(a - float(q[-2:]) / 100) <= 0.06, (q, a)  # and near nominal on 12k shipments


def test_tables_known_at_undo_what_happened_later(sim_world: dict[str, pl.DataFrame]) -> None:
    at = sim_world["shipments"]["created_at"].max() - dt.timedelta(days=60)  # type: ignore[operator]
    then = tables_known_at(sim_world, at)
    s = then["shipments"]
    assert s["created_at"].max() < at
    assert (s["delivered_at"].drop_nulls() < at).all()
    later = sim_world["shipments"].filter((pl.col("created_at") < at) & (pl.col("delivered_at") >= at))
    reopened = s.join(later.select("shipment_id"), on="shipment_id", how="semi")
    assert later.height > 100 and reopened.height == later.height
    assert (reopened["status"] == "in_transit").all() and reopened["delivered_at"].is_null().all()
    assert (then["shipment_events"]["event_at"] < at).all()
    assert (then["customs_declarations"]["released_at"].drop_nulls() < at).all()
    assert_frame_equal(then["lanes"], sim_world["lanes"])
