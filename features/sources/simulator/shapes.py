"""Stage: simulate. Named shapes of the simulated world: the robustness suite of the shipment models.

Reads and writes nothing. Each shape is a few settings on top of a `SimulatorConfig` (default: the demo
world), sized so that train + backtest + score of one shape runs in a minute or two on two cores:

| shape | what differs from the default world |
|---|---|
| `six_months` | only the last six months of history |
| `small` | 5,000 shipments over the whole period |
| `domestic` | one country (US): parcels leave fulfilment centres in the country, no customs, 1-5 days |
| `no_customs_columns` | shipments without `hs_code`, `incoterm`, `declared_value_usd`, `shipping_cost_usd` |
| `fast` | every stage takes half as long (contract days and promises follow) |
| `drift` | stages get up to 30% slower over the last six months (contract days and promises do not follow) |

Every shape other than `small` has `SUITE_SHIPMENTS` shipments. The oracle keeps its 64 redraws: its
quantiles are interpolated order statistics of the draws, whose expected coverage falls short of nominal with
few draws (16 draws: P80/P95 cover ~0.76/0.90; 64: ~0.79/0.94).
`transitcast simulate --shape NAME` writes one; `bench/shipments_robust.py` runs the models on each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from features.sources.simulator.core import SimulatorConfig

__all__ = [
    "NO_CUSTOMS_COLUMNS",
    "SHAPES",
    "SUITE_SHIPMENTS",
    "Shape",
    "ShapeName",
    "shape_config",
]

ShapeName = Literal["six_months", "small", "domestic", "no_customs_columns", "fast", "drift"]
SUITE_SHIPMENTS: Final = 30_000
NO_CUSTOMS_COLUMNS: Final = ("hs_code", "incoterm", "declared_value_usd", "shipping_cost_usd")
_DOMESTIC_COUNTRY: Final = "US"
_SIX_MONTHS_DAYS: Final = 182
_FAST_SCALE: Final = 0.5
_DRIFT_SCALE, _DRIFT_DAYS = 1.3, 182


@dataclass(frozen=True)
class Shape:
    """A named world shape: what it tests and how it changes a configuration."""

    name: ShapeName
    description: str
    apply: Callable[[SimulatorConfig], SimulatorConfig]


def _ship(config: SimulatorConfig, **update: object) -> SimulatorConfig:
    return config.model_copy(update={"shipments": config.shipments.model_copy(update=update)})


def _six_months(c: SimulatorConfig) -> SimulatorConfig:
    return c.model_copy(update={"start_date": c.end_date - dt.timedelta(days=_SIX_MONTHS_DAYS)})


def _no_customs(c: SimulatorConfig) -> SimulatorConfig:
    return c.model_copy(update={"drop_columns": {**c.drop_columns, "shipments": NO_CUSTOMS_COLUMNS}})


SHAPES: Final[dict[str, Shape]] = {
    s.name: s
    for s in (
        Shape("six_months", "six months of history", _six_months),
        Shape("small", "5,000 shipments", lambda c: _ship(c, n_shipments=5_000)),
        Shape(
            "domestic",
            f"single-country domestic world ({_DOMESTIC_COUNTRY}): short transit, no customs",
            lambda c: _ship(c, domestic_country=_DOMESTIC_COUNTRY),
        ),
        Shape("no_customs_columns", f"shipments without {', '.join(NO_CUSTOMS_COLUMNS)}", _no_customs),
        Shape("fast", f"{_FAST_SCALE}x stage durations", lambda c: _ship(c, transit_scale=_FAST_SCALE)),
        Shape(
            "drift",
            f"up to {_DRIFT_SCALE}x slower over the last {_DRIFT_DAYS} days",
            lambda c: _ship(c, drift_scale=_DRIFT_SCALE, drift_days=_DRIFT_DAYS),
        ),
    )
}


def shape_config(name: str, base: SimulatorConfig | None = None) -> SimulatorConfig:
    """The configuration of shape `name`: the suite's size, then the shape, on top of `base`.

    Args:
        name: a `ShapeName`.
        base: the world to start from (default: `SimulatorConfig()`, the demo world).

    Raises:
        ValueError: unknown shape (the message lists the shapes).
    """
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
    base = base or SimulatorConfig()
    sized = _ship(base, n_shipments=SUITE_SHIPMENTS)
    return SimulatorConfig.model_validate(SHAPES[name].apply(sized).model_dump())
