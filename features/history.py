"""Stage: features. Point-in-time (as-of) statistics of a history of observations.

Reads frames and writes frames; no I/O. This is the leakage-free machinery every feature builder reuses (the
shipment, milestone and customs builders, and the SCMS/KCS benchmarks): for each row of a frame `df` at the
moment `df[at]`, statistics over the rows of a `history` frame with the same key (`by`) whose `observed_at`
is **strictly before** `df[at]`.

A history row is an *observation* once its `observed_at` is set. Right-censoring is the caller's choice of
`observed_at`: a shipment's transit time is observed at `delivered_at` (null while open, so open shipments
never count); a late/on-time flag can be observed earlier (the day after the promised date, when a parcel
still on its way is known to be late); a customs hold time at `released_at`.

How it is computed (O(n log n), no Python loop over rows): the history is sorted by `observed_at`; row-window
statistics (`LastN`: quantiles, mean, ...) are Polars rolling expressions over each key's last `n`
observations, cumulative sums give counts and time-window statistics (`LastDays`); then one
`join_asof(strategy="backward", allow_exact_matches=False)` per distinct time shift attaches the state known
just before `df[at]` (on a tie of `observed_at` it takes the last row, whose running statistics include all
the tied rows). History rows that can no longer matter for the earliest `df[at]` are dropped before the
rolling windows, so scoring a few recent rows against a long history stays cheap.
`features.target_encoding` builds a smoothed target encoding on top of it.

Example:
    >>> import datetime as dt
    >>> ts = lambda d: dt.datetime(2025, 1, d, tzinfo=dt.UTC)
    >>> history = pl.DataFrame({"lane": ["A", "A", "A"], "delivered_at": [ts(2), ts(3), ts(5)],
    ...                         "transit_days": [4.0, 6.0, 9.0]})
    >>> df = pl.DataFrame({"lane": ["A", "A"], "created_at": [ts(3), ts(6)]})
    >>> spec = AsOfStats(prefix="lane", by=("lane",), observed_at="delivered_at",
    ...                  last_n=(LastN(value="transit_days", n=2, stats=("mean",)),), n_obs=True)
    >>> add_trailing_stats(df, history, spec, at="created_at").select(spec.names).rows()
    [(4.0, 1), (7.5, 3)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from features.history_spec import (
    _US_PER_DAY,
    AsOfStats,
    LastDays,
    LastN,
    RowStat,
    TimeStat,
    _over,
    days_between,
    quantile_label,
)

__all__ = [
    "AsOfState",
    "AsOfStats",
    "LastDays",
    "LastN",
    "RowStat",
    "TimeStat",
    "add_trailing_stats",
    "add_trailing_stats_from",
    "asof_state",
    "days_between",
    "quantile_label",
]


_ROW = "__asof_row"
_AT = "__asof_at"
_OBS = "__asof_observed_at"
_N = "__asof_n"
_KEY = "__asof_key"
# Up to this many distinct keys, `add_trailing_stats_from` joins on the keys' own observations only.
_FEW_KEYS = 64
# Up to this many rows, `add_trailing_stats_from` finds each row's state by binary search.
_LOOKUP_ROWS = 16


def _cum_name(w: LastDays, what: str) -> str:
    return f"__cum_{w.value}_{what}"


def _key(by: Sequence[str]) -> pl.Expr:
    """One UInt64 key per combination of the `by` values (null when one of them is null).

    A 64-bit hash of the key columns: grouping and as-of joining on it is 2-3x faster than on the columns
    (the chance that two of a million distinct keys collide is about 3e-8).
    """
    return pl.when(pl.all_horizontal(pl.col(c).is_not_null() for c in by)).then(pl.struct(list(by)).hash())


def _observations(history: pl.DataFrame, spec: AsOfStats, since: object | None) -> pl.DataFrame:
    """Observed history rows sorted by observation time, with their running statistics.

    Cumulative counts and sums are computed on the whole history. When `since` (the earliest moment asked
    for) is given, rows that can no longer matter are then dropped before the rolling windows: per key,
    everything observed before `since - longest time window` except the last `longest row window` rows.
    """
    by = list(spec.by)
    key = _KEY if by else None
    hist = history.lazy().select(
        *([_key(by).alias(_KEY)] if by else []),
        pl.col(spec.observed_at).alias(_OBS),
        *spec.values,
    )
    hist = hist.drop_nulls([_OBS, *([_KEY] if by else [])]).sort(_OBS, maintain_order=True)
    cum: list[pl.Expr] = [_over(pl.int_range(1, pl.len() + 1, dtype=pl.Int64), key).alias(_N)]
    for w in spec.last_days:
        if w.value is not None:
            v = pl.col(w.value).cast(pl.Float64)
            cum += [
                _over(v.fill_null(0.0).cum_sum(), key).alias(_cum_name(w, "sum")),
                _over(v.is_not_null().cast(pl.Int64).cum_sum(), key).alias(_cum_name(w, "count")),
            ]
    expanding = [w for w in spec.last_n if w.n is None]
    rolling = [w for w in spec.last_n if w.n is not None]
    cum += [e for w in expanding for e in w.base_exprs(key)]
    hist = hist.with_columns(list({e.meta.output_name(): e for e in cum}.values()))
    hist = hist.with_columns(e for w in expanding for e in w.stat_exprs(spec.prefix, key))
    if since is not None and rolling:
        longest_n = max(w.n or 0 for w in rolling)
        lookback = max((w.days for w in spec.last_days), default=0)
        before = (pl.col(_OBS) < pl.lit(since) - pl.duration(days=lookback)).cast(pl.Int64)
        hist = hist.filter(pl.col(_N) > _over(before.sum(), key) - longest_n)
    hist = hist.with_columns(e for w in rolling for e in w.base_exprs(key))
    hist = hist.with_columns(e for w in rolling for e in w.stat_exprs(spec.prefix, key))
    keep = [*([_KEY] if by else []), _OBS, *_row_names(spec), _N]
    keep += [c for c in hist.collect_schema().names() if c.startswith("__cum_")]
    return hist.select(keep).collect()


def _row_names(spec: AsOfStats) -> list[str]:
    return [name for w in spec.last_n for name in w.names(spec.prefix)]


def _asof(left: pl.DataFrame, right: pl.DataFrame, on: str, by: Sequence[str]) -> pl.DataFrame:
    # On ties of `observed_at` within a key, the backward as-of join takes the last row, whose running
    # statistics include all the tied rows (checked by tests/features/test_history.py).
    return left.join_asof(
        right,
        left_on=on,
        right_on=_OBS,
        by=_KEY if by else None,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
        coalesce=False,
    )


def _check_keys(
    df: pl.DataFrame,
    key_dtypes: dict[str, pl.DataType],
    observed_dtype: pl.DataType,
    spec: AsOfStats,
    at: str,
) -> None:
    clash = set(spec.names) & set(df.columns)
    if clash:
        raise ValueError(f"columns already in df: {sorted(clash)}")
    schema = df.schema
    for c in spec.by:
        if schema[c] != key_dtypes[c]:
            raise ValueError(f"key {c!r} is {schema[c]} in df but {key_dtypes[c]} in history")
    if schema[at] != observed_dtype:
        raise ValueError(f"{at!r} is {schema[at]} but {spec.observed_at!r} is {observed_dtype}")


@dataclass(frozen=True)
class AsOfState:
    """The as-of state of one `AsOfStats` over a fixed history: its observations with running statistics.

    Built once by `asof_state` (the same code `add_trailing_stats` runs on every call, over the whole
    history), then `add_trailing_stats_from` attaches the statistics to any rows by as-of joins only. The
    table keeps every observation, also those observed after the history's last booking (e.g. a late flag
    known at the end of a promised day still ahead), so the result is the one of `add_trailing_stats` on
    the same history for rows at any moment.

    Attributes:
        spec: the statistics.
        observations: observed history rows sorted by observation time, with their running statistics.
        key_dtypes: dtypes of the `spec.by` columns in the history.
        observed_dtype: dtype of the history's `spec.observed_at`.
    """

    spec: AsOfStats
    observations: pl.DataFrame
    key_dtypes: dict[str, pl.DataType]
    observed_dtype: pl.DataType
    parts: dict[int, pl.DataFrame] = field(default_factory=dict, repr=False)
    times: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    dtypes: dict[str, pl.DataType] = field(default_factory=dict, repr=False)

    def for_keys(self, keys: pl.Series) -> pl.DataFrame:
        """The observations of the given key hashes (all of them when there are many keys or no `by`).

        An as-of join hashes its whole right side on every call, so a few-row request joins on the
        observations of its own keys only (each key's rows stay sorted by observation time).
        """
        distinct = keys.drop_nulls().unique()
        if not self.parts or distinct.len() > _FEW_KEYS:
            return self.observations
        frames = [self.parts[k] for k in distinct.to_list() if k in self.parts]
        if not frames:
            return self.observations.clear()
        return frames[0] if len(frames) == 1 else pl.concat(frames)


def asof_state(history: pl.DataFrame, spec: AsOfStats) -> AsOfState:
    """The `AsOfState` of `spec` over `history` (no row of it pruned).

    Args:
        history: observations; must hold `spec.by`, `spec.observed_at` and the value columns.
        spec: what to compute.

    Raises:
        ValueError: naming the columns `spec` needs and `history` lacks.
    """
    missing = [c for c in (*spec.by, spec.observed_at, *spec.values) if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks the column(s) {missing} of {spec.prefix!r}")
    schema = history.schema
    observations = _observations(history, spec, since=None)
    parts: dict[int, pl.DataFrame] = {}
    times: dict[int, np.ndarray] = {}
    if spec.by:
        parts = {k: part for (k,), part in observations.partition_by(_KEY, as_dict=True).items()}
        if schema[spec.observed_at] == pl.Datetime("us", "UTC"):
            times = {k: part[_OBS].dt.epoch("us").to_numpy() for k, part in parts.items()}
    # The output dtypes of the as-of joins, for the binary-search path of a few rows.
    probe = pl.DataFrame(schema={**{c: schema[c] for c in spec.by}, _AT: schema[spec.observed_at]})
    left, resort = _left(probe, spec, _AT)
    dtypes = dict(_attach(probe, left, resort, observations.clear(), spec).drop(probe.columns).schema)
    return AsOfState(
        spec=spec,
        observations=observations,
        key_dtypes={c: schema[c] for c in spec.by},
        observed_dtype=schema[spec.observed_at],
        parts=parts,
        times=times,
        dtypes=dtypes,
    )


def add_trailing_stats(df: pl.DataFrame, history: pl.DataFrame, spec: AsOfStats, *, at: str) -> pl.DataFrame:
    """Add the as-of statistics of `spec` to every row of `df`, known strictly before `df[at]`.

    Args:
        df: frame to enrich; must hold the `spec.by` keys and the timestamp column `at`. Row order is kept.
        history: observations; must hold `spec.by`, `spec.observed_at` and the value columns. May be `df`
            itself (e.g. shipments as their own history).
        spec: what to compute and how the columns are named (`spec.names`).
        at: the prediction moment of each row of `df` (same dtype as `history[spec.observed_at]`).

    Returns:
        `df` with `spec.names` appended. Rows without a prior observation of their key get null statistics,
        0 counts and a null `days_since_last_obs`; rows with a null `at` or a null key get nulls.

    Raises:
        ValueError: when an output name is already a column of `df`, or a key or time dtype differs
            between `df` and `history`.
    """
    schema = history.schema
    _check_keys(df, {c: schema[c] for c in spec.by}, schema[spec.observed_at], spec, at)
    left, resort = _left(df, spec, at)
    obs = _observations(history, spec, since=left[_AT].min())
    return _attach(df, left, resort, obs, spec)


def add_trailing_stats_from(df: pl.DataFrame, state: AsOfState, *, at: str) -> pl.DataFrame:
    """`add_trailing_stats` against the history `state` was built from, by as-of joins only.

    Args:
        df: frame to enrich (keys of `state.spec.by` and the timestamp column `at`). Row order is kept.
        state: built by `asof_state`.
        at: the prediction moment of each row of `df`.

    Returns:
        `df` with `state.spec.names` appended, the values of `add_trailing_stats(df, history, spec, at=at)`.

    Raises:
        ValueError: as `add_trailing_stats`.
    """
    spec = state.spec
    _check_keys(df, state.key_dtypes, state.observed_dtype, spec, at)
    if state.times and df.height <= _LOOKUP_ROWS:
        return df.hstack(_lookup(df, state, at))
    left, resort = _left(df, spec, at)
    obs = state.for_keys(left[_KEY]) if spec.by else state.observations
    return _attach(df, left, resort, obs, spec)


def _lookup(df: pl.DataFrame, state: AsOfState, at: str) -> pl.DataFrame:
    """The `_attach` values of a few rows by binary search in their key's observations (no as-of join).

    The backward as-of join that excludes exact matches takes a key's last observation strictly before
    the moment: `searchsorted(..., side="left") - 1` on the key's sorted observation times (on ties, the
    last tied row, as the join). The arithmetic is the same IEEE operations as `_attach`'s expressions.
    """
    spec = state.spec
    keyed = df.select(_key(list(spec.by)).alias(_KEY), pl.col(at).dt.epoch("us").alias(_AT))
    days_name = f"{spec.prefix}_days_since_last_obs" if spec.days_since_last else None
    cols: dict[str, list[object]] = {name: [] for name in spec.names if name != days_name}
    seen: list[int | None] = []
    empty: dict[str, Any] = {}
    for key, t in keyed.iter_rows():
        part = None if key is None or t is None else state.parts.get(key)
        times = None if part is None else state.times[key]

        def find(moment: int, times: np.ndarray | None = times) -> int:
            return -1 if times is None else int(np.searchsorted(times, moment, side="left")) - 1

        i = find(t) if t is not None else -1
        now = part.row(i, named=True) if part is not None and i >= 0 else empty
        for w in spec.last_n:
            for stat, name in zip([*w.stats, *w.quantiles], w.names(spec.prefix), strict=True):
                value = now.get(name)
                cols[name].append(0.0 if stat == "count" and value is None else value)
        for wd in spec.last_days:
            j = find(t - wd.days * _US_PER_DAY) if t is not None else -1
            then = part.row(j, named=True) if part is not None and j >= 0 else empty

            def diff(col: str, now: dict[str, Any] = now, then: dict[str, Any] = then) -> Any:
                return (now.get(col) or 0) - (then.get(col) or 0)

            for stat, name in zip(wd.stats, wd.names(spec.prefix), strict=True):
                if stat == "count":
                    cols[name].append(diff(_N))
                elif stat == "sum":
                    cols[name].append(diff(_cum_name(wd, "sum")))
                else:
                    c = diff(_cum_name(wd, "count"))
                    cols[name].append(diff(_cum_name(wd, "sum")) / c if c else None)
        if spec.n_obs:
            cols[f"{spec.prefix}_n_obs"].append(now.get(_N) or 0)
        seen.append(None if times is None or i < 0 else int(times[i]))
    out = pl.DataFrame(cols, schema={k: state.dtypes[k] for k in cols})
    if days_name is not None:
        # Polars divides a column of 2+ rows by a scalar as a product with its reciprocal (a single row by
        # an exact division): the reciprocal gives the values of training frames bit for bit.
        ats = keyed[_AT].to_list()
        days = pl.Series(
            days_name,
            [
                None if s is None else float(np.float64(a - s) * (1.0 / _US_PER_DAY))
                for s, a in zip(seen, ats, strict=True)
            ],
            dtype=pl.Float64,
        )
        out = days.to_frame() if not cols else out.with_columns(days)
    return out.select(spec.names)


def _left(df: pl.DataFrame, spec: AsOfStats, at: str) -> tuple[pl.DataFrame, bool]:
    by = list(spec.by)
    left = df.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW),
        pl.col(at).alias(_AT),
        *([_key(by).alias(_KEY)] if by else []),
    )
    resort = not left[_AT].is_sorted()
    if resort:
        left = left.sort(_AT, maintain_order=True)
    return left, resort


def _attach(
    df: pl.DataFrame, left: pl.DataFrame, resort: bool, obs: pl.DataFrame, spec: AsOfStats
) -> pl.DataFrame:
    by = list(spec.by)
    cum_cols = [c for c in obs.columns if c.startswith("__cum_")]
    out = _asof(left, obs, _AT, by)
    for days in sorted({w.days for w in spec.last_days}):
        lag = f"__asof_at_{days}d"
        right = obs.select(
            *([_KEY] if by else []), _OBS, *(pl.col(c).alias(f"{c}_{days}d") for c in [_N, *cum_cols])
        )
        out = _asof(out.with_columns((pl.col(_AT) - pl.duration(days=days)).alias(lag)), right, lag, by)
        out = out.drop(lag, f"{_OBS}_right")
    new: list[pl.Expr] = [
        pl.col(name).fill_null(0.0)
        for w in spec.last_n
        for stat, name in zip(w.stats, w.names(spec.prefix), strict=False)
        if stat == "count"
    ]
    for w in spec.last_days:
        d = w.days
        for stat, name in zip(w.stats, w.names(spec.prefix), strict=True):
            if stat == "count":
                new.append(_in_window(_N, d).alias(name))
                continue
            s = _in_window(_cum_name(w, "sum"), d)
            if stat == "sum":
                new.append(s.alias(name))
            else:
                c = _in_window(_cum_name(w, "count"), d)
                new.append(pl.when(c > 0).then(s / c).alias(name))
    if spec.n_obs:
        new.append(pl.col(_N).fill_null(0).alias(f"{spec.prefix}_n_obs"))
    if spec.days_since_last:
        new.append(days_between(_OBS, _AT).alias(f"{spec.prefix}_days_since_last_obs"))
    out = out.with_columns(new).select(_ROW, *spec.names)
    if resort:
        out = out.sort(_ROW)
    return df.hstack(out.drop(_ROW))


def _in_window(cum: str, days: int) -> pl.Expr:
    """Cumulative value strictly before `at` minus the one strictly before `at - days`."""
    return pl.col(cum).fill_null(0) - pl.col(f"{cum}_{days}d").fill_null(0)
