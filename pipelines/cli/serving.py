"""Stage: command line, serving: `snapshot`, `score` (batch scoring) and `serve` (the HTTP API).

Commands register on this module's `app`, which `pipelines.cli.main` adds to the root; heavy libraries are
imported inside each command. Where the models, forecasts, scores and the MLflow registry are comes from the
project settings (`pipelines.config`: `--config`, `--data-dir`, `--outputs-dir`, `--mlflow-dir` or their
environment variables, `MLFLOW_TRACKING_URI`) and the catalog, through `serving_paths`; serving itself never
guesses a path. `app_from_env` is the factory `transitcast serve`
gives uvicorn (one per worker process).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pipelines.cli.session import console, settings_of
from pipelines.cli.session import fail as _fail
from pipelines.cli.session import step as _step
from pipelines.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from serving.http.settings import ApiSettings

__all__ = ["ServingPaths", "api_settings", "app", "app_from_env", "serving_paths"]

app = typer.Typer()

_REJECTS_HINT = (
    "fix these rows, or pass --rejects FILE to score the valid rows and write the rejected ones there"
)


@dataclass(frozen=True)
class ServingPaths:
    """Where the serving commands read and write, resolved from the project settings.

    Attributes:
        validated_dir: validated contract tables (the snapshot's input).
        models_dir: models + feature snapshot written by training.
        forecasts_dir: weekly demand forecasts (`<YYYY-Www>/forecast.parquet`).
        scores_dir: default folder of `transitcast score` outputs.
        tracking_uri: the MLflow registry training writes to.
    """

    validated_dir: Path
    models_dir: Path
    forecasts_dir: Path
    scores_dir: Path
    tracking_uri: str


def serving_paths(settings: Settings | None = None) -> ServingPaths:
    """The serving paths of `settings` (default: from the environment), from the catalog."""
    settings = settings or Settings()
    outputs = settings.catalog.outputs
    return ServingPaths(
        validated_dir=settings.catalog.data.validated,
        models_dir=outputs.models,
        forecasts_dir=outputs.forecasts,
        scores_dir=outputs.scores,
        tracking_uri=settings.tracking.tracking_uri,
    )


def api_settings() -> ApiSettings:
    """`ApiSettings()` from `TRANSITCAST_API_*`, with the paths it leaves unset taken from `serving_paths`."""
    from serving.http.settings import ApiSettings

    settings = ApiSettings()
    paths = serving_paths()
    defaults = {
        "models_dir": paths.models_dir,
        "forecasts_dir": paths.forecasts_dir,
        "mlflow_tracking_uri": paths.tracking_uri,
    }
    return settings.model_copy(update={k: v for k, v in defaults.items() if getattr(settings, k) is None})


def app_from_env() -> FastAPI:
    """`create_app(api_settings())`: the factory `transitcast serve` gives uvicorn."""
    from serving.http.app import create_app

    return create_app(api_settings())


@app.command()
def snapshot(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data root holding validated/ (default TRANSITCAST_DATA_DIR or data).")
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Models folder; the snapshot goes into snapshot/ (default <outputs>/models)."),
    ] = None,
) -> None:
    """Write the feature snapshot the Predictor reads, from validated data (no retraining).

    Training writes it too; use this after a training run made before snapshots existed.
    """
    from models.shipment_tasks import ShipmentModelsConfig
    from pipelines.flows.train_shipments import load_tables, write_feature_snapshot

    settings = settings_of(ctx)
    paths = serving_paths(settings.model_copy(update={"data_dir": data_dir}) if data_dir else settings)
    try:
        tables = load_tables(paths.validated_dir)
    except FileNotFoundError as exc:
        raise _fail(escape(str(exc))) from exc
    with _step("feature snapshot"):
        path = write_feature_snapshot(tables, ShipmentModelsConfig(), models_dir or paths.models_dir)
    console.print(f"snapshot written to [bold]{path}[/]")


def _check_zone(zone: str | None) -> None:
    if zone is None:
        return
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(
            f"--assume-timezone {zone!r} is not a time zone; use an IANA name like Europe/Berlin"
        ) from exc


@app.command()
def score(
    ctx: typer.Context,
    in_path: Annotated[Path, typer.Option("--in", help="Parquet/CSV of shipments (contract columns).")],
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Parquet/CSV to write (default <outputs>/scores/<name>_scores.parquet)."),
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="Parquet/CSV of their shipment_events (in-transit ETA).")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Local models + snapshot (default <outputs>/models).")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Load transitcast-<task>@ALIAS from MLflow instead of --models-dir.")
    ] = None,
    assume_timezone: Annotated[
        str | None,
        typer.Option(
            "--assume-timezone",
            metavar="ZONE",
            help="Read timestamps written without a UTC offset in this IANA zone (e.g. Europe/Berlin).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Score the valid rows and write rejected ones here (default: stop at a bad row)."),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (bounds memory).")] = 50_000,
    flow: Annotated[bool, typer.Option(help="Run as the Prefect flow `batch-score`.")] = False,
) -> None:
    """Score a file of shipments: ETA quantiles, p_late, customs risk, clearance, promise date.

    Every row is checked with the rules `/v1/eta` applies; nothing is written when the run fails.
    """
    import polars as pl

    from pipelines.flows.score import ModelSource, batch_score, score_file
    from serving.online.inputs import Rejects

    settings = settings_of(ctx)
    paths = serving_paths(settings)
    out = out_path or settings.catalog.outputs.score_file(in_path)
    if not in_path.exists():
        raise _fail(f"{in_path} not found")
    _check_zone(assume_timezone)
    source = ModelSource(models_dir or paths.models_dir, alias, paths.tracking_uri if alias else None)
    try:
        if flow:
            with _step("batch-score flow"):
                summary = batch_score(in_path, out, source, events, chunk_rows, assume_timezone, rejects)
        else:
            with _step("load models"):
                predictor = source.load()
            with _step(f"score {in_path}"):
                summary = score_file(
                    predictor,
                    in_path,
                    out,
                    events_path=events,
                    chunk_rows=chunk_rows,
                    assume_timezone=assume_timezone,
                    rejects_path=rejects,
                )
    except Rejects as exc:
        raise _fail(escape(f"{exc}\n{_REJECTS_HINT}; nothing was written")) from exc
    except (FileNotFoundError, ValueError, LookupError, pl.exceptions.PolarsError) as exc:
        raise _fail(escape(f"{exc}\nnothing was written")) from exc
    console.print(
        f"scored [bold]{summary.rows:,}[/] shipments ({summary.rows_per_second:,.0f}/s) -> [bold]{out}[/]"
    )
    if summary.rejected:
        console.print(f"[red]{summary.rejected:,}[/] rejected row(s) -> [bold]{summary.rejects}[/]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Uvicorn worker processes.")] = 1,
) -> None:
    """Start the HTTP API (settings from TRANSITCAST_API_* variables, see docs/serving.md)."""
    import uvicorn

    try:
        settings = api_settings()
        settings.model_source()
    except ValueError as exc:
        raise _fail(escape(str(exc))) from exc
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        raise _fail("refusing to listen beyond loopback without API keys (set TRANSITCAST_API_API_KEYS)")
    console.print(f"serving on http://{host}:{port} (docs at /docs)")
    uvicorn.run(
        "pipelines.cli.serving:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
