"""Stage: command line. The Typer app `transitcast` (`pipelines.cli.main` wires every command group)."""

from pipelines.cli.main import app

__all__ = ["app"]
