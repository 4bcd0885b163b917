"""Windows sized from the data: each rule on a small hand-made frame, and overrides."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from models.windows import WindowColumns, WindowConfig, derive_windows

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
COLS = WindowColumns("created_at", "delivered_at", "is_open", "mode")


def _frame(days: int, per_day: dict[str, int], transit: float, open_last: int = 0) -> pl.DataFrame:
    """`per_day[mode]` rows a day for `days` days, each delivered after `transit` days (the last
    `open_last` days still open)."""
    rows = []
    for d in range(days):
        for mode, n in per_day.items():
            for i in range(n):
                created = T0 + dt.timedelta(days=d, hours=i % 24)
                is_open = d >= days - open_last
                delivered = None if is_open else created + dt.timedelta(days=transit + (i % 3))
                rows.append((created, delivered, is_open, mode))
    return pl.DataFrame(
        rows, schema=["created_at", "delivered_at", "is_open", "mode"], orient="row"
    ).with_columns(
        pl.col("created_at").dt.cast_time_unit("us"), pl.col("delivered_at").dt.cast_time_unit("us")
    )


def test_maturity_is_a_high_quantile_of_the_label_delay() -> None:
    frame = _frame(300, {"postal": 4}, transit=10.0)  # delays 10, 11, 12 days
    windows = derive_windows(frame, COLS, T0 + dt.timedelta(days=300), WindowConfig())
    assert windows.maturity_days == 12
    assert "P99" in windows.table().filter(pl.col("window") == "maturity_days")["rule"].item()


def test_every_window_is_printed_and_a_number_overrides_the_rule() -> None:
    frame = _frame(300, {"postal": 4}, transit=10.0)
    config = WindowConfig().overridden(maturity_days=30, fold_days=14, folds=2, calibration_days=None)
    windows = derive_windows(frame, COLS, T0 + dt.timedelta(days=300), config)
    assert (windows.maturity_days, windows.fold_days, windows.folds) == (30, 14, 2)
    table = windows.table()
    assert table["window"].to_list() == [
        "history_days", "calibration_days", "early_stopping_days", "maturity_days", "fold_days", "folds",
    ]  # fmt: skip
    assert table.filter(pl.col("window") == "maturity_days")["rule"].item() == "set in the config"
    assert table.filter(pl.col("window") == "calibration_days")["rule"].item() != "set in the config"


def test_calibration_window_holds_enough_rows_of_every_major_group() -> None:
    # express: 2 rows a day -> 300 rows need 150 days; a 1% group is ignored
    frame = _frame(400, {"postal": 10, "express": 2}, transit=5.0)
    config = WindowConfig(min_calibration_rows=60, major_group_share=0.1)
    windows = derive_windows(frame, COLS, T0 + dt.timedelta(days=400), config)
    assert windows.calibration_days == 30
    evidence = windows.table().filter(pl.col("window") == "calibration_days")["evidence"].item()
    assert "express" in evidence and "need 30.0 d" in evidence


def test_open_rows_count_at_their_age_and_lengthen_the_maturity() -> None:
    at = T0 + dt.timedelta(days=200)
    closed = derive_windows(_frame(200, {"postal": 4}, 5.0), COLS, at, WindowConfig())
    # the same world where 5% of the parcels never arrived: they are still open, and count at their age
    lost = (pl.col("created_at").dt.day() % 5 == 1) & (pl.col("created_at").dt.hour() == 0)
    frame = _frame(200, {"postal": 4}, 5.0).with_columns(
        pl.when(lost).then(None).otherwise(pl.col("delivered_at")).alias("delivered_at"),
        lost.alias("is_open"),
    )
    assert derive_windows(frame, COLS, at, WindowConfig()).maturity_days > closed.maturity_days


@pytest.mark.parametrize(
    ("per_day", "expected"),
    [
        pytest.param({"postal": 40}, 3, id="plenty: 3 folds"),
        pytest.param({"postal": 2}, 1, id="little: 1 fold"),
    ],
)
def test_fold_count_follows_the_volume(per_day: dict[str, int], expected: int) -> None:
    frame = _frame(300, per_day, transit=5.0)
    windows = derive_windows(frame, COLS, T0 + dt.timedelta(days=300), WindowConfig(min_train_rows=500))
    assert windows.folds == expected
    assert windows.fold_days >= WindowConfig().min_fold_days
