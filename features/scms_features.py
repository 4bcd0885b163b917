"""Stage: features. Point-in-time features for SCMS-like purchase-order shipments (order -> delivery).

Reads a `shipments` frame (the contract columns, e.g. from `features.sources.adapt_scms`, optionally joined
with `scms_order_attributes`) and writes the same frame with feature columns appended; no I/O. The prediction
moment of a row is its `created_at` (the PO date for Direct Drop, the PQ date for From RDC): every feature
uses only what was known strictly before it.

- **Order attributes** known when the order is placed: mode, destination, origin, vendor, incoterm, carrier,
  weight, value, packs, calendar position and a time trend.
- **As-of transit history** per group (lane = destination x mode, vendor, product group, ...), computed by
  `features.history.add_trailing_stats` over the history's shipments **delivered** strictly before
  `created_at` (right-censoring: an order still open at that moment contributes nothing to these statistics).
- **Open-order state** per group: how many orders created before `created_at` are still undelivered at that
  moment and their mean age. This is the censored part of the history that the transit statistics cannot
  see; a lane with many old open orders is slow *now*.

- **A PO-time promise and its delay label** (`add_promise`, `add_late_history`): the SCMS scheduled date is
  revised up to the delivery, so "late against the plan" cannot be known ex ante. The promise here is the
  lane's trailing P80 transit at order time (a quote a planner could give the day the PO is sent);
  `is_late` means delivered after it. Its as-of late rate is observed at the delivery or, for a late order,
  at the moment the promise expired undelivered (not at the delivery), so late orders are not censored away.

Columns are named from the config (`lane_transit_days_q80_last50`, `vendor_open_n`, ...), so the same config
always gives the same names, listed by `scms_feature_set`.

Example:
    >>> feats = build_scms_features(shipments)  # doctest: +SKIP
    >>> feats = add_late_history(add_promise(feats), add_promise(feats))  # doctest: +SKIP
    >>> scms_feature_set(ScmsFeatureConfig()).categorical
    ('mode', 'incoterm', 'product_group', 'shipment_mode')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.feature_set import FeatureSet
from features.history import AsOfStats, LastDays, LastN, add_trailing_stats, days_between, quantile_label

__all__ = [
    "DEFAULT_GROUPS",
    "ORDER_ATTRIBUTE_COLUMNS",
    "TARGET",
    "HistoryGroup",
    "PromiseConfig",
    "ScmsFeatureConfig",
    "add_late_history",
    "add_order_features",
    "add_promise",
    "add_transit_target",
    "build_scms_features",
    "scms_feature_set",
    "scms_order_attributes",
]

TARGET: Final = "transit_days"
"""Order-to-delivery days, `delivered_at - created_at` (null while the order is open)."""

ORDER_ATTRIBUTE_COLUMNS: Final = (
    "product_group",
    "sub_classification",
    "shipment_mode",
    "project_code",
    "pq_to_po_days",
    "n_lines",
    "n_products",
    "first_line_share",
    "generic_share",
)
"""Columns added by `scms_order_attributes`: known when the PO (or PQ) is issued, dropped by the contract."""

_CREATED_DAYS = "__created_days"
_AT_DAYS = "__at_days"
_EPOCH_DAY_US = 86_400_000_000


class HistoryGroup(BaseModel):
    """One key of as-of statistics.

    Attributes:
        prefix: first part of the column names (`lane`, `vendor`).
        by: key columns (empty: every shipment of the history).
        open_orders: also add the open-order state (`{prefix}_open_n`, `{prefix}_open_age_days`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str
    by: tuple[str, ...] = ()
    open_orders: bool = False


DEFAULT_GROUPS: Final = (
    HistoryGroup(prefix="lane", by=("destination_country", "mode"), open_orders=True),
    HistoryGroup(prefix="country", by=("destination_country",), open_orders=True),
    HistoryGroup(prefix="vendor", by=("seller_id",), open_orders=True),
    HistoryGroup(prefix="vendor_mode", by=("seller_id", "mode")),
    HistoryGroup(prefix="origin_lane", by=("origin_country", "destination_country", "mode")),
    HistoryGroup(prefix="incoterm_mode", by=("incoterm", "mode")),
    HistoryGroup(prefix="product", by=("product_group",)),
    HistoryGroup(prefix="project", by=("project_code",)),
    HistoryGroup(prefix="all", by=(), open_orders=True),
)


class ScmsFeatureConfig(BaseModel):
    """What `build_scms_features` computes and which columns `scms_feature_set` hands to a model.

    Attributes:
        groups: as-of history keys; their key columns must be in the frame.
        last_n: window (last `n` deliveries of the key) of the transit quantiles and mean.
        quantiles: transit quantiles per group.
        min_obs: fewer deliveries than this in the window -> null quantiles and mean.
        recent_days: time windows of the recent mean transit and delivery count per group (recency).
        categorical: order attributes passed to the model as categories. High-cardinality ids (vendor,
            country, origin) are left out by default: their as-of statistics generalise across time,
            their identity does not (the levels of 2010 say little about 2014).
        numeric: order attributes passed as numbers, besides the derived ones.
        trend_features: also hand the model the clock-like columns (`created_year`, every `*_n_obs` and
            `*_count_{d}d`). They grow with time, so a tree trained on the past sees test values outside
            its training range; off by default (they are computed either way).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[HistoryGroup, ...] = DEFAULT_GROUPS
    last_n: int = Field(default=50, ge=2)
    quantiles: tuple[float, ...] = (0.5, 0.8, 0.95)
    min_obs: int = Field(default=3, ge=1)
    recent_days: tuple[int, ...] = (180,)
    categorical: tuple[str, ...] = ("mode", "incoterm", "product_group", "shipment_mode")
    numeric: tuple[str, ...] = ("pq_to_po_days", "n_lines", "n_products", "first_line_share", "generic_share")
    trend_features: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        prefixes = [g.prefix for g in self.groups]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"duplicate group prefixes: {prefixes}")
        return self

    def transit_spec(self, group: HistoryGroup) -> AsOfStats:
        """As-of statistics of `transit_days` over the group's deliveries."""
        return AsOfStats(
            prefix=group.prefix,
            by=group.by,
            observed_at="delivered_at",
            last_n=(
                LastN(
                    value=TARGET,
                    n=self.last_n,
                    stats=("mean",),
                    quantiles=self.quantiles,
                    min_obs=self.min_obs,
                ),
            ),
            last_days=tuple(
                LastDays(days=d, value=TARGET, stats=("count", "mean")) for d in self.recent_days
            ),
            n_obs=True,
            days_since_last=True,
        )

    def transit_quantile_col(self, prefix: str, q: float) -> str:
        """Name of the as-of transit quantile `q` of group `prefix` (`lane_transit_days_q80_last50`)."""
        return f"{prefix}_{TARGET}_{quantile_label(q)}_last{self.last_n}"


class PromiseConfig(BaseModel):
    """The PO-time promise and the as-of late rates built on it.

    Attributes:
        quantile: the promise is this trailing transit quantile (one of `ScmsFeatureConfig.quantiles`).
        fallback: group prefixes tried in order for the promise (a thin lane falls back to its country...).
        late_groups: keys of the as-of late rate.
        late_n: window (last `n` orders whose punctuality is known) of the late rate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantile: float = Field(default=0.8, gt=0.0, lt=1.0)
    fallback: tuple[str, ...] = ("lane", "country", "all")
    late_groups: tuple[HistoryGroup, ...] = (
        HistoryGroup(prefix="lane", by=("destination_country", "mode")),
        HistoryGroup(prefix="vendor", by=("seller_id",)),
        HistoryGroup(prefix="all"),
    )
    late_n: int = Field(default=50, ge=1)

    def late_spec(self, group: HistoryGroup) -> AsOfStats:
        """As-of late rate of the group, observed when each order's punctuality became known."""
        return AsOfStats(
            prefix=f"{group.prefix}_late",
            by=group.by,
            observed_at="late_known_at",
            last_n=(LastN(value="late_flag", n=self.late_n, stats=("rate",)),),
        )

    @property
    def late_names(self) -> tuple[str, ...]:
        """Columns added by `add_late_history`."""
        return tuple(name for g in self.late_groups for name in self.late_spec(g).names)


def add_transit_target(df: pl.DataFrame) -> pl.DataFrame:
    """Add `transit_days` = `delivered_at - created_at` in days (null while undelivered).

    Example:
        >>> import datetime as dt
        >>> t = lambda d: dt.datetime(2025, 1, d, tzinfo=dt.UTC)
        >>> df = pl.DataFrame({"created_at": [t(1)], "delivered_at": [t(4)]})
        >>> add_transit_target(df)["transit_days"][0]
        3.0
    """
    return df.with_columns(days_between("created_at", "delivered_at").alias(TARGET))


def add_order_features(df: pl.DataFrame) -> pl.DataFrame:
    """Add what the order itself says: log weight and value, value density, packs, calendar and trend.

    `created_year` (fractional year of `created_at`) is the time trend; trees cannot extrapolate it past the
    training range, so the as-of statistics carry the drift and this only tells eras apart.
    """
    created = pl.col("created_at")
    year = created.dt.year().cast(pl.Float64) + (created.dt.ordinal_day().cast(pl.Float64) - 1.0) / 365.25
    return df.with_columns(
        pl.col("weight_kg").cast(pl.Float64).log1p().alias("log_weight_kg"),
        pl.col("declared_value_usd").cast(pl.Float64).log1p().alias("log_value_usd"),
        (
            pl.col("declared_value_usd").cast(pl.Float64).log1p()
            - pl.col("weight_kg").cast(pl.Float64).log1p()
        ).alias("log_value_per_kg"),
        pl.col("item_count").cast(pl.Float64).log1p().alias("log_item_count"),
        year.alias("created_year"),
        created.dt.month().cast(pl.Int8).alias("created_month"),
        created.dt.weekday().cast(pl.Int8).alias("created_weekday"),
    )


def _epoch_days(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("us").cast(pl.Float64) / _EPOCH_DAY_US


def _add_open_orders(df: pl.DataFrame, history: pl.DataFrame, group: HistoryGroup) -> pl.DataFrame:
    """Orders of the group created strictly before `created_at` and not delivered strictly before it.

    Two cumulative as-of sums of the creation day: over creations and over deliveries. Their difference is
    the open set; its size and its mean age at `created_at` are the features.
    """
    cum = (LastN(value=_CREATED_DAYS, n=None, stats=("sum", "count")),)
    created = AsOfStats(prefix="__open_c", by=group.by, observed_at="created_at", last_n=cum)
    delivered = AsOfStats(prefix="__open_d", by=group.by, observed_at="delivered_at", last_n=cum)
    out = add_trailing_stats(df, history, created, at="created_at")
    out = add_trailing_stats(out, history, delivered, at="created_at")
    (sum_c, n_c), (sum_d, n_d) = cum[0].names("__open_c"), cum[0].names("__open_d")
    n_open = pl.col(n_c).fill_null(0.0) - pl.col(n_d).fill_null(0.0)
    sum_open = pl.col(sum_c).fill_null(0.0) - pl.col(sum_d).fill_null(0.0)
    age = pl.when(n_open > 0.5).then(pl.col(_AT_DAYS) - sum_open / n_open)
    return out.with_columns(
        n_open.round(0).alias(f"{group.prefix}_open_n"), age.alias(f"{group.prefix}_open_age_days")
    ).drop(*created.names, *delivered.names)


def build_scms_features(
    df: pl.DataFrame, history: pl.DataFrame | None = None, config: ScmsFeatureConfig | None = None
) -> pl.DataFrame:
    """Add the order attributes and the as-of history features of `config` to every row of `df`.

    Args:
        df: shipments to enrich, with `created_at` and the key columns of `config.groups`; row order kept.
        history: shipments whose outcomes may be used (default: `df` itself), with `created_at`,
            `delivered_at` (null while open) and the key columns. Only rows delivered strictly before a row's
            `created_at` feed its transit statistics; only rows created strictly before it feed its
            open-order state. Appending later shipments to `history` never changes an earlier row.
        config: feature settings (defaults: `ScmsFeatureConfig()`).

    Returns:
        `df` with `transit_days` (if absent), the order features and every name of `scms_feature_set`.
    """
    cfg = config or ScmsFeatureConfig()
    hist = df if history is None else history
    if TARGET not in df.columns:
        df = add_transit_target(df)
    hist = hist.select(
        *dict.fromkeys(k for g in cfg.groups for k in g.by),
        "created_at",
        "delivered_at",
        days_between("created_at", "delivered_at").alias(TARGET),
        _epoch_days("created_at").alias(_CREATED_DAYS),
    )
    out = add_order_features(df).with_columns(_epoch_days("created_at").alias(_AT_DAYS))
    for group in cfg.groups:
        out = add_trailing_stats(out, hist, cfg.transit_spec(group), at="created_at")
        if group.open_orders:
            out = _add_open_orders(out, hist, group)
    return out.drop(_AT_DAYS)


def scms_feature_set(config: ScmsFeatureConfig | None = None) -> FeatureSet:
    """The model columns that `build_scms_features` produces for `config`, in a fixed order.

    Args:
        config: feature settings (defaults: `ScmsFeatureConfig()`).

    Returns:
        Numeric columns (order features, configured numeric attributes, as-of statistics, open-order state;
        the clock-like ones only with `trend_features`) and the configured categorical columns.

    Example:
        >>> fs = scms_feature_set(ScmsFeatureConfig(groups=(HistoryGroup(prefix="lane", by=("mode",)),)))
        >>> [c for c in fs.numeric if c.startswith("lane_")][:2]
        ['lane_transit_days_mean_last50', 'lane_transit_days_q50_last50']
    """
    cfg = config or ScmsFeatureConfig()
    trend = ("created_year",) if cfg.trend_features else ()
    numeric: list[str] = [
        "log_weight_kg",
        "log_value_usd",
        "log_value_per_kg",
        "log_item_count",
        "created_month",
        "created_weekday",
        *trend,
        *cfg.numeric,
    ]
    for group in cfg.groups:
        names = cfg.transit_spec(group).names
        if not cfg.trend_features:
            names = tuple(n for n in names if not n.endswith("_n_obs") and "_count_" not in n)
        numeric += names
        if group.open_orders:
            numeric += [f"{group.prefix}_open_n", f"{group.prefix}_open_age_days"]
    return FeatureSet(numeric=tuple(numeric), categorical=tuple(cfg.categorical))


def add_promise(
    df: pl.DataFrame, config: ScmsFeatureConfig | None = None, promise: PromiseConfig | None = None
) -> pl.DataFrame:
    """Add the PO-time promise and the delay label it defines.

    Reads the as-of transit quantiles of `build_scms_features`, so the promise of an order uses only
    deliveries observed strictly before its `created_at`.

    Args:
        df: output of `build_scms_features` (with the same `config`).
        config: the feature config `df` was built with.
        promise: which quantile and fallback chain.

    Returns:
        `df` with `promise_days` (first non-null trailing quantile of the fallback chain), `due_at`
        (`created_at + promise_days`), `is_late` (`delivered_at > due_at`; null while undelivered),
        `late_flag` (late, or still undelivered: true for an open order once `due_at` has passed) and
        `late_known_at` (when the punctuality became known: `delivered_at` if on time, else `due_at`).
    """
    cfg = config or ScmsFeatureConfig()
    pro = promise or PromiseConfig()
    if pro.quantile not in cfg.quantiles:
        raise ValueError(f"promise quantile {pro.quantile} not in the feature quantiles {cfg.quantiles}")
    chain = [cfg.transit_quantile_col(p, pro.quantile) for p in pro.fallback]
    due = pl.col("created_at") + pl.duration(microseconds=(pl.col("promise_days") * _EPOCH_DAY_US).round(0))
    late = pl.col("delivered_at") > pl.col("due_at")
    flag = pl.col("delivered_at").is_null() | late
    return (
        df.with_columns(pl.coalesce(chain).alias("promise_days"))
        .with_columns(due.cast(df.schema["created_at"]).alias("due_at"))
        .with_columns(
            late.alias("is_late"),
            flag.alias("late_flag"),
            pl.when(flag).then(pl.col("due_at")).otherwise(pl.col("delivered_at")).alias("late_known_at"),
        )
    )


def add_late_history(
    df: pl.DataFrame, history: pl.DataFrame | None = None, promise: PromiseConfig | None = None
) -> pl.DataFrame:
    """Add the as-of late rate of each `promise.late_groups` key, known strictly before `created_at`.

    An order counts once its punctuality is known (`late_known_at`): at its delivery when on time, at the
    expiry of its promise when late. Late orders are therefore counted before they arrive, which is what
    removes the optimism of a rate over delivered orders only.

    Args:
        df: rows with `created_at` and the group keys.
        history: rows from `add_promise` (default: `df`, which must then come from `add_promise`).
        promise: the late-rate keys and window.

    Returns:
        `df` with `PromiseConfig.late_names` (`{prefix}_late_late_flag_rate_last50`, null without history).
    """
    pro = promise or PromiseConfig()
    hist = df if history is None else history
    out = df
    for group in pro.late_groups:
        out = add_trailing_stats(out, hist, pro.late_spec(group), at="created_at")
    return out


def _share(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).mean()


def scms_order_attributes(raw: pl.DataFrame, keys: Sequence[str] = ("ASN/DN #",)) -> pl.DataFrame:
    """Shipment-level attributes of the raw SCMS file that are known at order time but not in the contract.

    One row per `ASN/DN #` (renamed `shipment_id`): product group and sub-classification of the
    highest-value line, the raw `Shipment Mode` (keeps `Air Charter`, which the contract folds into `air`),
    the project code, the days from the first price quote to the PO (null when either date is missing:
    `Pre-PQ Process`, `Date Not Captured`, From RDC), the number of lines and distinct products, and the
    shares of first-line and generic lines.

    Args:
        raw: the frame of `features.sources.read_source("scms", ...)`.
        keys: shipment id column(s) of `raw`.

    Returns:
        `shipment_id` and `ORDER_ATTRIBUTE_COLUMNS`.
    """
    fmt = "%m/%d/%y"
    po = pl.col("PO Sent to Vendor Date").str.strip_chars().str.to_date(fmt, strict=False)
    pq = pl.col("PQ First Sent to Client Date").str.strip_chars().str.to_date(fmt, strict=False)
    by_value = pl.col("Line Item Value")
    top = {
        "product_group": "Product Group",
        "sub_classification": "Sub Classification",
        "shipment_mode": "Shipment Mode",
        "project_code": "Project Code",
    }
    return (
        raw.with_columns(__po=po, __pq=pq)
        .group_by(list(keys), maintain_order=True)
        .agg(
            *[
                pl.col(src).sort_by(by_value, descending=True, maintain_order=True).first().alias(name)
                for name, src in top.items()
            ],
            (pl.col("__po").first() - pl.col("__pq").first())
            .dt.total_days()
            .cast(pl.Float64)
            .alias("pq_to_po_days"),
            pl.len().cast(pl.Float64).alias("n_lines"),
            pl.col("Molecule/Test Type").n_unique().cast(pl.Float64).alias("n_products"),
            _share(pl.col("First Line Designation") == "Yes").alias("first_line_share"),
            _share(pl.col("Brand") == "Generic").alias("generic_share"),
        )
        .rename({keys[0]: "shipment_id"})
        .select("shipment_id", *ORDER_ATTRIBUTE_COLUMNS)
    )
