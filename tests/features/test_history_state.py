"""As-of state: statistics joined from a state built once equal `add_trailing_stats` on the history."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.history import (
    AsOfStats,
    LastDays,
    LastN,
    add_trailing_stats,
    add_trailing_stats_from,
    asof_state,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TS = pl.Datetime("us", "UTC")
# Days since the last observation: Polars divides one row exactly and 2+ rows by the reciprocal (the last
# bit can differ between a 1-row call and a training frame; the state follows the training frames).
_REL = 1e-15


def _t(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def _history() -> pl.DataFrame:
    """Lanes A and B; an open parcel (no `delivered_at`) whose late flag is known after the last booking."""
    return pl.DataFrame(
        {
            "lane": ["A", "A", "B", "A", "A", "A", None, "B"],
            "created_at": [_t(0), _t(0.5), _t(1), _t(2), _t(2), _t(3), _t(3), _t(4)],
            "delivered_at": [_t(1), _t(2), _t(3), _t(4), _t(4), None, _t(5), _t(6)],
            "known_at": [_t(1), _t(2), _t(3), _t(4), _t(4), _t(20), _t(5), _t(6)],
            "transit_days": [1.0, 1.5, 2.0, 2.0, 2.0, None, 2.0, 2.0],
            "on_time": [True, False, True, True, False, False, True, True],
        },
        schema_overrides={"created_at": TS, "delivered_at": TS, "known_at": TS},
    )


SPECS = (
    AsOfStats(
        prefix="lane",
        by=("lane",),
        observed_at="delivered_at",
        last_n=(LastN(value="transit_days", n=2, stats=("mean", "std"), quantiles=(0.5, 0.8)),),
        n_obs=True,
        days_since_last=True,
    ),
    AsOfStats(
        prefix="lane",
        by=("lane",),
        observed_at="known_at",
        last_n=(LastN(value="on_time", n=3, stats=("rate",)),),
    ),
    AsOfStats(
        prefix="booked",
        by=("lane",),
        observed_at="created_at",
        last_days=(LastDays(days=1), LastDays(days=3)),
    ),
    AsOfStats(
        prefix="recent",
        by=("lane",),
        observed_at="delivered_at",
        last_days=(LastDays(days=2, value="transit_days", stats=("count", "sum", "mean")),),
    ),
    AsOfStats(
        prefix="all", observed_at="delivered_at", last_n=(LastN(value="transit_days", stats=("mean",)),)
    ),
)


def _rows(days: list[float], lanes: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"lane": lanes, "created_at": [_t(d) for d in days]}, schema_overrides={"created_at": TS}
    )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.prefix}-{s.observed_at}")
def test_state_equals_trailing_stats_before_inside_and_after_the_history(spec: AsOfStats) -> None:
    history = _history()
    # unsorted rows: inside the history, on ties, after the last booking, after the pending flag, unknown lane
    rows = _rows([25.0, 0.2, 4.0, 2.0, 19.0, 21.0, 4.5, 3.0], ["A", "A", "A", "B", "A", "A", "C", None])
    state = asof_state(history, spec)
    got = add_trailing_stats_from(rows, state, at="created_at")
    expected = add_trailing_stats(rows, history, spec, at="created_at")
    assert_frame_equal(got, expected, check_exact=False, rel_tol=_REL, abs_tol=0.0)
    assert got.columns == [*rows.columns, *spec.names]


def test_state_sees_an_observation_that_becomes_known_after_the_last_booking() -> None:
    spec = AsOfStats(
        prefix="lane",
        by=("lane",),
        observed_at="known_at",
        last_n=(LastN(value="on_time", n=2, stats=("rate",)),),
    )
    state = asof_state(_history(), spec)
    out = add_trailing_stats_from(_rows([19.0, 21.0], ["A", "A"]), state, at="created_at")
    # lane A by known_at: T (d1), F (d2), T, F (d4 tie), F (d20, the open parcel past its promise)
    assert out["lane_on_time_rate_last2"].to_list() == [0.5, 0.0]


def test_state_rejects_mismatched_dtypes_and_missing_columns() -> None:
    state = asof_state(_history(), SPECS[0])
    rows = _rows([5.0], ["A"]).with_columns(pl.col("created_at").dt.replace_time_zone(None))
    with pytest.raises(ValueError, match="created_at"):
        add_trailing_stats_from(rows, state, at="created_at")
    with pytest.raises(ValueError, match="transit_days"):
        asof_state(_history().drop("transit_days"), SPECS[0])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=-2.0, max_value=30.0), st.sampled_from(["A", "B", "C"])),
        min_size=1,
        max_size=12,
    )
)
def test_state_equals_trailing_stats_on_random_rows(points: list[tuple[float, str]]) -> None:
    history = _history()
    rows = _rows([d for d, _ in points], [lane for _, lane in points])
    for spec in SPECS:
        got = add_trailing_stats_from(rows, asof_state(history, spec), at="created_at")
        assert_frame_equal(
            got,
            add_trailing_stats(rows, history, spec, at="created_at"),
            check_exact=False,
            rel_tol=_REL,
            abs_tol=0.0,
        )


def test_state_gives_the_same_values_through_key_parts_and_the_whole_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import features.history as history_module

    history = _history()
    rows = _rows([25.0, 0.2, 4.0, 2.0, 19.0, 4.5], ["A", "A", "B", "B", "C", None])
    for spec in SPECS:
        state = asof_state(history, spec)
        by_parts = add_trailing_stats_from(rows, state, at="created_at")
        monkeypatch.setattr(history_module, "_FEW_KEYS", 0)
        whole = add_trailing_stats_from(rows, state, at="created_at")
        monkeypatch.undo()
        assert_frame_equal(by_parts, whole, check_exact=False, rel_tol=_REL, abs_tol=0.0)
        assert_frame_equal(
            by_parts,
            add_trailing_stats(rows, history, spec, at="created_at"),
            check_exact=False,
            rel_tol=_REL,
            abs_tol=0.0,
        )
