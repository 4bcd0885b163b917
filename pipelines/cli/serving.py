"""Stage: command line, serving: `snapshot`, `score` (batch scoring) and `serve` (the HTTP API).

Commands register on this module's `app`, which `pipelines.cli.main` adds to the root; heavy libraries are
imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.session import console
from pipelines.cli.session import fail as _fail
from pipelines.cli.session import step as _step

__all__ = ["app"]

app = typer.Typer()


@app.command()
def snapshot(
    data_dir: Annotated[Path, typer.Option(help="Data root holding validated/.")] = Path("data"),
    models_dir: Annotated[Path, typer.Option(help="Models folder; the snapshot goes into snapshot/.")] = Path(
        "outputs/models"
    ),
) -> None:
    """Write the feature snapshot the Predictor reads, from validated data (no retraining).

    Training writes it too; use this after a training run made before snapshots existed.
    """
    from models.shipment_tasks import ShipmentModelsConfig
    from pipelines.flows.train_shipments import load_tables, write_feature_snapshot

    try:
        tables = load_tables(data_dir / "validated")
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    with _step("feature snapshot"):
        path = write_feature_snapshot(tables, ShipmentModelsConfig(), models_dir)
    console.print(f"snapshot written to [bold]{path}[/]")


@app.command()
def score(
    in_path: Annotated[Path, typer.Option("--in", help="Parquet/CSV of shipments (contract columns).")],
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Parquet/CSV to write (default outputs/scores/<name>.parquet)."),
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="Parquet/CSV of their shipment_events (in-transit ETA).")
    ] = None,
    models_dir: Annotated[Path, typer.Option(help="Local models + snapshot.")] = Path("outputs/models"),
    alias: Annotated[
        str | None, typer.Option(help="Load transitcast-<task>@ALIAS from MLflow instead of --models-dir.")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (bounds memory).")] = 50_000,
    flow: Annotated[bool, typer.Option(help="Run as the Prefect flow `batch-score`.")] = False,
) -> None:
    """Score a file of shipments: ETA quantiles, p_late, customs risk, clearance, promise date."""
    out = out_path or Path("outputs/scores") / f"{in_path.stem}_scores.parquet"
    if not in_path.exists():
        raise _fail(f"{in_path} not found")
    try:
        if flow:
            from pipelines.flows.score import batch_score

            with _step("batch-score flow"):
                result = batch_score(in_path, out, models_dir, alias, events, chunk_rows)
            rows, rate = result["rows"], result["rows_per_second"]
        else:
            from pipelines.flows.score import score_file
            from serving.online.predictor import Predictor

            with _step("load models"):
                predictor = (
                    Predictor.from_registry(alias, num_threads=2)
                    if alias
                    else Predictor.from_dir(models_dir, num_threads=2)
                )
            with _step(f"score {in_path}"):
                summary = score_file(predictor, in_path, out, events_path=events, chunk_rows=chunk_rows)
            rows, rate = summary.rows, summary.rows_per_second
    except (FileNotFoundError, ValueError, LookupError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"scored [bold]{rows:,}[/] shipments ({rate:,.0f}/s) -> [bold]{out}[/]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Uvicorn worker processes.")] = 1,
) -> None:
    """Start the HTTP API (settings from TRANSITCAST_API_* variables, see docs/serving.md)."""
    import uvicorn

    from serving.http.settings import ApiSettings

    try:
        settings = ApiSettings()
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        raise _fail("refusing to listen beyond loopback without API keys (set TRANSITCAST_API_API_KEYS)")
    console.print(f"serving on http://{host}:{port} (docs at /docs)")
    uvicorn.run(
        "serving.http.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
