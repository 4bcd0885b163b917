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
observations, cumulative sums give counts and time-window statistics (`LastDays`); ties on
`observed_at` collapse to the last row; then one `join_asof(strategy="backward", allow_exact_matches=False)`
per distinct time shift attaches the state known just before `df[at]`.

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
from typing import Literal, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AsOfStats",
    "LastDays",
    "LastN",
    "RowStat",
    "TargetEncoding",
    "TimeStat",
    "add_target_encoding",
    "add_trailing_stats",
    "days_between",
    "quantile_label",
]

RowStat = Literal["mean", "rate", "std", "min", "max", "sum", "count"]
TimeStat = Literal["count", "sum", "mean"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ROW = "__asof_row"
_AT = "__asof_at"
_OBS = "__asof_observed_at"
_N = "__asof_n"
_US_PER_DAY = 86_400_000_000


def quantile_label(q: float) -> str:
    """Column label of a quantile level: 0.5 -> `q50`, 0.95 -> `q95`, 0.975 -> `q97_5`."""
    return "q" + f"{q * 100:g}".replace(".", "_")


def days_between(start: str | pl.Expr, end: str | pl.Expr) -> pl.Expr:
    """Float days from `start` to `end` (two timestamp columns), exact to the microsecond."""
    s = pl.col(start) if isinstance(start, str) else start
    e = pl.col(end) if isinstance(end, str) else end
    return (e - s).dt.total_microseconds() / _US_PER_DAY


class LastN(BaseModel):
    """Statistics of one value over a key's last `n` observations (`n=None`: the whole history).

    Names: `{prefix}_{value}_{stat}_last{n}` and `{prefix}_{value}_q80_last{n}` (`..._all` without `n`).
    `rate` is the mean of a boolean. `count` is the number of non-null values in the window. A statistic is
    null when the window holds fewer than `min_obs` non-null values. Null values take a slot in the window
    but are skipped by the statistics; quantiles are linearly interpolated.

    Example:
        >>> LastN(value="transit_days", n=50, quantiles=(0.5, 0.8)).names("lane")
        ('lane_transit_days_q50_last50', 'lane_transit_days_q80_last50')
    """

    model_config = _FROZEN

    value: str
    n: int | None = Field(default=None, ge=1)
    stats: tuple[RowStat, ...] = ()
    quantiles: tuple[float, ...] = ()
    min_obs: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.stats and not self.quantiles:
            raise ValueError(f"LastN({self.value!r}) asks for no statistic")
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError(f"quantile levels must lie in (0, 1), got {self.quantiles}")
        if self.n is None and self.quantiles:
            raise ValueError("quantiles need a finite window n (expanding quantiles are not supported)")
        return self

    @property
    def window(self) -> str:
        """`last{n}` or `all`."""
        return "all" if self.n is None else f"last{self.n}"

    def names(self, prefix: str) -> tuple[str, ...]:
        """Output column names, statistics first, then quantiles."""
        labels = [*self.stats, *(quantile_label(q) for q in self.quantiles)]
        return tuple(f"{prefix}_{self.value}_{label}_{self.window}" for label in labels)

    def exprs(self, prefix: str, by: Sequence[str]) -> list[pl.Expr]:
        """Rolling (or expanding) expressions over a history sorted by observation time."""
        v = pl.col(self.value).cast(pl.Float64)
        count = _window_sum(v.is_not_null().cast(pl.Float64), self.n)
        total = _window_sum(v.fill_null(0.0), self.n)
        out: dict[str, pl.Expr] = {}
        for stat in self.stats:
            if stat in ("mean", "rate"):
                out[stat] = total / count
            elif stat == "sum":
                out[stat] = total
            elif stat == "count":
                out[stat] = count
            elif stat == "std":
                sq = _window_sum(v.fill_null(0.0).pow(2), self.n)
                var = (sq - total.pow(2) / count) / (count - 1)
                out[stat] = pl.when(count > 1).then(var.clip(lower_bound=0.0).sqrt())
            elif self.n is None:
                out[stat] = v.cum_min() if stat == "min" else v.cum_max()
            else:
                fn = v.rolling_min if stat == "min" else v.rolling_max
                out[stat] = fn(window_size=self.n, min_samples=1)
        for q in self.quantiles:
            assert self.n is not None  # checked by the validator
            out[quantile_label(q)] = v.rolling_quantile(
                q, interpolation="linear", window_size=self.n, min_samples=1
            )
        exprs = []
        for name, (label, expr) in zip(self.names(prefix), out.items(), strict=True):
            guarded = expr if label == "count" else pl.when(count >= self.min_obs).then(expr)
            exprs.append(_over(guarded, by).alias(name))
        return exprs


class LastDays(BaseModel):
    """Statistics over the observations of the last `days` days, `[at - days, at)`.

    Names: `{prefix}_count_{days}d` (observations, 0 when none) and `{prefix}_{value}_{stat}_{days}d` for
    `sum` (0 when none) and `mean` (null when none) of `value`.

    Example:
        >>> LastDays(days=7).names("lane_booked")
        ('lane_booked_count_7d',)
    """

    model_config = _FROZEN

    days: int = Field(ge=1)
    value: str | None = None
    stats: tuple[TimeStat, ...] = ("count",)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.value is None and set(self.stats) - {"count"}:
            raise ValueError("sum and mean over a time window need a value column")
        return self

    def names(self, prefix: str) -> tuple[str, ...]:
        """Output column names, in `stats` order."""
        return tuple(
            f"{prefix}_count_{self.days}d" if s == "count" else f"{prefix}_{self.value}_{s}_{self.days}d"
            for s in self.stats
        )


class AsOfStats(BaseModel):
    """One group of as-of statistics: a key, an observation time and the statistics to compute.

    Attributes:
        prefix: first part of every output name (`lane`, `dest_mode`, `customs`).
        by: key columns, present in both `df` and `history` with the same dtypes (empty: global stats).
        observed_at: history column holding when a row became known; null rows are not observed yet.
        last_n: row-window statistics.
        last_days: time-window statistics.
        n_obs: add `{prefix}_n_obs`, the number of observations so far (0 when none).
        days_since_last: add `{prefix}_days_since_last_obs` (null when none).
    """

    model_config = _FROZEN

    prefix: str
    by: tuple[str, ...] = ()
    observed_at: str
    last_n: tuple[LastN, ...] = ()
    last_days: tuple[LastDays, ...] = ()
    n_obs: bool = False
    days_since_last: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate output names in {self.prefix!r}: {names}")
        if not names:
            raise ValueError(f"AsOfStats({self.prefix!r}) produces no column")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """All output column names, in the order they are added."""
        out = [name for w in self.last_n for name in w.names(self.prefix)]
        out += [name for w in self.last_days for name in w.names(self.prefix)]
        if self.n_obs:
            out.append(f"{self.prefix}_n_obs")
        if self.days_since_last:
            out.append(f"{self.prefix}_days_since_last_obs")
        return tuple(out)

    @property
    def values(self) -> tuple[str, ...]:
        """History value columns read by the statistics."""
        cols = [w.value for w in self.last_n] + [w.value for w in self.last_days if w.value is not None]
        return tuple(dict.fromkeys(cols))


def _window_sum(expr: pl.Expr, n: int | None) -> pl.Expr:
    return expr.cum_sum() if n is None else expr.rolling_sum(window_size=n, min_samples=1)


def _over(expr: pl.Expr, by: Sequence[str]) -> pl.Expr:
    return expr.over(list(by)) if by else expr


def _cum_name(w: LastDays, what: str) -> str:
    return f"__cum_{w.value}_{what}"


def _observations(history: pl.DataFrame, spec: AsOfStats) -> pl.DataFrame:
    """The observed history rows with their running statistics, one row per key and observation time."""
    by = list(spec.by)
    hist = (
        history.lazy()
        .select(*by, pl.col(spec.observed_at).alias(_OBS), *spec.values)
        .drop_nulls([_OBS, *by])
        .sort(_OBS, maintain_order=True)
    )
    cum: list[pl.Expr] = [_over(pl.int_range(1, pl.len() + 1, dtype=pl.Int64), by).alias(_N)]
    for w in spec.last_days:
        if w.value is None:
            continue
        v = pl.col(w.value).cast(pl.Float64)
        cum += [
            _over(v.fill_null(0.0).cum_sum(), by).alias(_cum_name(w, "sum")),
            _over(v.is_not_null().cast(pl.Int64).cum_sum(), by).alias(_cum_name(w, "count")),
        ]
    rolled = [e for w in spec.last_n for e in w.exprs(spec.prefix, by)]
    cum_cols = list(dict.fromkeys(c.meta.output_name() for c in cum))
    return (
        hist.with_columns(*rolled, *cum)
        .select(*by, _OBS, *(name for w in spec.last_n for name in w.names(spec.prefix)), *cum_cols)
        # Ties on the observation time: the last row of the tie carries the statistics of all of them.
        .unique(subset=[*by, _OBS], keep="last", maintain_order=True)
        .collect()
    )


def _asof(left: pl.DataFrame, right: pl.DataFrame, on: str, by: Sequence[str]) -> pl.DataFrame:
    return left.join_asof(
        right,
        left_on=on,
        right_on=_OBS,
        by=list(by) or None,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
        coalesce=False,
    )


def add_trailing_stats(df: pl.DataFrame, history: pl.DataFrame, spec: AsOfStats, *, at: str) -> pl.DataFrame:
    """Add the as-of statistics of `spec` to every row of `df`, known strictly before `df[at]`.

    Args:
        df: frame to enrich; must hold the `spec.by` keys and the timestamp column `at`. Its row order is kept.
        history: observations; must hold `spec.by`, `spec.observed_at` and the value columns. May be `df`
            itself (e.g. shipments as their own history).
        spec: what to compute and how the columns are named (`spec.names`).
        at: the prediction moment of each row of `df` (same dtype as `history[spec.observed_at]`).

    Returns:
        `df` with `spec.names` appended. Rows without a prior observation of their key get null statistics,
        0 counts and a null `days_since_last_obs`; rows with a null `at` or a null key get nulls.

    Raises:
        ValueError: when an output name is already a column of `df`.
    """
    clash = set(spec.names) & set(df.columns)
    if clash:
        raise ValueError(f"columns already in df: {sorted(clash)}")
    by = list(spec.by)
    obs = _observations(history, spec)
    left = df.with_row_index(_ROW).with_columns(pl.col(at).alias(_AT))
    resort = not left[_AT].is_sorted()
    if resort:
        left = left.sort(_AT, maintain_order=True)

    row_names = [name for w in spec.last_n for name in w.names(spec.prefix)]
    cum_cols = [c for c in obs.columns if c.startswith("__cum_")]
    out = _asof(left, obs.select(*by, _OBS, *row_names, _N, *cum_cols), _AT, by)
    new: list[pl.Expr] = []
    shifted = {w.days for w in spec.last_days}
    for days in sorted(shifted):
        lag = f"__asof_at_{days}d"
        right = obs.select(
            *by,
            _OBS,
            *(pl.col(c).alias(f"{c}_{days}d") for c in [_N, *cum_cols]),
        )
        out = _asof(out.with_columns((pl.col(_AT) - pl.duration(days=days)).alias(lag)), right, lag, by)
        out = out.drop(lag, f"{_OBS}_right")
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
    out = out.with_columns(new)
    if resort:
        out = out.sort(_ROW)
    return out.select(*df.columns, *spec.names)


def _in_window(cum: str, days: int) -> pl.Expr:
    """Cumulative value strictly before `at` minus the one strictly before `at - days`."""
    return pl.col(cum).fill_null(0) - pl.col(f"{cum}_{days}d").fill_null(0)


class TargetEncoding(BaseModel):
    """A smoothed as-of mean of `value` per key, for high-cardinality ids (importer, seller, HS code).

    `te = (sum + prior * m) / (count + m)` over the key's observations strictly before `at` (its last
    `last_n`, or all of them). `prior=None` uses the as-of mean of `value` over all keys (leak-free); a
    number fixes it. With no observation at all and `prior=None`, the encoding is null.

    Names: `{by joined by _x_}_{value}_te_m{m}` and `{...}_{value}_n_obs` (observations used).

    Example:
        >>> TargetEncoding(by=("importer_id",), value="is_fraud", observed_at="declared_at").names
        ('importer_id_is_fraud_te_m20', 'importer_id_is_fraud_n_obs')
    """

    model_config = _FROZEN

    by: tuple[str, ...] = Field(min_length=1)
    value: str
    observed_at: str
    m: float = Field(default=20.0, ge=0.0)
    prior: float | None = None
    last_n: int | None = Field(default=None, ge=1)

    @property
    def names(self) -> tuple[str, str]:
        """(encoding, observation count) column names."""
        stem = f"{'_x_'.join(self.by)}_{self.value}"
        return f"{stem}_te_m{self.m:g}".replace(".", "_"), f"{stem}_n_obs"


def add_target_encoding(
    df: pl.DataFrame, history: pl.DataFrame, enc: TargetEncoding, *, at: str
) -> pl.DataFrame:
    """Add the smoothed as-of target encoding `enc` to every row of `df` (see `TargetEncoding`).

    Args:
        df: frame to enrich, with the `enc.by` keys and the timestamp column `at`; row order is kept.
        history: labelled rows with `enc.by`, `enc.observed_at` and `enc.value` (boolean or numeric).
        enc: the encoding.
        at: the prediction moment of each row of `df`.

    Returns:
        `df` with `enc.names` appended (Float64 encoding, Int64 count).
    """
    te_name, n_name = enc.names
    window = LastN(value=enc.value, n=enc.last_n, stats=("sum", "count"))
    tmp = "__te"
    key_spec = AsOfStats(prefix=tmp, by=enc.by, observed_at=enc.observed_at, last_n=(window,))
    s_key, c_key = window.names(tmp)
    out = add_trailing_stats(df, history, key_spec, at=at)
    count = pl.col(c_key).fill_null(0.0)
    total = pl.col(s_key).fill_null(0.0)
    if enc.prior is None:
        glob = LastN(value=enc.value, n=None, stats=("mean",))
        prior_spec = AsOfStats(prefix="__te_global", observed_at=enc.observed_at, last_n=(glob,))
        out = add_trailing_stats(out, history, prior_spec, at=at)
        prior: pl.Expr = pl.col(glob.names("__te_global")[0])
    else:
        prior = pl.lit(enc.prior, dtype=pl.Float64)
    te = pl.when(count + enc.m > 0).then((total + prior * enc.m) / (count + enc.m)).otherwise(prior)
    return out.with_columns(te.alias(te_name), count.cast(pl.Int64).alias(n_name)).select(
        *df.columns, te_name, n_name
    )
