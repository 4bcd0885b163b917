"""Stage: models (evaluation). The backtest table of a shipment task: metrics per fold, slice and system.

Reads and writes nothing: the stacked backtest predictions of `models.shipment_tasks.backtest_task` in,
long metrics frames out. Every system of the frame is scored on the same rows; each fold also reports how
many test rows each system was scored on (``n_rows``) and the share of them still open at the data's end
(``censored_share``: counted in coverage when already past a quantile, see `models.metrics.coverage`).

`summarize_backtest` is the headline: the mean over folds of each (system, metric), over the folds where
every system has at least `min_fold_rows` test rows (the same folds for every system), with the folds and
rows it rests on. Folds below the minimum are listed in ``flagged``; when no fold reaches it the summary is
refused (`BacktestTooSmall`) with the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import polars as pl

from models.metrics import auc, brier, coverage, ece, evaluate, interval_width, log_loss, mae, pinball
from models.protocol import lower_col

__all__ = [
    "BacktestSummary",
    "BacktestTooSmall",
    "evaluate_task",
    "fold_table",
    "row_counts",
    "summarize_backtest",
    "systems_of",
]

SLICES = ("mode", "destination_country", "carrier", "lane")
_KEYS = ("cutoff", "slice", "slice_value", "model", "metric", "value")


class TaskKind(Protocol):
    """What `evaluate_task` needs of a task (`models.shipment_tasks.TaskSpec` has it)."""

    @property
    def kind(self) -> str: ...

    @property
    def target(self) -> str: ...


class BacktestTooSmall(ValueError):
    """No backtest fold has enough test rows for a summary."""


def systems_of(preds: pl.DataFrame, kind: str, target: str) -> list[str]:
    """The systems of a backtest frame: probability columns, or prefixes of ``_q50`` columns."""
    if kind == "quantile":
        return [c.removesuffix("_q50") for c in preds.columns if c.endswith("_q50")]
    reserved = {"cutoff", "shipment_id", target, lower_col(target), *SLICES}
    return [c for c in preds.columns if preds.schema[c] == pl.Float64 and c not in reserved]


def row_counts(
    df: pl.DataFrame,
    models: Sequence[str],
    target_col: str,
    cutoff_col: str | None = "cutoff",
    by: Sequence[str] = (),
    *,
    lower_col: str | None = None,
    prediction: str = "{model}",
) -> pl.DataFrame:
    """Rows each model is scored on (``n_rows``) and the share of them right-censored (``censored_share``).

    A row counts when the model predicts it and its target is known, or (with `lower_col`) censored with a
    known lower bound. `prediction` names a model's prediction column (``"{model}_q50"`` for quantiles).
    """
    keys = ([cutoff_col] if cutoff_col is not None else []) + list(by)
    known = pl.col(target_col).is_not_null()
    censored = (
        pl.lit(False) if lower_col is None else pl.col(target_col).is_null() & pl.col(lower_col).is_not_null()
    )
    aggs = []
    for m in models:
        scored = pl.col(prediction.format(model=m)).is_not_null() & (known | censored)
        n = scored.sum().cast(pl.Float64)
        aggs += [n.alias(f"{m}\x1fn_rows"), ((scored & censored).sum() / n).alias(f"{m}\x1fcensored_share")]
    wide = df.group_by(keys, maintain_order=True).agg(aggs) if keys else df.select(aggs)
    long = wide.unpivot(index=keys, variable_name="_name", value_name="value")
    parts = pl.col("_name").str.split_exact("\x1f", 1)
    return long.select(
        *keys,
        parts.struct.field("field_0").alias("model"),
        parts.struct.field("field_1").alias("metric"),
        pl.col("value").cast(pl.Float64),
    )


def evaluate_task(preds: pl.DataFrame, task: TaskKind, slices: tuple[str, ...] = SLICES) -> pl.DataFrame:
    """Metrics per fold, overall and per slice: ``[cutoff, slice, slice_value, model, metric, value]``.

    Args:
        preds: `backtest_task` output.
        task: the task (its ``kind``, ``"quantile"`` or ``"classifier"``, and its ``target`` column).
        slices: slice columns (those present are used).
    """
    kind, target = task.kind, task.target
    systems = systems_of(preds, kind, target)
    lower = lower_col(target) if lower_col(target) in preds.columns else None
    if kind == "quantile":
        q50 = preds.with_columns(pl.col(f"{s}_q50").alias(s) for s in systems)
        metric_fns: list[Callable[..., pl.DataFrame]] = [
            pinball,
            partial(coverage, lower_col=lower),
            interval_width,
        ]
        extra: list[tuple[Callable[..., pl.DataFrame], pl.DataFrame]] = [
            (mae, q50),
            (partial(row_counts, lower_col=lower, prediction="{model}_q50"), preds),
        ]
    else:
        metric_fns = [brier, log_loss, auc, ece]
        extra = [(row_counts, preds)]
    parts = []
    for by in [(), *[(s,) for s in slices if s in preds.columns]]:
        out = [evaluate(preds, metric_fns, systems, target, "cutoff", by)]
        out += [fn(frame, systems, target, "cutoff", by) for fn, frame in extra]
        res = pl.concat(
            [o.select("cutoff", *by, "model", "metric", "value") for o in out], how="vertical_relaxed"
        )
        name = by[0] if by else "overall"
        value = pl.col(by[0]).cast(pl.String) if by else pl.lit("all")
        parts.append(
            res.select("cutoff", pl.lit(name).alias("slice"), value.alias("slice_value"), *_KEYS[3:])
        )
    return pl.concat(parts)


def fold_table(metrics: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per fold and system: test rows, censored share and `metric` (the table a backtest prints)."""
    overall = metrics.filter(pl.col("slice") == "overall")
    wide = overall.filter(pl.col("metric").is_in(["n_rows", "censored_share", metric])).pivot(
        "metric", index=["cutoff", "model"], values="value"
    )
    return wide.sort("cutoff", "model")


@dataclass(frozen=True)
class BacktestSummary:
    """The headline of a backtest.

    Attributes:
        table: ``model, metric, value, folds, test_rows``: means over the folds kept.
        flagged: ``cutoff, model, n_rows`` of the folds left out (fewer than `min_fold_rows` test rows).
        min_fold_rows: the minimum applied.
    """

    table: pl.DataFrame
    flagged: pl.DataFrame
    min_fold_rows: int

    def value(self, model: str, metric: str) -> float | None:
        """One figure of the table (None when absent)."""
        row = self.table.filter((pl.col("model") == model) & (pl.col("metric") == metric))
        return None if row.is_empty() or row["value"][0] is None else float(row["value"][0])

    def scores(self, metric: str) -> dict[str, float]:
        """`metric` per system."""
        rows = self.table.filter((pl.col("metric") == metric) & pl.col("value").is_not_null())
        return dict(zip(rows["model"], rows["value"], strict=True))


def summarize_backtest(metrics: pl.DataFrame, min_fold_rows: int = 1) -> BacktestSummary:
    """Mean over folds of each overall (system, metric), on folds with at least `min_fold_rows` test rows.

    Raises:
        BacktestTooSmall: when no fold of any system has `min_fold_rows` test rows.
    """
    overall = metrics.filter(pl.col("slice") == "overall")
    rows = overall.filter(pl.col("metric") == "n_rows").select("cutoff", "model", pl.col("value").alias("n"))
    if rows.is_empty():  # metrics without row counts: every fold counts
        rows = overall.select("cutoff", "model").unique().with_columns(n=pl.lit(float(min_fold_rows)))
    # a fold counts for every system or for none: the systems are compared on the same folds
    small = rows.filter(pl.col("n") < min_fold_rows).select("cutoff").unique()
    kept = rows.join(small, on="cutoff", how="anti")
    flagged = rows.join(small, on="cutoff", how="semi").rename({"n": "n_rows"}).sort("cutoff", "model")
    if kept.is_empty():
        folds = ", ".join(f"{r['cutoff']:%Y-%m-%d}: {r['n_rows']:.0f}" for r in flagged.head(6).to_dicts())
        raise BacktestTooSmall(
            f"every backtest fold has fewer than {min_fold_rows} test rows ({folds}): a mean over so few "
            "rows says nothing. Use longer folds (--fold-days), fewer folds (--folds) or more history"
        )
    table = (
        overall.join(kept, on=["cutoff", "model"], how="inner")
        .group_by("model", "metric")
        .agg(
            pl.col("value").mean(),
            pl.len().alias("folds"),
            pl.col("n").sum().cast(pl.Int64).alias("test_rows"),
        )
        .sort("metric", "model")
    )
    return BacktestSummary(table, flagged, min_fold_rows)
