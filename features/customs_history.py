"""Stage: features. Point-in-time history features of customs declarations (`customs_declarations`).

Reads and writes frames only (no I/O). For every declaration of `df` at its moment `df[at]` (default
`declared_at`) it adds statistics over the declarations of a `history` frame (by default `df` itself) that
were known **strictly before** that moment:

- *activity* per key (no label needed, known as soon as a declaration is lodged): prior declarations
  `cust_{key}_n_prior` and `cust_{key}_days_since_prior`;
- *label history* per key: the smoothed as-of fraud rate `cust_{key}_fraud_te_m{m}` and the number of
  labelled prior declarations `cust_{key}_n_labelled`. A label is known `label_lag_days` after its
  declaration (`declared_at + L`) and only when the declaration was inspected, so a row at `t` sees the label
  of a row declared at `d` only when `d + L < t`;
- *deviations* from a key's as-of median (`cust_{value}_dev_{key}_last{n}`), e.g. value per kg against the
  HS6 median (under-declaration), or the tariff rate against the HS6 median.

Keys may use any column of the table and the derived key columns of `DERIVED_COLUMNS` (HS4, exact declared
value, exact net mass, the goods-line fingerprint, log-decade bands). Derived columns are removed again, so
the output is `df` plus the numeric columns of `feature_names(config)`. All statistics come from
`features.history` (sorted cumulative sums and backward as-of joins with `allow_exact_matches=False`).

Example:
    >>> import datetime as dt
    >>> day = lambda d: dt.datetime(2021, 1, d, tzinfo=dt.UTC)
    >>> df = pl.DataFrame({"declared_at": [day(1), day(2), day(3)], "importer_id": ["I1"] * 3,
    ...                    "is_fraud": [True, False, True], "is_inspected": [True] * 3})
    >>> cfg = CustomsHistoryConfig(keys=(HistoryKey(name="importer", by=("importer_id",), m=0.0),),
    ...                            deviations=())
    >>> build_customs_history(df, config=cfg).select(feature_names(cfg)).rows()
    [(None, 0, 0, None), (1.0, 1, 1, 1.0), (0.5, 2, 2, 1.0)]
"""

from __future__ import annotations

from typing import Final, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.history import AsOfStats, LastN, add_trailing_stats
from features.target_encoding import TargetEncoding, add_target_encoding

__all__ = [
    "DEFAULT_DEVIATIONS",
    "DEFAULT_KEYS",
    "DERIVED_COLUMNS",
    "CustomsHistoryConfig",
    "Deviation",
    "HistoryKey",
    "KCS_KEYS",
    "build_customs_history",
    "derive_key_columns",
    "feature_names",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_LABEL = "__cust_label"
_LABEL_AT = "__cust_label_at"
_SEP = "|"

DERIVED_COLUMNS: Final[dict[str, str]] = {
    "hs4_code": "first 4 digits of hs_code",
    "hs2_code": "first 2 digits of hs_code",
    "declared_value_key": "declared_value_usd as exact text (repeat of the same declared value)",
    "net_mass_key": "net_mass_kg as exact text",
    "goods_key": "hs_code | declared value | net mass | tariff rate: the goods-line fingerprint",
    "value_band": "floor(log10(1 + declared_value_usd))",
    "mass_band": "floor(log10(1 + net_mass_kg))",
    "log_value_per_kg": "log((declared_value_usd + 0.01) / (net_mass_kg + 0.01))",
    "log_declared_value": "log(1 + declared_value_usd)",
}
"""Columns `derive_key_columns` adds (and `build_customs_history` removes again) for use in keys."""


class HistoryKey(BaseModel):
    """One key of the history: the declarations that share `by` (an importer, an HS6 x origin pair ...).

    Attributes:
        name: short name used in the output columns (`importer`, `hs6_origin`).
        by: key columns (table columns or `DERIVED_COLUMNS`); rows with a null key get null/zero features.
        label: add the smoothed as-of fraud rate and the labelled count.
        activity: add the prior-declaration count and the days since the previous declaration.
        m: smoothing weight of the fraud rate toward the as-of global rate (`(sum + prior*m) / (n + m)`).
        last_n: use only the key's last `last_n` labels (None: all of them).
    """

    model_config = _FROZEN

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    by: tuple[str, ...] = Field(min_length=1)
    label: bool = True
    activity: bool = True
    m: float = Field(default=5.0, ge=0.0)
    last_n: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not (self.label or self.activity):
            raise ValueError(f"HistoryKey({self.name!r}) produces no column")
        return self

    @property
    def label_names(self) -> tuple[str, str]:
        """(fraud rate, labelled count) column names."""
        window = "" if self.last_n is None else f"_last{self.last_n}"
        m = f"{self.m:g}".replace(".", "_")
        return f"cust_{self.name}_fraud_te_m{m}{window}", f"cust_{self.name}_n_labelled{window}"

    @property
    def activity_names(self) -> tuple[str, str]:
        """(prior declarations, days since the previous one) column names."""
        return f"cust_{self.name}_n_prior", f"cust_{self.name}_days_since_prior"

    @property
    def names(self) -> tuple[str, ...]:
        """All output columns of this key."""
        return (*(self.label_names if self.label else ()), *(self.activity_names if self.activity else ()))


class Deviation(BaseModel):
    """`value` minus its as-of median over the key's last `n` declarations (no label involved).

    Names: `cust_{value}_median_{key}_last{n}` and `cust_{value}_dev_{key}_last{n}`.
    """

    model_config = _FROZEN

    value: str
    key: str = Field(pattern=r"^[a-z0-9_]+$")
    by: tuple[str, ...] = Field(min_length=1)
    n: int = Field(default=50, ge=1)

    @property
    def names(self) -> tuple[str, str]:
        """(median, deviation) column names."""
        stem = f"cust_{self.value}_{{}}_{self.key}_last{self.n}"
        return stem.format("median"), stem.format("dev")


DEFAULT_KEYS: Final[tuple[HistoryKey, ...]] = (
    HistoryKey(name="importer", by=("importer_id",)),
    HistoryKey(name="declarant", by=("declarant_id",)),
    HistoryKey(name="seller", by=("seller_id",)),
    HistoryKey(name="office", by=("office_id",)),
    HistoryKey(name="hs6", by=("hs_code",)),
    HistoryKey(name="hs4", by=("hs4_code",)),
    HistoryKey(name="importer_hs6", by=("importer_id", "hs_code")),
    HistoryKey(name="declarant_office", by=("declarant_id", "office_id")),
    HistoryKey(name="hs6_origin", by=("hs_code", "origin_country")),
    HistoryKey(name="hs6_value", by=("hs_code", "declared_value_key"), m=1.0),
    HistoryKey(name="hs6_mass", by=("hs_code", "net_mass_key"), m=1.0),
    HistoryKey(name="goods", by=("goods_key",), m=1.0),
)
"""Keys built from contract columns only, so any `customs_declarations` table can use them."""

KCS_KEYS: Final[tuple[HistoryKey, ...]] = (
    HistoryKey(name="hs6_departure", by=("hs_code", "attr_country_of_departure")),
    HistoryKey(name="hs6_tax_type", by=("hs_code", "attr_tax_type")),
    HistoryKey(
        name="hs6_departure_mass_band", by=("hs_code", "attr_country_of_departure", "mass_band"), m=2.0
    ),
    HistoryKey(
        name="hs6_departure_value_band", by=("hs_code", "attr_country_of_departure", "value_band"), m=2.0
    ),
)
"""Extra keys for tables from `features.sources.kcs`, which keeps the country of departure and the tariff
type as `attr_*` passthrough columns. Use `keys=DEFAULT_KEYS + KCS_KEYS`."""

DEFAULT_DEVIATIONS: Final[tuple[Deviation, ...]] = (
    Deviation(value="log_value_per_kg", key="hs6", by=("hs_code",)),
    Deviation(value="log_declared_value", key="hs6", by=("hs_code",)),
    Deviation(value="tax_rate_pct", key="hs6", by=("hs_code",)),
)


class CustomsHistoryConfig(BaseModel):
    """What `build_customs_history` computes.

    Attributes:
        at: prediction moment of each row (a UTC timestamp column).
        target: boolean label column of the history (`is_fraud`); null = not known.
        inspected: boolean column; a label counts only when it is true (None: every label counts).
        label_lag_days: days after `at` when a declaration's label becomes known (L).
        keys: history keys.
        deviations: deviations from as-of medians.
    """

    model_config = _FROZEN

    at: str = "declared_at"
    target: str = "is_fraud"
    inspected: str | None = "is_inspected"
    label_lag_days: float = Field(default=0.0, ge=0.0)
    keys: tuple[HistoryKey, ...] = DEFAULT_KEYS
    deviations: tuple[Deviation, ...] = DEFAULT_DEVIATIONS

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = feature_names(self)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate feature names: {dup}")
        return self


def feature_names(config: CustomsHistoryConfig) -> tuple[str, ...]:
    """The columns `build_customs_history` adds, in order (keys first, then deviations)."""
    out = [n for k in config.keys for n in k.names]
    out += [n for d in config.deviations for n in d.names]
    return tuple(out)


def _exact_text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64).cast(pl.String)


def derive_key_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the `DERIVED_COLUMNS` that `frame` lacks and that can be computed from its columns.

    Args:
        frame: declarations (needs `hs_code`, `declared_value_usd`, `net_mass_kg`, `tax_rate_pct` for all
            of them).

    Returns:
        `frame` with the derived columns appended; a derived column already in `frame` is kept as it is.
    """
    cols = set(frame.columns)
    exprs: dict[str, pl.Expr] = {}
    value, mass, tax = pl.col("declared_value_usd"), pl.col("net_mass_kg"), pl.col("tax_rate_pct")
    if "hs_code" in cols:
        exprs["hs4_code"] = pl.col("hs_code").str.slice(0, 4)
        exprs["hs2_code"] = pl.col("hs_code").str.slice(0, 2)
    if "declared_value_usd" in cols:
        exprs["declared_value_key"] = _exact_text("declared_value_usd")
        exprs["value_band"] = (value.clip(lower_bound=0.0) + 1.0).log10().floor().cast(pl.Int32)
        exprs["log_declared_value"] = (value.clip(lower_bound=0.0) + 1.0).log()
    if "net_mass_kg" in cols:
        exprs["net_mass_key"] = _exact_text("net_mass_kg")
        exprs["mass_band"] = (mass.clip(lower_bound=0.0) + 1.0).log10().floor().cast(pl.Int32)
    if {"declared_value_usd", "net_mass_kg"} <= cols:
        exprs["log_value_per_kg"] = (
            (value.clip(lower_bound=0.0) + 0.01) / (mass.clip(lower_bound=0.0) + 0.01)
        ).log()
    if {"hs_code", "declared_value_usd", "net_mass_kg", "tax_rate_pct"} <= cols:
        exprs["goods_key"] = pl.concat_str(
            [
                pl.col("hs_code"),
                _exact_text("declared_value_usd"),
                _exact_text("net_mass_kg"),
                tax.cast(pl.Float64).cast(pl.String),
            ],
            separator=_SEP,
        )
    return frame.with_columns(**{name: e for name, e in exprs.items() if name not in cols})


def _with_label(frame: pl.DataFrame, config: CustomsHistoryConfig) -> pl.DataFrame:
    """Add the label as known (null unless inspected) and the moment it becomes known."""
    label = pl.col(config.target).cast(pl.Float64)
    if config.inspected is not None:
        label = pl.when(pl.col(config.inspected).fill_null(False)).then(label)
    lag = pl.duration(microseconds=round(config.label_lag_days * 86_400_000_000))
    return frame.with_columns(label.alias(_LABEL), (pl.col(config.at) + lag).alias(_LABEL_AT))


def _check_columns(frame: pl.DataFrame, config: CustomsHistoryConfig, what: str, *, history: bool) -> None:
    needed = {config.at} | {c for k in config.keys for c in k.by}
    needed |= {c for d in config.deviations for c in (*d.by, d.value)}
    if history:
        needed |= {config.target} | ({config.inspected} if config.inspected else set())
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


def build_customs_history(
    df: pl.DataFrame, history: pl.DataFrame | None = None, *, config: CustomsHistoryConfig | None = None
) -> pl.DataFrame:
    """Add the point-in-time history features of `config` to every declaration of `df`.

    Args:
        df: declarations to enrich (e.g. `customs_declarations`); needs `config.at` and the key columns
            (derived key columns are computed here). Row order is kept.
        history: declarations with labels whose past is used; `df` itself when None. It may hold rows later
            than `df`: only rows known strictly before each `df` row's moment count.
        config: the features (defaults: `CustomsHistoryConfig()`).

    Returns:
        `df` with `feature_names(config)` appended: Float64 rates, medians and deviations, Int64 counts
        (0 without history), Float64 days since the previous declaration (null without one).

    Raises:
        ValueError: when a needed column is missing or an output column already exists in `df`.
    """
    cfg = config or CustomsHistoryConfig()
    names = feature_names(cfg)
    clash = sorted(set(names) & set(df.columns))
    if clash:
        raise ValueError(f"columns already in df: {clash}")
    left = derive_key_columns(df)
    hist = derive_key_columns(df if history is None else history)
    _check_columns(left, cfg, "df", history=False)
    _check_columns(hist, cfg, "history", history=True)
    hist = _with_label(hist, cfg)

    out = left
    for key in cfg.keys:
        if key.label:
            enc = TargetEncoding(by=key.by, value=_LABEL, observed_at=_LABEL_AT, m=key.m, last_n=key.last_n)
            out = add_target_encoding(out, hist, enc, at=cfg.at).rename(
                dict(zip(enc.names, key.label_names, strict=True))
            )
        if key.activity:
            spec = AsOfStats(
                prefix=f"cust_{key.name}", by=key.by, observed_at=cfg.at, n_obs=True, days_since_last=True
            )
            out = add_trailing_stats(out, hist, spec, at=cfg.at).rename(
                dict(zip(spec.names, key.activity_names, strict=True))
            )
    for dev in cfg.deviations:
        window = LastN(value=dev.value, n=dev.n, quantiles=(0.5,))
        prefix = f"__cust_dev_{dev.key}"
        spec = AsOfStats(prefix=prefix, by=dev.by, observed_at=cfg.at, last_n=(window,))
        median, deviation = dev.names
        out = add_trailing_stats(out, hist, spec, at=cfg.at).rename({window.names(prefix)[0]: median})
        out = out.with_columns((pl.col(dev.value).cast(pl.Float64) - pl.col(median)).alias(deviation))
    return out.select(*df.columns, *names)
