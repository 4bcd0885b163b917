"""Stage: command line, decisions: `plan` (restock plan, planner report) and `deploy` (weekly schedule).

Thin wiring over `pipelines.flows.plan`. Reads the validated tables, the week's forecast folder and an
optional restock calibration JSON; writes the plan exports and the report at the catalog's paths. Heavy
libraries are imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.cli.session import console, fail, settings_of, step

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.flows.plan import WeeklyPlan

__all__ = ["deploy", "plan", "run_plan"]


def run_plan(
    settings: Settings,
    week: str | None = None,
    forecast_dir: Path | None = None,
    budget_usd: float | None = None,
    calibration: Path | None = None,
) -> WeeklyPlan:
    """Run the weekly-plan flow and print where the exports and the report are."""
    from pipelines.flows.plan import weekly_plan
    from serving.decisions.restock import RestockConfig

    if calibration is not None and not calibration.is_file():
        raise fail(f"{calibration}: no such calibration file")
    try:
        config = (
            RestockConfig.from_json(calibration, budget_usd=budget_usd)
            if calibration is not None
            else RestockConfig(budget_usd=budget_usd)
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with step(f"flow weekly-plan {week or '(next week)'}", fail_on=(FileNotFoundError, ValueError)):
        result = weekly_plan(week=week, settings=settings, forecast_dir=forecast_dir, config=config)
    console.print(f"plan exports: {result.exports}")
    console.print(f"planner report: [bold]{result.report}[/]")
    return result


def plan(
    ctx: typer.Context,
    week: Annotated[
        str | None, typer.Option(help="Plan week YYYY-Www (default: the week after the last sales date).")
    ] = None,
    forecast_dir: Annotated[
        Path | None,
        typer.Option(help="Use this weekly-forecast folder instead of the catalog's one for the week."),
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Cap on purchase value + freight of this week's orders.")
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Service calibration JSON (target -> quantile level per volume band), learned by the "
            "calibrate-restock flow (<outputs>/calibration/restock.json); default: uncalibrated."
        ),
    ] = None,
) -> None:
    """Weekly restock plan and planner report (flow weekly-plan).

    Writes <outputs>/plans/WEEK (plan.parquet, plan.csv, orders.csv, warehouses.csv) and
    <outputs>/reports/WEEK/report.html.
    """
    run_plan(settings_of(ctx), week, forecast_dir, budget_usd, calibration)


def deploy(
    cron: Annotated[str, typer.Option(help="Cron schedule of the weekly plan.")] = "0 6 * * 1",
    name: Annotated[str, typer.Option(help="Deployment name.")] = "weekly-plan",
    timezone: Annotated[str, typer.Option(help="Time zone of the cron schedule.")] = "UTC",
) -> None:
    """Serve the weekly-plan flow on a schedule against a Prefect server (blocks; Ctrl-C stops).

    Start the server first: `prefect server start --host 127.0.0.1`, then
    `PREFECT_API_URL=http://127.0.0.1:4200/api transitcast deploy`.
    """
    from pipelines.flows.plan import deploy_weekly_plan

    try:
        console.print(f"serving weekly-plan as {name!r} on cron {cron!r} ({timezone}); Ctrl-C stops")
        deploy_weekly_plan(cron=cron, name=name, timezone=timezone)
    except RuntimeError as exc:
        raise fail(str(exc)) from exc
