"""Stage: command line, decisions: `plan` (restock plan, routing, planner report) and `deploy` (schedule).

Commands register on `pipelines.cli.app`; heavy libraries are imported inside each command.
"""

from __future__ import annotations

from pipelines.cli import _fail, _step, app, console  # noqa: F401

__all__: list[str] = []
