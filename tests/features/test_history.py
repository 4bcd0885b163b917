"""As-of statistics: strictly-before semantics, censoring, key isolation, windows, target encoding."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.history import AsOfStats, LastDays, LastN, add_trailing_stats, quantile_label
from features.target_encoding import TargetEncoding, add_target_encoding

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TS = pl.Datetime("us", "UTC")


def _t(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def _history() -> pl.DataFrame:
    """Lane A: delivered on days 1, 2, 4, 4 (a tie) and one open parcel; lane B: one on day 3."""
    return pl.DataFrame(
        {
            "lane": ["A", "A", "B", "A", "A", "A"],
            "delivered_at": [_t(1), _t(2), _t(3), _t(4), _t(4), None],
            "transit_days": [2.0, 4.0, 100.0, 6.0, 8.0, None],
            "is_late": [False, True, True, False, True, None],
        },
        schema_overrides={"delivered_at": TS},
    )


def _spec(**kw: object) -> AsOfStats:
    base: dict[str, object] = {
        "prefix": "lane",
        "by": ("lane",),
        "observed_at": "delivered_at",
        "last_n": (LastN(value="transit_days", n=2, stats=("mean",), quantiles=(0.5,)),),
        "n_obs": True,
        "days_since_last": True,
    }
    return AsOfStats(**(base | kw))  # type: ignore[arg-type]


def test_add_trailing_stats_uses_only_rows_observed_strictly_before() -> None:
    df = pl.DataFrame(
        {"lane": ["A", "A", "A", "A", "B"], "created_at": [_t(0.5), _t(2), _t(3), _t(9), _t(3)]},
        schema_overrides={"created_at": TS},
    )
    out = add_trailing_stats(df, _history(), _spec(), at="created_at")
    expected = df.with_columns(
        pl.Series("lane_transit_days_mean_last2", [None, 2.0, 3.0, 7.0, None]),
        # linear interpolation between the two values of the window
        pl.Series("lane_transit_days_q50_last2", [None, 2.0, 3.0, 7.0, None]),
        pl.Series("lane_n_obs", [0, 1, 2, 4, 0], dtype=pl.Int64),
        pl.Series("lane_days_since_last_obs", [None, 1.0, 1.0, 5.0, None]),
    )
    assert_frame_equal(out, expected)


def test_add_trailing_stats_open_rows_never_count_and_keys_are_isolated() -> None:
    """The open parcel of lane A (null delivered_at) and lane B's 100-day parcel never reach lane A."""
    df = pl.DataFrame(
        {"lane": ["A", "C"], "created_at": [_t(30), _t(30)]}, schema_overrides={"created_at": TS}
    )
    spec = _spec(last_n=(LastN(value="transit_days", n=10, stats=("mean", "count", "max")),))
    out = add_trailing_stats(df, _history(), spec, at="created_at")
    assert out.row(0, named=True) | {"created_at": None} == {
        "lane": "A",
        "created_at": None,
        "lane_transit_days_mean_last10": 5.0,
        "lane_transit_days_count_last10": 4.0,
        "lane_transit_days_max_last10": 8.0,
        "lane_n_obs": 4,
        "lane_days_since_last_obs": 26.0,
    }
    assert out.row(1)[2:] == (None, 0.0, None, 0, None)


def test_add_trailing_stats_a_tie_is_seen_whole_or_not_at_all() -> None:
    df = pl.DataFrame(
        {"lane": ["A", "A"], "created_at": [_t(4), _t(4) + dt.timedelta(microseconds=1)]},
        schema_overrides={"created_at": TS},
    )
    spec = _spec(last_n=(LastN(value="is_late", n=3, stats=("rate", "count")),), days_since_last=False)
    out = add_trailing_stats(df, _history(), spec, at="created_at")
    assert out["lane_is_late_count_last3"].to_list() == [2.0, 3.0]
    assert out["lane_is_late_rate_last3"].to_list() == pytest.approx([0.5, 2 / 3])
    assert out["lane_n_obs"].to_list() == [2, 4]


def test_add_trailing_stats_keeps_row_order_of_an_unsorted_frame() -> None:
    df = pl.DataFrame(
        {"lane": ["A", "B", "A", "A"], "created_at": [_t(9), _t(9), _t(0), _t(3)], "x": [1, 2, 3, 4]},
        schema_overrides={"created_at": TS},
    )
    out = add_trailing_stats(df, _history(), _spec(), at="created_at")
    assert out["x"].to_list() == [1, 2, 3, 4]
    assert out["lane_n_obs"].to_list() == [4, 1, 0, 2]


def test_add_trailing_stats_time_windows_are_closed_left_open_right() -> None:
    """[at - 2 days, at): an observation exactly 2 days before counts, one at `at` does not."""
    df = pl.DataFrame(
        {"lane": ["A", "A"], "created_at": [_t(4), _t(3.5)]}, schema_overrides={"created_at": TS}
    )
    spec = AsOfStats(
        prefix="lane",
        by=("lane",),
        observed_at="delivered_at",
        last_days=(LastDays(days=2), LastDays(days=2, value="transit_days", stats=("sum", "mean"))),
    )
    out = add_trailing_stats(df, _history(), spec, at="created_at")
    assert out.select(spec.names).rows() == [(1, 4.0, 4.0), (1, 4.0, 4.0)]
    later = df.with_columns(pl.lit(_t(5)).cast(TS).alias("created_at"))
    assert (
        add_trailing_stats(later, _history(), spec, at="created_at").select(spec.names).rows()
        == [(2, 14.0, 7.0)] * 2
    )


def test_add_trailing_stats_min_obs_nulls_thin_windows() -> None:
    df = pl.DataFrame({"lane": ["A", "A"], "created_at": [_t(3), _t(9)]}, schema_overrides={"created_at": TS})
    spec = _spec(last_n=(LastN(value="transit_days", n=5, stats=("mean",), min_obs=3),))
    out = add_trailing_stats(df, _history(), spec, at="created_at")
    assert out["lane_transit_days_mean_last5"].to_list() == [None, 5.0]


def test_add_trailing_stats_global_stats_without_keys() -> None:
    df = pl.DataFrame({"created_at": [_t(3.5)]}, schema_overrides={"created_at": TS})
    spec = AsOfStats(
        prefix="all", observed_at="delivered_at", last_n=(LastN(value="transit_days", stats=("mean",)),)
    )
    out = add_trailing_stats(df, _history(), spec, at="created_at")
    assert out["all_transit_days_mean_all"].to_list() == [pytest.approx(106 / 3)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"last_n": (LastN(value="v", stats=("mean",)),) * 2}, "duplicate", id="duplicate-names"),
        pytest.param({"last_n": ()}, "no column", id="nothing"),
    ],
)
def test_asof_stats_rejects_bad_specs(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AsOfStats(prefix="p", observed_at="t", **kwargs)  # type: ignore[arg-type]


def test_last_n_rejects_quantiles_without_window_or_out_of_range() -> None:
    with pytest.raises(ValueError, match="finite window"):
        LastN(value="v", quantiles=(0.5,))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        LastN(value="v", n=5, quantiles=(1.0,))


def test_add_trailing_stats_refuses_mismatched_key_dtypes_and_name_clashes() -> None:
    df = pl.DataFrame({"lane": [1], "created_at": [_t(1)]}, schema_overrides={"created_at": TS})
    with pytest.raises(ValueError, match="key 'lane'"):
        add_trailing_stats(df, _history(), _spec(), at="created_at")
    clash = pl.DataFrame({"lane": ["A"], "created_at": [_t(1)], "lane_n_obs": [0]}).cast({"created_at": TS})
    with pytest.raises(ValueError, match="already"):
        add_trailing_stats(clash, _history(), _spec(), at="created_at")


def test_names_are_stable_and_derived_from_the_config() -> None:
    spec = AsOfStats(
        prefix="lane",
        by=("lane",),
        observed_at="delivered_at",
        last_n=(LastN(value="transit_days", n=50, stats=("mean",), quantiles=(0.5, 0.8, 0.975)),),
        last_days=(LastDays(days=7),),
        n_obs=True,
    )
    assert spec.names == (
        "lane_transit_days_mean_last50",
        "lane_transit_days_q50_last50",
        "lane_transit_days_q80_last50",
        "lane_transit_days_q97_5_last50",
        "lane_count_7d",
        "lane_n_obs",
    )
    assert quantile_label(0.95) == "q95"


def test_add_target_encoding_smooths_towards_the_prior() -> None:
    history = pl.DataFrame(
        {
            "importer_id": ["I1", "I1", "I2", "I1"],
            "declared_at": [_t(1), _t(2), _t(3), _t(10)],
            "is_fraud": [True, True, False, False],
        },
        schema_overrides={"declared_at": TS},
    )
    df = pl.DataFrame(
        {"importer_id": ["I1", "I2", "I3", "I1"], "declared_at": [_t(5), _t(5), _t(5), _t(0)]},
        schema_overrides={"declared_at": TS},
    )
    fixed = TargetEncoding(by=("importer_id",), value="is_fraud", observed_at="declared_at", m=2, prior=0.5)
    out = add_target_encoding(df, history, fixed, at="declared_at")
    assert fixed.names == ("importer_id_is_fraud_te_m2", "importer_id_is_fraud_n_obs")
    assert out[fixed.names[0]].to_list() == pytest.approx([(2 + 1) / 4, (0 + 1) / 3, 0.5, 0.5])
    assert out[fixed.names[1]].to_list() == [2, 1, 0, 0]
    # prior=None: the as-of mean over every key (2 frauds of 3 before day 5; nothing before day 0)
    glob = fixed.model_copy(update={"prior": None})
    te = add_target_encoding(df, history, glob, at="declared_at")[glob.names[0]].to_list()
    p = 2 / 3
    assert te[:3] == pytest.approx([(2 + 2 * p) / 4, (0 + 2 * p) / 3, p])
    assert te[3] is None


# ---------------------------------------------------------------------------------------------------------
# Property: equal to a brute-force computation, also when only late rows are asked for (pruned history)
# ---------------------------------------------------------------------------------------------------------
def _brute_force(df: pl.DataFrame, history: pl.DataFrame, n: int, days: int) -> list[tuple[object, ...]]:
    rows = []
    hist = history.drop_nulls("observed_at").with_row_index("i").sort("observed_at", "i")
    for key, at in df.select("key", "at").iter_rows():
        seen = hist.filter(pl.col("key") == key, pl.col("observed_at") < at)
        last = seen.tail(n)["value"].to_numpy()
        recent = seen.filter(pl.col("observed_at") >= at - dt.timedelta(days=days)).height
        rows.append(
            (
                float(last.mean()) if len(last) else None,
                float(np.quantile(last, 0.8)) if len(last) else None,
                recent,
                seen.height,
            )
        )
    return rows


@settings(max_examples=25, deadline=None)
@given(
    obs=st.lists(
        st.tuples(st.sampled_from("ab"), st.one_of(st.none(), st.integers(0, 40)), st.floats(0, 50)),
        min_size=1,
        max_size=30,
    ),
    ats=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 45)), min_size=1, max_size=8),
)
def test_add_trailing_stats_matches_brute_force(
    obs: list[tuple[str, int | None, float]], ats: list[tuple[str, int]]
) -> None:
    history = pl.DataFrame(
        {
            "key": [k for k, _, _ in obs],
            "observed_at": [None if d is None else _t(d) for _, d, _ in obs],
            "value": [v for _, _, v in obs],
        },
        schema_overrides={"observed_at": TS},
    )
    df = pl.DataFrame(
        {"key": [k for k, _ in ats], "at": [_t(d) for _, d in ats]}, schema_overrides={"at": TS}
    )
    spec = AsOfStats(
        prefix="p",
        by=("key",),
        observed_at="observed_at",
        last_n=(LastN(value="value", n=3, stats=("mean",), quantiles=(0.8,)),),
        last_days=(LastDays(days=5),),
        n_obs=True,
    )
    got = add_trailing_stats(df, history, spec, at="at").select(spec.names).rows()
    expected = _brute_force(df, history, n=3, days=5)
    for g, e in zip(got, expected, strict=True):
        assert g[2:] == e[2:]
        assert (g[0] is None) == (e[0] is None)
        if e[0] is not None:
            assert g[:2] == pytest.approx(e[:2])
