"""Stage: command line. The Typer app `transitcast`: the root options and every command group, wired here.

`transitcast --help` lists every command. The command modules (`data`, `adapt`, `shipments`, `demand`,
`planning`, `serving`, `benchmarks`, `demo`) define plain functions or their own Typer app and import only
`pipelines.cli.session`; this module imports them and registers them, so nothing imports back (no cycle).
Groups: `train|backtest|tune shipments|demand` (shipments when no model family is named) and
`forecast demand` (demand by default). Heavy libraries (Prefect, MLflow, LightGBM) are imported inside the
commands that need them, so `--help` and the data commands start fast.

Root options (before the command): `--config FILE` (YAML settings; or `TRANSITCAST_CONFIG`), `--data-dir`,
`--outputs-dir`, `--mlflow-dir` (see `pipelines.config`), `--verbose`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.logging import RichHandler

from pipelines.cli import adapt, benchmarks, data, demand, demo, planning, serving, shipments
from pipelines.cli.session import err, fail
from pipelines.config import Settings, quiet_third_parties

__all__ = ["app"]

app = typer.Typer(
    name="transitcast",
    help=(
        "Forecasts and decisions for cross-border e-commerce logistics.\n\n"
        "Start here: `transitcast demo` simulates a world, ingests and versions it (what `make demo` runs).\n"
        "Bring your own data: write files named after the contract tables (docs/data-contract.md, or "
        "`transitcast contract`) into a folder and run\n"
        "`transitcast ingest --raw FOLDER --out data/validated`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML settings file (or TRANSITCAST_CONFIG).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data root (TRANSITCAST_DATA_DIR).")] = None,
    outputs_dir: Annotated[Path | None, typer.Option(help="Outputs root (TRANSITCAST_OUTPUTS_DIR).")] = None,
    mlflow_dir: Annotated[
        Path | None, typer.Option(help="Local MLflow folder (TRANSITCAST_MLFLOW_DIR).")
    ] = None,
) -> None:
    quiet_third_parties()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("httpx", "prefect", "alembic", "asyncio", "numba", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        ctx.obj = Settings.load(config, data_dir=data_dir, outputs_dir=outputs_dir, mlflow_dir=mlflow_dir)
    except ValueError as exc:
        raise fail(f"settings: {exc}") from exc


def _group(name: str, help_text: str, commands: dict[str, Callable[..., Any]], default: str) -> typer.Typer:
    """A command group whose bare invocation (`transitcast NAME`) runs its `default` command."""
    group = typer.Typer(name=name, help=help_text, add_completion=False)

    @group.callback(invoke_without_command=True)
    def _default(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            commands[default](ctx)

    for command, function in commands.items():
        group.command(command)(function)
    return group


_FAMILIES = ("shipments", "demand")
_GROUPS: dict[str, tuple[str, dict[str, Callable[..., Any]]]] = {
    "train": (
        "Backtest next to the baselines, fit, log to MLflow, register, gate.",
        dict(zip(_FAMILIES, (shipments.train, demand.train), strict=True)),
    ),
    "backtest": (
        "Comparison tables against baselines (and the oracle); no registration.",
        dict(zip(_FAMILIES, (shipments.backtest, demand.backtest), strict=True)),
    ),
    "tune": (
        "Optuna on time-ordered folds; the next `train` uses the best parameters.",
        dict(zip(_FAMILIES, (shipments.tune, demand.tune), strict=True)),
    ),
    "forecast": ("Weekly demand quantiles and sample paths (weekly-forecast).", {"demand": demand.forecast}),
}

_COMMANDS: tuple[Callable[..., Any], ...] = (
    data.simulate,
    data.ingest,
    adapt.adapt,
    data.contract,
    planning.plan,
    planning.deploy,
    demo.demo,
    benchmarks.bench,
)
for _command in _COMMANDS:
    app.command()(_command)
for _name, (_help, _commands) in _GROUPS.items():
    app.add_typer(_group(_name, _help, _commands, default=next(iter(_commands))))
app.add_typer(serving.app)

if __name__ == "__main__":  # pragma: no cover
    app()
