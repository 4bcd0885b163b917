"""Stage: simulator (overseas-warehouse side). The product categories of the overseas-warehouse catalogue.

Reads nothing from disk and writes nothing. `CATEGORIES` holds, per category, its share of the catalogue,
HS codes, median list price and unit weight, yearly seasonality, response to the e-commerce peaks and the
Christmas run-up, and mean price elasticity; `features.sources.simulator.demand` draws SKUs from it.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = ["CATEGORIES"]


class _Category(NamedTuple):
    share: float
    hs_codes: tuple[str, ...]
    price_usd: float  # median list price
    weight_kg: float  # median unit weight
    season: tuple[float, float, float, float]  # yearly amplitude, peak day, half-year amplitude, peak day
    weather: bool  # seasonality follows the weather (opposite in the southern hemisphere)
    peak_sensitivity: float  # response to 11.11 and Black Friday / Cyber Monday
    gift_sensitivity: float  # response to the Christmas run-up
    elasticity: float  # mean price elasticity of demand


CATEGORIES: Final[dict[str, _Category]] = {
    "electronics_accessories": _Category(
        0.20,
        ("851830", "850440", "854442", "847330"),
        14.0,
        0.15,
        (0.08, 335, 0.0, 0),
        False,
        1.25,
        1.2,
        -2.2,
    ),
    "home_kitchen": _Category(
        0.16, ("392410", "732393", "821192", "630260"), 16.0, 0.6, (0.10, 340, 0.0, 0), False, 0.9, 0.9, -1.8
    ),
    "apparel": _Category(
        0.15,
        ("610910", "611030", "620462", "640299"),
        18.0,
        0.35,
        (0.25, 330, 0.15, 165),
        True,
        1.0,
        0.8,
        -2.0,
    ),
    "toys": _Category(
        0.10, ("950300", "950490", "950510"), 15.0, 0.4, (0.12, 345, 0.0, 0), False, 1.2, 2.2, -1.8
    ),
    "beauty": _Category(
        0.10, ("330499", "330510", "960329"), 11.0, 0.12, (0.05, 350, 0.0, 0), False, 1.1, 1.0, -1.6
    ),
    "sports_outdoor": _Category(
        0.11, ("950691", "950662", "630622", "420292"), 24.0, 0.9, (0.35, 170, 0.10, 10), True, 0.8, 0.6, -1.9
    ),
    "garden": _Category(
        0.08, ("820190", "842482", "940549", "691390"), 20.0, 1.1, (0.80, 130, 0.0, 0), True, 0.35, 0.2, -1.5
    ),
    "pet_supplies": _Category(
        0.10, ("420100", "392490", "940490"), 12.0, 0.5, (0.06, 200, 0.0, 0), False, 0.8, 0.7, -1.4
    ),
}
