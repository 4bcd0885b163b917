"""SCMS point-in-time features: strictly-before and censoring semantics, promise, late label, attributes."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.scms_features import (
    ORDER_ATTRIBUTE_COLUMNS,
    HistoryGroup,
    PromiseConfig,
    ScmsFeatureConfig,
    add_late_history,
    add_promise,
    build_scms_features,
    scms_feature_set,
    scms_order_attributes,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TS = pl.Datetime("us", "UTC")
LANE = HistoryGroup(prefix="lane", by=("destination_country", "mode"), open_orders=True)
# One lane group, last-2 window, median and P80, no time window: small enough to compute by hand.
SMALL = ScmsFeatureConfig(
    groups=(LANE,),
    last_n=2,
    quantiles=(0.5, 0.8),
    min_obs=1,
    recent_days=(),
    categorical=("mode",),
    numeric=(),
)


def _t(days: float | None) -> dt.datetime | None:
    return None if days is None else T0 + dt.timedelta(days=days)


def _orders(
    created: list[float], delivered: list[float | None], lanes: list[str] | None = None
) -> pl.DataFrame:
    """Contract-like orders on lane ("KE", "air") unless `lanes` gives the destination of each."""
    n = len(created)
    return pl.DataFrame(
        {
            "shipment_id": [f"S{i}" for i in range(n)],
            "created_at": [_t(c) for c in created],
            "delivered_at": [_t(d) for d in delivered],
            "destination_country": lanes or ["KE"] * n,
            "mode": ["air"] * n,
            "weight_kg": [10.0] * n,
            "declared_value_usd": [100.0] * n,
            "item_count": [5] * n,
        },
        schema_overrides={"created_at": TS, "delivered_at": TS},
    )


def test_build_scms_features_uses_only_deliveries_strictly_before_created_at() -> None:
    # transits: S0 0->4 (4 d), S1 1->10 (9 d), S2 2->12 (10 d), S3 10->?, S4 12->20 (8 d)
    df = _orders([0, 1, 2, 10, 12], [4, 10, 12, None, 20])
    out = build_scms_features(df, config=SMALL)
    expected = pl.DataFrame(
        {
            # S3 at day 10: only S0 (day 4) is delivered strictly before; S1 (day 10) is not.
            # S4 at day 12: S0 and S1; S2 (day 12) is not. Window of 2 -> median of (4, 9).
            "lane_transit_days_q50_last2": [None, None, None, 4.0, 6.5],
            "lane_transit_days_q80_last2": [None, None, None, 4.0, 8.0],
            "lane_n_obs": [0, 0, 0, 1, 2],
            "lane_days_since_last_obs": [None, None, None, 6.0, 2.0],
        },
        schema_overrides={"lane_n_obs": pl.Int64},
    )
    assert_frame_equal(out.select(expected.columns), expected, check_dtypes=False)


def test_build_scms_features_open_orders_are_censored_not_dropped() -> None:
    # At day 10 (S4): S0 delivered day 3 (closed), S1 delivered day 15 (open at 10), S2 never delivered
    # (open), S3 created day 10 itself (not strictly before). Open: S1 (age 8) and S2 (age 6).
    df = _orders([0, 2, 4, 10, 10], [3, 15, None, 11, 12])
    out = build_scms_features(df, config=SMALL)
    row = out.filter(pl.col("shipment_id") == "S4").select("lane_open_n", "lane_open_age_days", "lane_n_obs")
    assert row.rows() == [(2.0, 7.0, 1)]
    # The undelivered S2 never feeds the transit statistics: only S0 (3 d) is known at day 10.
    assert out.filter(pl.col("shipment_id") == "S4")["lane_transit_days_q50_last2"].item() == 3.0


def test_build_scms_features_keys_are_isolated_and_row_order_kept() -> None:
    df = _orders([5, 0, 1], [None, 2, 50], lanes=["KE", "UG", "KE"])
    out = build_scms_features(df, config=SMALL)
    assert out["shipment_id"].to_list() == ["S0", "S1", "S2"]
    # S0 (KE, day 5): the KE order S2 is open (delivered day 50); the UG delivery on day 2 does not count.
    assert out.select("lane_n_obs", "lane_open_n").row(0) == (0, 1.0)


@settings(max_examples=40, deadline=None)
@given(
    past=st.lists(
        st.tuples(
            st.integers(0, 30), st.one_of(st.none(), st.integers(0, 40)), st.sampled_from(["KE", "UG"])
        ),
        min_size=1,
        max_size=8,
    ),
    future=st.lists(
        st.tuples(
            st.integers(31, 60), st.one_of(st.none(), st.integers(0, 40)), st.sampled_from(["KE", "UG"])
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_build_scms_features_appending_future_rows_never_changes_past_features(
    past: list[tuple[int, int | None, str]], future: list[tuple[int, int | None, str]]
) -> None:
    def frame(rows: list[tuple[int, int | None, str]]) -> pl.DataFrame:
        created = [float(c) for c, _, _ in rows]
        delivered = [None if d is None else float(c + d) for c, d, _ in rows]
        return _orders(created, delivered, [lane for _, _, lane in rows])

    before = build_scms_features(frame(past), config=SMALL)
    after = build_scms_features(frame(past + future), config=SMALL).head(len(past))
    names = list(scms_feature_set(SMALL).numeric)
    assert_frame_equal(before.select(names), after.select(names))


def test_build_scms_features_separate_history_equals_self_history() -> None:
    history = _orders([0, 1, 2, 10, 12], [4, 10, 12, None, 20])
    names = list(scms_feature_set(SMALL).numeric)
    alone = build_scms_features(history.tail(2), history=history, config=SMALL)
    together = build_scms_features(history, config=SMALL).tail(2)
    assert_frame_equal(alone.select(names), together.select(names))


def test_scms_feature_set_names_are_built_and_exclude_clock_columns_by_default() -> None:
    out = build_scms_features(_orders([0, 1, 3], [2, 5, None]), config=SMALL)
    default = scms_feature_set(SMALL)
    assert set(default.numeric + default.categorical) <= set(out.columns)
    assert not [c for c in default.numeric if c.endswith("_n_obs") or c == "created_year"]
    with_trend = scms_feature_set(SMALL.model_copy(update={"trend_features": True}))
    assert {"created_year", "lane_n_obs"} <= set(with_trend.numeric)


@pytest.mark.parametrize(
    ("delivered", "is_late", "late_flag", "known_day"),
    [
        pytest.param(3.0, False, False, 3.0, id="on-time-known-at-delivery"),
        pytest.param(4.0, False, False, 4.0, id="on-the-promise-is-on-time"),
        pytest.param(9.0, True, True, 4.0, id="late-known-at-promise-expiry"),
        pytest.param(None, None, True, 4.0, id="open-is-late-once-due"),
    ],
)
def test_add_promise_labels_and_knowledge_time(
    delivered: float | None, is_late: bool | None, late_flag: bool, known_day: float
) -> None:
    cfg = SMALL.model_copy(update={"quantiles": (0.8,)})
    df = _orders([10.0], [None if delivered is None else 10.0 + delivered]).with_columns(
        pl.lit(4.0).alias("lane_transit_days_q80_last2")
    )
    out = add_promise(df, cfg, PromiseConfig(fallback=("lane",)))
    assert out.select("promise_days", "is_late", "late_flag").row(0) == (4.0, is_late, late_flag)
    assert out["late_known_at"].item() == _t(10.0 + known_day)
    assert out["due_at"].item() == _t(14.0)


def test_add_promise_falls_back_when_the_lane_is_thin() -> None:
    cfg = ScmsFeatureConfig(groups=(LANE, HistoryGroup(prefix="all")), last_n=2, quantiles=(0.8,))
    df = _orders([0.0, 0.0], [5.0, 5.0]).with_columns(
        pl.Series("lane_transit_days_q80_last2", [None, 3.0]),
        pl.Series("all_transit_days_q80_last2", [7.0, 7.0]),
    )
    out = add_promise(df, cfg, PromiseConfig(fallback=("lane", "all")))
    assert out["promise_days"].to_list() == [7.0, 3.0]
    with pytest.raises(ValueError, match="promise quantile"):
        add_promise(df, cfg.model_copy(update={"quantiles": (0.5,)}), PromiseConfig())


def test_add_late_history_counts_a_late_order_before_it_arrives() -> None:
    # S0: created day 0, promise 5 d, delivered day 30 -> late, known at day 5.
    # S1: created day 1, promise 5 d, delivered day 3 -> on time, known at day 3.
    # S2 at day 10 sees both (late rate 0.5) although S0 has not arrived yet.
    df = _orders([0, 1, 10], [30, 3, 12]).with_columns(pl.lit(5.0).alias("lane_transit_days_q80_last2"))
    cfg = SMALL.model_copy(update={"quantiles": (0.8,)})
    promise = PromiseConfig(fallback=("lane",), late_groups=(LANE.model_copy(update={"open_orders": False}),))
    out = add_late_history(add_promise(df, cfg, promise), promise=promise)
    rate = promise.late_names[0]
    assert rate == "lane_late_late_flag_rate_last50"
    assert out[rate].to_list() == [None, None, 0.5]


def test_scms_order_attributes_aggregates_lines_to_shipments() -> None:
    raw = pl.DataFrame(
        {
            "ASN/DN #": ["ASN-1", "ASN-1", "DN-2"],
            "Product Group": ["HRDT", "ARV", "ARV"],
            "Sub Classification": ["HIV test", "Adult", "Adult"],
            "Shipment Mode": ["Air Charter", "Air Charter", "Truck"],
            "Project Code": ["P1", "P1", "P2"],
            "PO Sent to Vendor Date": ["3/15/14", "3/15/14", "N/A - From RDC"],
            "PQ First Sent to Client Date": ["3/1/14", "3/1/14", "Pre-PQ Process"],
            "Line Item Value": [10.0, 500.0, 7.0],
            "Molecule/Test Type": ["HIV 1/2", "Efavirenz", "Efavirenz"],
            "First Line Designation": ["Yes", "No", "Yes"],
            "Brand": ["Generic", "Generic", "Stocrin"],
        }
    )
    expected = pl.DataFrame(
        {
            "shipment_id": ["ASN-1", "DN-2"],
            "product_group": ["ARV", "ARV"],  # the highest-value line
            "sub_classification": ["Adult", "Adult"],
            "shipment_mode": ["Air Charter", "Truck"],
            "project_code": ["P1", "P2"],
            "pq_to_po_days": [14.0, None],
            "n_lines": [2.0, 1.0],
            "n_products": [2.0, 1.0],
            "first_line_share": [0.5, 1.0],
            "generic_share": [1.0, 0.0],
        }
    )
    out = scms_order_attributes(raw)
    assert tuple(out.columns[1:]) == ORDER_ATTRIBUTE_COLUMNS
    assert_frame_equal(out, expected)
