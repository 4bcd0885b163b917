"""Stage: features. Smoothed as-of target encoding of high-cardinality ids (importer, seller, HS code).

Reads frames, writes frames; no I/O. Built on `features.history.add_trailing_stats`, so the encoding of a
row uses only labels observed strictly before its own moment (no target leakage, no look-ahead prior).
Used by the customs models (KCS benchmark: importer, declarant, seller, office, HS code).

Example:
    >>> import datetime as dt
    >>> t = [dt.datetime(2025, 1, d, tzinfo=dt.UTC) for d in (1, 2, 3)]
    >>> history = pl.DataFrame({"importer_id": ["I1", "I1", "I2"], "declared_at": t,
    ...                         "is_fraud": [True, False, False]})
    >>> enc = TargetEncoding(by=("importer_id",), value="is_fraud", observed_at="declared_at", m=2, prior=0.2)
    >>> out = add_target_encoding(history, history, enc, at="declared_at")
    >>> out.select(pl.col(enc.names[0]).round(4), enc.names[1]).rows()  # I1 on day 2: (1 + 0.2 * 2) / 3
    [(0.2, 0), (0.4667, 1), (0.2, 0)]
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.history import AsOfStats, LastN, add_trailing_stats

__all__ = ["TargetEncoding", "add_target_encoding"]


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

    model_config = ConfigDict(frozen=True, extra="forbid")

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
