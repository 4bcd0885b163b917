"""Stage: command line. What every command of one `transitcast` invocation shares.

The consoles, the settings the root callback resolved (`--config`, `--data-dir`, ... over the environment),
a clean failure (a message and exit code 2, never a traceback, for a known mistake), a progress step, and
the backtest tables several command groups print. Imports nothing from the command modules, so they all
import it and `pipelines.cli.main` imports them: no cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from pipelines.config import Settings

if TYPE_CHECKING:
    from pathlib import Path

    import optuna
    import polars as pl

__all__ = ["console", "err", "fail", "log", "print_study", "print_summary", "settings_of", "step"]

console = Console(stderr=False)
err = Console(stderr=True)
log = logging.getLogger("transitcast")


def settings_of(ctx: typer.Context) -> Settings:
    """The settings of this invocation (resolved by the root callback; from the environment otherwise)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


@contextmanager
def step(title: str, fail_on: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """A spinner with elapsed time around a long step; an exception of `fail_on` types (a known mistake,
    such as a missing input) ends the command with its message and exit code 2 instead of a traceback."""
    start = time.perf_counter()
    try:
        with err.status(f"[bold]{title}[/] ..."):
            yield
    except fail_on as exc:
        raise fail(str(exc)) from exc
    err.print(f"[green]done[/] {title} ({time.perf_counter() - start:.1f} s)")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as an error; raise the returned `typer.Exit` to stop with `code`."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def print_summary(title: str, summary: pl.DataFrame, metrics: Sequence[str] | None = None) -> None:
    """A backtest summary (model, metric, value) as a metric x model table, optionally only `metrics`."""
    import polars as pl

    rows = summary if metrics is None else summary.filter(pl.col("metric").is_in(list(metrics)))
    wide = rows.pivot(on="model", index="metric", values="value").sort("metric")
    table = Table(title=title, title_justify="left")
    for col in wide.columns:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in wide.iter_rows():
        table.add_row(str(row[0]), *[f"{v:.4g}" if isinstance(v, float) else "" for v in row[1:]])
    console.print(table)


def print_study(study: optuna.Study, saved: Path, family: str) -> None:
    """The best trial of a study and where the next `train FAMILY` finds its parameters."""
    console.print(f"best {study.best_value:.5g} with {study.best_params}")
    console.print(f"saved to {saved}; `transitcast train {family}` uses it")
