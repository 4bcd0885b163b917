"""Stage: command line, demand forecasting: `forecast demand`; `train|backtest|tune demand` dispatch here.

Commands register on `pipelines.cli.app`; heavy libraries are imported inside each command.
"""

from __future__ import annotations

from pipelines.cli import _fail, _step, app, console  # noqa: F401

__all__: list[str] = []
