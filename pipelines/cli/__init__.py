"""Stage: command line. The Typer app `transitcast` (commands register from the submodules)."""

from pipelines.cli.main import app

__all__ = ["app"]
