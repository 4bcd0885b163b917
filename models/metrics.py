"""Stage: models (evaluation). Forecast and probability metrics with one signature, utilsforecast-style.

Reads and writes nothing: a predictions frame in, a long metrics frame out.

Every metric is ``metric(df, models, target_col, cutoff_col="cutoff", by=()) -> pl.DataFrame`` (plus
keyword-only options such as ``quantiles`` or ``k``) and returns the long frame
``[cutoff_col, *by, "model", "metric", "value"]`` (``value`` is Float64). A backtest fold is just a
``cutoff`` column, so ``evaluate(df, [mae, pinball], ...)`` scores every fold at once; pass
``cutoff_col=None`` to score a frame that has no cutoff column.

Column conventions:
    - a point or probability prediction of model ``M`` is the column ``M``;
    - quantile ``q`` of model ``M`` is ``M_q50``, ``M_q80``, ``M_q95`` (integer percent, see `quantile_col`).

Missing values: rows whose target is null are excluded from every metric. A null prediction excludes the
row for that model only. A group left with no rows produces no output row; AUC of a group with a single
class is null.

Example:
    >>> df = pl.DataFrame({"cutoff": [1, 1, 1], "y": [1.0, 2.0, 4.0], "m": [1.0, 3.0, 2.0]})
    >>> mae(df, ["m"], "y").to_dicts()
    [{'cutoff': 1, 'model': 'm', 'metric': 'mae', 'value': 1.0}]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import polars as pl

__all__ = [
    "BinStrategy",
    "Metric",
    "auc",
    "brier",
    "COVERAGE_RTOL",
    "coverage",
    "covered",
    "ece",
    "evaluate",
    "interval_width",
    "log_loss",
    "mae",
    "pinball",
    "pinball_loss",
    "precision_at_k",
    "quantile_col",
    "relative_to",
    "rmse",
]

BinStrategy = Literal["uniform", "quantile"]
DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.95)
COVERAGE_RTOL = 1e-9  # relative tolerance of `covered`: float rounding must not turn a hit into a miss
_SEP = "\x1f"  # separates model and metric names in temporary wide column names


class Metric(Protocol):
    """The one metric signature: predictions frame in, long metrics frame out."""

    def __call__(
        self,
        df: pl.DataFrame,
        models: Sequence[str],
        target_col: str,
        cutoff_col: str | None = "cutoff",
        by: Sequence[str] = (),
    ) -> pl.DataFrame: ...


def quantile_col(model: str, q: float) -> str:
    """Name of quantile `q` of `model`: ``quantile_col("eta_days", 0.8) == "eta_days_q80"``.

    Whole percents are written as integers; other levels keep their decimals with ``_`` for the point
    (``0.975 -> q97_5``).
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    pct = round(q * 100, 6)
    label = str(int(pct)) if pct == int(pct) else f"{pct:g}".replace(".", "_")
    return f"{model}_q{label}"


def _label(q: float) -> str:
    """``0.8 -> "80"``: the part of `quantile_col` after ``_q``."""
    return quantile_col("", q).removeprefix("_q")


def pinball_loss(y: pl.Expr, pred: pl.Expr, q: float) -> pl.Expr:
    """Row-wise pinball (quantile) loss ``max(q * (y - f), (q - 1) * (y - f))``."""
    diff = y - pred
    return pl.max_horizontal(q * diff, (q - 1.0) * diff)


# ---------------------------------------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------------------------------------
def _keys(df: pl.DataFrame, cutoff_col: str | None, by: Sequence[str]) -> list[str]:
    keys = ([cutoff_col] if cutoff_col is not None else []) + list(by)
    missing = [c for c in keys if c not in df.columns]
    if missing:
        raise ValueError(f"grouping columns {missing} not in frame (pass cutoff_col=None if there is none)")
    return keys


def _check_columns(df: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in frame")


def _finish(long: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    out = long.select(*keys, "model", "metric", pl.col("value").cast(pl.Float64))
    return out.sort(keys, maintain_order=True) if keys else out


def _aggregate(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    keys: list[str],
    exprs: Callable[[str], dict[str, pl.Expr]],
    *,
    lower_col: str | None = None,
) -> pl.DataFrame:
    """Group by `keys`, evaluate `exprs(model)` per model and return the long frame.

    Each expression sees only the group's rows with a non-null target (or a non-null `lower_col`, the
    censored rows' lower bound, when given); it must drop null predictions itself (mean and sum already do).
    """
    _check_columns(df, [target_col] if lower_col is None else [target_col, lower_col])
    keep = pl.col(target_col).is_not_null()
    if lower_col is not None:
        keep = keep | pl.col(lower_col).is_not_null()
    data = df.filter(keep)
    aggs = [expr.alias(f"{model}{_SEP}{name}") for model in models for name, expr in exprs(model).items()]
    wide = data.group_by(keys, maintain_order=True).agg(aggs) if keys else data.select(aggs)
    long = wide.unpivot(index=keys, variable_name="_name", value_name="value")
    parts = pl.col("_name").str.split_exact(_SEP, 1)
    long = long.with_columns(model=parts.struct.field("field_0"), metric=parts.struct.field("field_1")).drop(
        "_name"
    )
    return _finish(long, keys)


def _target(target_col: str) -> pl.Expr:
    return pl.col(target_col).cast(pl.Float64)


# ---------------------------------------------------------------------------------------------------------
# Point metrics
# ---------------------------------------------------------------------------------------------------------
def mae(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Mean absolute error of each model column against the target."""
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, models)
    y = _target(target_col)
    return _aggregate(df, models, target_col, keys, lambda m: {"mae": (y - pl.col(m)).abs().mean()})


def rmse(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Root mean squared error of each model column against the target."""
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, models)
    y = _target(target_col)
    return _aggregate(df, models, target_col, keys, lambda m: {"rmse": (y - pl.col(m)).pow(2).mean().sqrt()})


# ---------------------------------------------------------------------------------------------------------
# Quantile metrics
# ---------------------------------------------------------------------------------------------------------
def pinball(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> pl.DataFrame:
    """Mean pinball loss per quantile (``pinball_q50`` ...) and its mean over the quantiles (``pinball``).

    Reads the columns ``M_qNN`` of each model ``M``. The overall ``pinball`` is the unweighted mean of the
    per-quantile means.
    """
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, [quantile_col(m, q) for m in models for q in quantiles])
    y = _target(target_col)

    def exprs(m: str) -> dict[str, pl.Expr]:
        per_q = {
            f"pinball_q{_label(q)}": pinball_loss(y, pl.col(quantile_col(m, q)), q).mean() for q in quantiles
        }
        overall = pl.sum_horizontal(list(per_q.values())) / len(per_q)
        return {"pinball": overall, **per_q}

    return _aggregate(df, models, target_col, keys, exprs)


def covered(y: pl.Expr, pred: pl.Expr) -> pl.Expr:
    """``y <= pred`` up to float rounding (relative `COVERAGE_RTOL`): a quantile computed as 5.999999999999999
    still covers a target of exactly 6."""
    return y <= pred + COVERAGE_RTOL * pl.max_horizontal(pred.abs(), pl.lit(1.0))


def coverage(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    lower_col: str | None = None,
) -> pl.DataFrame:
    """Share of rows with ``target <= M_qNN`` per quantile (``coverage_q50`` ...); nominal is ``q``.

    Right-censoring: with `lower_col` (a known lower bound of the target where it is still unobserved, e.g.
    the days an open parcel has already travelled), a row with a null target whose bound already exceeds
    the quantile is a known miss and counts; one whose bound does not is undecided and left out.
    Comparisons use `covered` (a relative tolerance for float rounding).
    """
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, [quantile_col(m, q) for m in models for q in quantiles])
    y = _target(target_col)
    lower = None if lower_col is None else pl.col(lower_col).cast(pl.Float64)

    def exprs(m: str) -> dict[str, pl.Expr]:
        out = {}
        for q in quantiles:
            pred = pl.col(quantile_col(m, q))
            hit = covered(y, pred)
            if lower is not None:
                known_miss = ~covered(lower, pred)
                hit = pl.when(y.is_not_null()).then(hit).when(known_miss).then(False).otherwise(None)
            out[f"coverage_q{_label(q)}"] = hit.filter(pred.is_not_null()).mean()
        return out

    return _aggregate(df, models, target_col, keys, exprs, lower_col=lower_col)


def interval_width(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    lower: float = 0.5,
    upper: float = 0.95,
) -> pl.DataFrame:
    """Mean ``M_q{upper} - M_q{lower}`` (metric name ``interval_width_q50_q95``).

    Only rows with a non-null target count, so that the width matches the coverage computed on them.
    """
    keys = _keys(df, cutoff_col, by)
    lo_cols = {m: quantile_col(m, lower) for m in models}
    hi_cols = {m: quantile_col(m, upper) for m in models}
    _check_columns(df, [*lo_cols.values(), *hi_cols.values()])
    name = f"interval_width_q{_label(lower)}_q{_label(upper)}"
    return _aggregate(
        df,
        models,
        target_col,
        keys,
        lambda m: {name: (pl.col(hi_cols[m]) - pl.col(lo_cols[m])).cast(pl.Float64).mean()},
    )


# ---------------------------------------------------------------------------------------------------------
# Probability metrics (target is 0/1 or boolean; prediction is a probability of 1)
# ---------------------------------------------------------------------------------------------------------
def brier(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Brier score: mean ``(p - y)^2``."""
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, models)
    y = _target(target_col)
    return _aggregate(df, models, target_col, keys, lambda m: {"brier": (pl.col(m) - y).pow(2).mean()})


def log_loss(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    eps: float = 1e-15,
) -> pl.DataFrame:
    """Mean negative log-likelihood; probabilities are clipped to ``[eps, 1 - eps]``."""
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, models)
    y = _target(target_col)

    def exprs(m: str) -> dict[str, pl.Expr]:
        p = pl.col(m).cast(pl.Float64).clip(eps, 1.0 - eps)
        return {"log_loss": -(y * p.log() + (1.0 - y) * (1.0 - p).log()).mean()}

    return _aggregate(df, models, target_col, keys, exprs)


def auc(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """ROC AUC from ranks (Mann-Whitney U), ties counted as one half. Null when a group has one class."""
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, models)
    y = _target(target_col)

    def exprs(m: str) -> dict[str, pl.Expr]:
        valid = pl.col(m).is_not_null()
        ranks = pl.col(m).filter(valid).rank("average").cast(pl.Float64)
        yv = y.filter(valid)
        n_pos = yv.sum()
        n_neg = yv.len().cast(pl.Float64) - n_pos
        u = (ranks * yv).sum() - n_pos * (n_pos + 1.0) / 2.0
        value = pl.when((n_pos > 0) & (n_neg > 0)).then(u / (n_pos * n_neg)).otherwise(None)
        return {"auc": value}

    return _aggregate(df, models, target_col, keys, exprs)


def ece(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    n_bins: int = 10,
    strategy: BinStrategy = "uniform",
) -> pl.DataFrame:
    """Expected calibration error ``sum_b (n_b / n) * |mean(y_b) - mean(p_b)|``.

    The metric is named ``ece`` for equal-width bins and ``ece_quantile`` for equal-mass bins.

    Bins:
        - ``"uniform"``: equal-width bins on [0, 1]; bin ``min(floor(p * n_bins), n_bins - 1)``.
        - ``"quantile"``: equal-mass bins by rank within the group; bin
          ``floor((rank_min(p) - 1) * n_bins / n)``, so tied probabilities always share a bin (bins may then
          hold unequal counts).
    """
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, [target_col, *models])
    y = _target(target_col)
    parts = []
    for m in models:
        p = pl.col(m).cast(pl.Float64)
        data = df.filter(pl.col(target_col).is_not_null() & pl.col(m).is_not_null())
        if strategy == "uniform":
            bin_expr = (p * n_bins).floor().clip(0, n_bins - 1)
        elif strategy == "quantile":
            rank = p.rank("min").cast(pl.Float64)
            n = pl.len().cast(pl.Float64)
            if keys:
                rank, n = rank.over(keys), n.over(keys)
            bin_expr = ((rank - 1.0) * n_bins / n).floor()
        else:
            raise ValueError(f"unknown strategy {strategy!r}")
        bins = data.group_by([*keys, bin_expr.alias("_bin")]).agg(n=pl.len(), gap=(y.mean() - p.mean()).abs())
        value = ((pl.col("gap") * pl.col("n")).sum() / pl.col("n").sum()).alias("value")
        agg = bins.group_by(keys).agg(value) if keys else bins.select(value)
        name = "ece" if strategy == "uniform" else "ece_quantile"
        parts.append(agg.with_columns(model=pl.lit(m), metric=pl.lit(name)))
    return _finish(_concat(parts, keys), keys)


def precision_at_k(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    k: float = 0.1,
) -> pl.DataFrame:
    """Share of positives among the top ``k`` fraction of rows by score (metric ``precision_at_10``).

    The top set has ``n_top = max(1, ceil(k * n))`` rows. Scores tied at the boundary are shared: the
    positives among the tied rows count in proportion to the free slots, which is the expected precision
    under a random tie-break (deterministic, independent of row order).
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k is a fraction in (0, 1], got {k}")
    keys = _keys(df, cutoff_col, by)
    _check_columns(df, models)
    y = _target(target_col)
    name = f"precision_at_{round(k * 100, 6):g}".replace(".", "_")

    def exprs(m: str) -> dict[str, pl.Expr]:
        valid = pl.col(m).is_not_null()
        s = pl.col(m).filter(valid).cast(pl.Float64)
        yv = y.filter(valid)
        n_top = (yv.len().cast(pl.Float64) * k - 1e-9).ceil().clip(lower_bound=1.0)
        thr = s.sort(descending=True).gather((n_top - 1).cast(pl.Int64)).first()
        above, tied = s > thr, s == thr
        free = n_top - above.sum().cast(pl.Float64)
        value = ((yv * above).sum() + free * yv.filter(tied).mean()) / n_top
        return {name: value}

    return _aggregate(df, models, target_col, keys, exprs)


# ---------------------------------------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------------------------------------
def _concat(parts: Sequence[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    if not parts:
        raise ValueError("no metric or no model to evaluate")
    return pl.concat([p.select(*keys, "model", "metric", "value") for p in parts], how="vertical_relaxed")


def evaluate(
    df: pl.DataFrame,
    metrics: Sequence[Callable[..., pl.DataFrame]],
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Run each metric and stack the long frames (use `functools.partial` to set metric options).

    Example:
        >>> from functools import partial
        >>> metrics = [mae, partial(pinball, quantiles=[0.5, 0.9])]
        >>> evaluate(df, metrics, ["lgbm"], "eta_days")  # doctest: +SKIP
    """
    keys = _keys(df, cutoff_col, by)
    parts = [metric(df, models, target_col, cutoff_col, by) for metric in metrics]
    return _concat(parts, keys)


def relative_to(metrics_frame: pl.DataFrame, reference_model: str) -> pl.DataFrame:
    """Divide each model's metric value by the reference model's value for the same keys and metric.

    Keys are every column other than ``model``, ``metric`` and ``value``. The reference model's own rows
    become 1.0; a zero or missing reference value gives null. Example: model pinball / oracle pinball.
    """
    keys = [c for c in metrics_frame.columns if c not in ("model", "metric", "value")]
    if reference_model not in metrics_frame["model"].to_list():
        raise ValueError(f"reference model {reference_model!r} not in the metrics frame")
    ref = metrics_frame.filter(pl.col("model") == reference_model).select(
        *keys, "metric", pl.col("value").alias("_ref")
    )
    joined = metrics_frame.join(ref, on=[*keys, "metric"], how="left", nulls_equal=True)
    ratio = pl.when(pl.col("_ref") != 0).then(pl.col("value") / pl.col("_ref")).otherwise(None)
    return joined.with_columns(value=ratio).drop("_ref")
