"""Stage: reference. Import customs policy known in advance: de minimis thresholds, duty rates, dated changes.

Reads and writes nothing. The one home of these public rules: the feature builders
(`features.customs_rules.add_de_minimis`), the routing decision (duties of an option) and the simulator
(which draws formal entries and duties from them) all read this module, so production code never imports
the simulator to learn a regulation.

Values are realistic-ish, not authoritative: thresholds are converted to USD (GB 135 GBP, EU 150 EUR,
AU 1000 AUD, ...); the US threshold falls from 800 USD to 0 on 2025-08-29 (duty 30% from then), the EU one
to 0 on 2026-07-01. A deployment on real data passes its own table (same three columns as
`de_minimis_table()`) to `add_de_minimis`, and its own rates to the routing config.

Example:
    >>> de_minimis_table().filter(pl.col("country") == "US").rows()
    [('US', datetime.date(1970, 1, 1), 800.0), ('US', datetime.date(2025, 8, 29), 0.0)]
    >>> duty_rates()["GB"]
    0.05
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import polars as pl

__all__ = [
    "DE_MINIMIS_SCHEMA",
    "EU_MEMBERS",
    "POLICY_CHANGES",
    "STANDING_REGIMES",
    "CustomsRegime",
    "PolicyChange",
    "de_minimis_table",
    "duty_rates",
    "standing_regime",
]


@dataclass(frozen=True)
class CustomsRegime:
    """The standing import rule of a destination country (before any dated change).

    Attributes:
        country: ISO-2 importing country.
        de_minimis_usd: customs value below which no duty is due (informal / low-value entry).
        duty_rate: duties on a formal entry, as a share of the declared value.
    """

    country: str
    de_minimis_usd: float
    duty_rate: float


@dataclass(frozen=True)
class PolicyChange:
    """A customs regime shift: from `date` on, new de minimis threshold (and duty rate) in `countries`."""

    countries: tuple[str, ...]
    date: dt.date
    de_minimis_usd: float
    duty_rate: float | None = None


STANDING_REGIMES: Final[tuple[CustomsRegime, ...]] = (
    CustomsRegime("US", 800.0, 0.15),
    CustomsRegime("CA", 110.0, 0.08),
    CustomsRegime("MX", 50.0, 0.2),
    CustomsRegime("GB", 170.0, 0.05),
    CustomsRegime("DE", 160.0, 0.05),
    CustomsRegime("FR", 160.0, 0.05),
    CustomsRegime("ES", 160.0, 0.05),
    CustomsRegime("IT", 160.0, 0.05),
    CustomsRegime("NL", 160.0, 0.05),
    CustomsRegime("PL", 160.0, 0.05),
    CustomsRegime("BR", 50.0, 0.6),
    CustomsRegime("CL", 41.0, 0.06),
    CustomsRegime("SA", 270.0, 0.08),
    CustomsRegime("AE", 270.0, 0.05),
    CustomsRegime("TH", 40.0, 0.1),
    CustomsRegime("MY", 115.0, 0.08),
    CustomsRegime("PH", 180.0, 0.1),
    CustomsRegime("SG", 300.0, 0.0),
    CustomsRegime("AU", 650.0, 0.05),
    CustomsRegime("NZ", 600.0, 0.05),
    CustomsRegime("RU", 215.0, 0.15),
    CustomsRegime("KZ", 215.0, 0.15),
)

EU_MEMBERS: Final = ("DE", "FR", "ES", "IT", "NL", "PL")  # the EU members among the regimes above
POLICY_CHANGES: Final[tuple[PolicyChange, ...]] = (
    PolicyChange(("US",), dt.date(2025, 8, 29), 0.0, 0.30),
    PolicyChange(EU_MEMBERS, dt.date(2026, 7, 1), 0.0),
)

DE_MINIMIS_SCHEMA = pl.Schema(
    {"country": pl.String(), "valid_from": pl.Date(), "de_minimis_usd": pl.Float64()}
)
_EPOCH = dt.date(1970, 1, 1)


def standing_regime(country: str) -> CustomsRegime:
    """The standing regime of `country` (KeyError naming the known countries otherwise)."""
    for regime in STANDING_REGIMES:
        if regime.country == country:
            return regime
    known = ", ".join(r.country for r in STANDING_REGIMES)
    raise KeyError(f"no customs regime for {country!r}; known: {known}")


def duty_rates() -> dict[str, float]:
    """ISO-2 -> standing duty rate on a formal entry."""
    return {r.country: r.duty_rate for r in STANDING_REGIMES}


@lru_cache(maxsize=1)
def de_minimis_table() -> pl.DataFrame:
    """The de minimis threshold of each destination from each date on (frames are immutable: one per process).

    Returns:
        Frame `country` (ISO-2), `valid_from` (Date, 1970-01-01 for the standing rule), `de_minimis_usd`,
        sorted by country and date.
    """
    rows = [(r.country, _EPOCH, r.de_minimis_usd) for r in STANDING_REGIMES]
    rows += [(c, p.date, p.de_minimis_usd) for p in POLICY_CHANGES for c in p.countries]
    return pl.DataFrame(rows, schema=DE_MINIMIS_SCHEMA, orient="row").sort("country", "valid_from")
