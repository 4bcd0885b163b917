"""Tests for features.customs_history: strictly-before semantics, the label lag, and no look-ahead."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.customs_history import (
    CustomsHistoryConfig,
    Deviation,
    HistoryKey,
    build_customs_history,
    derive_key_columns,
    feature_names,
)

IMPORTER = HistoryKey(name="importer", by=("importer_id",), m=0.0)
FEATURES = [
    "cust_importer_fraud_te_m0",
    "cust_importer_n_labelled",
    "cust_importer_n_prior",
    "cust_importer_days_since_prior",
]
FEATURE_SCHEMA = {
    "cust_importer_fraud_te_m0": pl.Float64,
    "cust_importer_n_labelled": pl.Int64,
    "cust_importer_n_prior": pl.Int64,
    "cust_importer_days_since_prior": pl.Float64,
}


def _day(d: int) -> dt.datetime:
    return dt.datetime(2021, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=d - 1)


def _importer_rows(days: list[int], fraud: list[bool], inspected: list[bool] | None = None) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame(
        {
            "declaration_id": [f"D{i}" for i in range(n)],
            "declared_at": [_day(d) for d in days],
            "importer_id": ["I1"] * n,
            "is_fraud": fraud,
            "is_inspected": inspected or [True] * n,
        },
        schema_overrides={"declared_at": pl.Datetime("us", "UTC")},
    )


def _expected(rows: list[tuple[float | None, int, int, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FEATURE_SCHEMA, orient="row")


def _importer_config(lag: float) -> CustomsHistoryConfig:
    return CustomsHistoryConfig(label_lag_days=lag, keys=(IMPORTER,), deviations=())


def test_customs_history_same_day_rows_do_not_see_each_other() -> None:
    df = _importer_rows([1, 1, 2, 9], [True, False, True, False])
    out = build_customs_history(df, config=_importer_config(0))
    expected = _expected([(None, 0, 0, None), (None, 0, 0, None), (0.5, 2, 2, 1.0), (2 / 3, 3, 3, 7.0)])
    assert_frame_equal(out.select(FEATURES), expected)


def test_customs_history_label_lag_hides_recent_labels_not_activity() -> None:
    # L = 7: the labels of day 1 are known on day 8, so a day-2 row sees the declarations (activity) but no
    # label; day 9 sees the day-1 labels and not day 2's (known on day 9, not strictly before it).
    df = _importer_rows([1, 1, 2, 9, 10], [True, False, True, False, True])
    out = build_customs_history(df, config=_importer_config(7))
    expected = _expected(
        [
            (None, 0, 0, None),
            (None, 0, 0, None),
            (None, 0, 2, 1.0),
            (0.5, 2, 3, 7.0),
            (2 / 3, 3, 4, 1.0),
        ]
    )
    assert_frame_equal(out.select(FEATURES), expected)


def test_customs_history_uninspected_labels_do_not_count() -> None:
    df = _importer_rows([1, 2, 3], [True, False, False], inspected=[False, True, True])
    out = build_customs_history(df, config=_importer_config(0))
    expected = _expected([(None, 0, 0, None), (None, 0, 1, 1.0), (0.0, 1, 2, 1.0)])
    assert_frame_equal(out.select(FEATURES), expected)


def test_customs_history_smoothing_uses_the_as_of_global_rate() -> None:
    # Day 2, I2: no own label, so the global rate of day 1 (1.0). Day 3: the prior is the global rate of
    # days 1-2 (0.5); I2 has one label (0): (0 + 0.5 * 2) / (1 + 2) = 1/3; I1 has one (1): 2/3.
    df = _importer_rows([1, 2, 3, 3], [True, False, False, True]).with_columns(
        importer_id=pl.Series(["I1", "I2", "I2", "I1"])
    )
    key = HistoryKey(name="importer", by=("importer_id",), m=2.0, activity=False)
    out = build_customs_history(df, config=CustomsHistoryConfig(keys=(key,), deviations=()))
    assert out.get_column("cust_importer_fraud_te_m2").to_list() == pytest.approx([None, 1.0, 1 / 3, 2 / 3])


def test_customs_history_deviation_from_the_as_of_median() -> None:
    df = pl.DataFrame(
        {
            "declared_at": [_day(d) for d in (1, 2, 3, 4, 4)],
            "hs_code": ["851830"] * 5,
            "tax_rate_pct": [8.0, 8.0, 10.0, 0.0, 4.0],
            "is_fraud": [False] * 5,
            "is_inspected": [True] * 5,
        },
        schema_overrides={"declared_at": pl.Datetime("us", "UTC")},
    )
    dev = Deviation(value="tax_rate_pct", key="hs6", by=("hs_code",), n=2)
    out = build_customs_history(df, config=CustomsHistoryConfig(keys=(), deviations=(dev,)))
    expected = pl.DataFrame(
        {
            "cust_tax_rate_pct_median_hs6_last2": [None, 8.0, 8.0, 9.0, 9.0],
            "cust_tax_rate_pct_dev_hs6_last2": [None, 0.0, 2.0, -9.0, -5.0],
        }
    )
    assert_frame_equal(out.select(dev.names), expected)


def test_customs_history_keeps_row_order_and_input_columns() -> None:
    df = _importer_rows([9, 1, 2, 1], [False, True, True, False])
    out = build_customs_history(df, config=_importer_config(0))
    assert out.columns == [*df.columns, *FEATURES]
    assert_frame_equal(out.select(df.columns), df)
    assert out.get_column("cust_importer_n_prior").to_list() == [3, 0, 2, 0]


def test_customs_history_rejects_missing_columns_and_clashes() -> None:
    df = _importer_rows([1, 2], [True, False])
    with pytest.raises(ValueError, match="lacks columns"):
        build_customs_history(df.drop("importer_id"), config=_importer_config(0))
    with pytest.raises(ValueError, match="already in df"):
        build_customs_history(df.with_columns(cust_importer_n_prior=pl.lit(0)), config=_importer_config(0))


def test_customs_history_config_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="duplicate feature names"):
        CustomsHistoryConfig(keys=(IMPORTER, IMPORTER), deviations=())


def test_derive_key_columns_goods_fingerprint() -> None:
    df = pl.DataFrame(
        {"hs_code": ["851830"], "declared_value_usd": [23.5], "net_mass_kg": [0.4], "tax_rate_pct": [8.0]}
    )
    out = derive_key_columns(df)
    assert out.get_column("goods_key").to_list() == ["851830|23.5|0.4|8.0"]
    assert out.get_column("hs4_code").to_list() == ["8518"]
    assert out.get_column("value_band").to_list() == [1]


# ---------------------------------------------------------------------------------------------------------
# Properties: no look-ahead
# ---------------------------------------------------------------------------------------------------------
_ROW = st.tuples(
    st.integers(1, 12),  # day
    st.sampled_from(["I1", "I2", "I3"]),
    st.sampled_from(["851830", "851890", "940540"]),
    st.sampled_from([1.0, 2.5, 10.0]),  # value: repeats make the exact-match keys fire
    st.sampled_from([0.5, 1.0]),
    st.booleans(),
)


def _declarations(rows: list[tuple[int, str, str, float, float, bool]]) -> pl.DataFrame:
    days, importers, hs, values, masses, fraud = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)
    return pl.DataFrame(
        {
            "declaration_id": [f"D{i}" for i in range(n)],
            "declared_at": [_day(d) for d in days],
            "hs_code": hs,
            "declared_value_usd": values,
            "net_mass_kg": masses,
            "tax_rate_pct": [8.0] * n,
            "origin_country": ["CN"] * n,
            "importer_id": importers,
            "declarant_id": ["B1"] * n,
            "seller_id": [None if i % 3 == 0 else "S1" for i in range(n)],
            "office_id": ["O1"] * n,
            "is_fraud": fraud,
            "is_inspected": [True] * n,
        },
        schema_overrides={"declared_at": pl.Datetime("us", "UTC"), "seller_id": pl.String},
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.lists(_ROW, min_size=1, max_size=8),
    future=st.lists(_ROW, min_size=1, max_size=8),
    lag=st.sampled_from([0.0, 3.0]),
)
def test_customs_history_appending_future_rows_never_changes_past_features(past, future, lag) -> None:
    cut = max(r[0] for r in past)
    later = [(cut + r[0], *r[1:]) for r in future]  # strictly after every past row
    cfg = CustomsHistoryConfig(label_lag_days=lag)
    alone = build_customs_history(_declarations(past), config=cfg)
    together = build_customs_history(_declarations(past + later), config=cfg).head(len(past))
    assert_frame_equal(alone, together)


@settings(max_examples=20, deadline=None)
@given(rows=st.lists(_ROW, min_size=2, max_size=10), lag=st.sampled_from([0.0, 3.0]))
def test_customs_history_labels_inside_the_lag_window_are_invisible(rows, lag) -> None:
    # Flipping the label of every row declared within the last `lag` days (or on the same day) before the
    # last day leaves the features of the last day's rows unchanged.
    df = _declarations(rows)
    last = df.get_column("declared_at").max()
    recent = pl.col("declared_at") >= pl.lit(last) - pl.duration(days=lag)
    flipped = df.with_columns(
        is_fraud=pl.when(recent).then(~pl.col("is_fraud")).otherwise(pl.col("is_fraud"))
    )
    cfg = CustomsHistoryConfig(label_lag_days=lag)
    names = feature_names(cfg)
    on_last = pl.col("declared_at") == last
    a = build_customs_history(df, config=cfg).filter(on_last).select(names)
    b = build_customs_history(flipped, config=cfg).filter(on_last).select(names)
    assert_frame_equal(a, b)


def test_customs_history_scoring_against_a_history_equals_the_joint_build() -> None:
    rows = [(d, f"I{d % 2}", "851830", 2.5, 1.0, d % 3 == 0) for d in range(1, 9)]
    full = _declarations(rows)
    history, new = full.head(6), full.tail(2)
    cfg = CustomsHistoryConfig(label_lag_days=1.0)
    joint = build_customs_history(full, config=cfg).tail(2)
    scored = build_customs_history(new, history.vstack(new), config=cfg)
    assert_frame_equal(scored, joint)
