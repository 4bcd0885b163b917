"""Stage: features. What a point-in-time statistic is: the specs `LastN`, `LastDays` and `AsOfStats`.

Pure configuration (frozen Pydantic models) and the names they produce; no frames are read or written here.
`features.history` computes the statistics these specs describe.
"""

from __future__ import annotations

from typing import Literal, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AsOfStats", "LastDays", "LastN", "RowStat", "TimeStat", "days_between", "quantile_label"]

RowStat = Literal["mean", "rate", "std", "min", "max", "sum", "count"]
TimeStat = Literal["count", "sum", "mean"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_US_PER_DAY = 86_400_000_000


def _window_sum(expr: pl.Expr, n: int | None) -> pl.Expr:
    return expr.cum_sum() if n is None else expr.rolling_sum(window_size=n, min_samples=1)


def _over(expr: pl.Expr, key: str | None) -> pl.Expr:
    return expr if key is None else expr.over(key)


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
    `rate` is the mean of a boolean. `count` is the number of non-null values in the window (0 when none);
    any other statistic is null when the window holds fewer than `min_obs` non-null values. Null values
    take a slot in the window but are skipped by the statistics; quantiles are linearly interpolated.

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

    def base_exprs(self, key: str | None) -> list[pl.Expr]:
        """Window count and sum of non-null values, computed once per window (columns `_base_names`)."""
        v = pl.col(self.value).cast(pl.Float64)
        count_name, sum_name = self._base_names
        return [
            _over(_window_sum(v.is_not_null().cast(pl.Float64), self.n), key).alias(count_name),
            _over(_window_sum(v.fill_null(0.0), self.n), key).alias(sum_name),
        ]

    @property
    def _base_names(self) -> tuple[str, str]:
        return f"__count_{self.value}_{self.window}", f"__sum_{self.value}_{self.window}"

    def stat_exprs(self, prefix: str, key: str | None) -> list[pl.Expr]:
        """The statistics, on a history sorted by observation time that holds the `base_exprs` columns."""
        v = pl.col(self.value).cast(pl.Float64)
        count, total = (pl.col(c) for c in self._base_names)
        out: list[pl.Expr] = []
        for stat in self.stats:
            if stat in ("mean", "rate"):
                out.append(total / count)
            elif stat == "sum":
                out.append(total)
            elif stat == "count":
                out.append(count)
            elif stat == "std" and self.n is not None:
                out.append(_over(v.rolling_std(window_size=self.n, min_samples=2), key))
            elif stat == "std":
                sq = _over(v.fill_null(0.0).pow(2).cum_sum(), key)
                var = (sq - total.pow(2) / count) / (count - 1)
                out.append(pl.when(count > 1).then(var.clip(lower_bound=0.0).sqrt()))
            elif self.n is None:
                out.append(_over(v.cum_min() if stat == "min" else v.cum_max(), key))
            else:
                fn = v.rolling_min if stat == "min" else v.rolling_max
                out.append(_over(fn(window_size=self.n, min_samples=1), key))
        for q in self.quantiles:
            assert self.n is not None  # checked by the validator
            rq = v.rolling_quantile(q, interpolation="linear", window_size=self.n, min_samples=1)
            out.append(_over(rq, key))
        labels = [*self.stats, *self.quantiles]
        return [
            (expr if label == "count" else pl.when(count >= self.min_obs).then(expr)).alias(name)
            for name, label, expr in zip(self.names(prefix), labels, out, strict=True)
        ]


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
