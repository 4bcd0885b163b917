"""Stage: simulate. A seeded cross-border e-commerce world that writes the raw files a user would bring.

`simulate(SimulatorConfig(...))` returns the raw contract tables and the oracle; `write_world` writes them.
The public names are loaded on first use (see `features.sources.simulator.core`), so importing one side of the
simulator (`features.sources.simulator.demand`) does not import the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features.sources.simulator.core import (
        FileFormat,
        SimulatedWorld,
        SimulatorConfig,
        simulate,
        write_world,
    )

__all__ = ["FileFormat", "SimulatedWorld", "SimulatorConfig", "simulate", "write_world"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from features.sources.simulator import core

        return getattr(core, name)
    raise AttributeError(f"module 'features.sources.simulator' has no attribute {name!r}")
