"""Stage: contract. ISO 3166-1 alpha-2 country codes, from `pycountry`.

Reads nothing from disk. Used by ingest (the `_country` rule) and by the source adapters to map country
names to codes.
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

__all__ = ["ISO2_CODES", "country_code"]

ISO2_CODES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)

# Names in public datasets that pycountry's fuzzy search gets wrong or does not know.
_ALIASES = {
    "côte d'ivoire": "CI",
    "cote d'ivoire": "CI",
    "congo, dem. rep. of the": "CD",
    "congo, dem. rep.": "CD",
    "congo, drc": "CD",
    "swaziland": "SZ",
    "kyrgyz republic": "KG",
    "democratic republic of the congo": "CD",
    "eire": "IE",
    "channel islands": "JE",
    "rsa": "ZA",
    "south korea": "KR",
    "russia": "RU",
    "lao": "LA",
    "laos": "LA",
    "vietnam": "VN",
    "usa": "US",
    "uk": "GB",
    "united kingdom": "GB",
}


@lru_cache(maxsize=4096)
def country_code(name: str) -> str | None:
    """ISO-2 code of a country name, code or common alias; None when it is not a country.

    Examples:
        >>> country_code("Viet Nam"), country_code("EIRE"), country_code("de"), country_code("Unspecified")
        ('VN', 'IE', 'DE', None)
    """
    key = name.strip()
    if not key:
        return None
    if key.upper() in ISO2_CODES:
        return key.upper()
    alias = _ALIASES.get(key.lower())
    if alias is not None:
        return alias if alias in ISO2_CODES else None
    for attr in ("alpha_3", "name", "official_name", "common_name"):
        found = pycountry.countries.get(**{attr: key})  # type: ignore[arg-type]
        if found is not None:
            return str(found.alpha_2)
    try:
        matches = pycountry.countries.search_fuzzy(key)
    except LookupError:
        return None
    return str(matches[0].alpha_2) if len(matches) == 1 else None
