"""Stage: ingest (mapping-file adapter). Country names in several languages -> ISO 3166-1 alpha-2.

Reads nothing but `pycountry`'s own data (its ISO 3166-1 names and their gettext translations). Used by
`features.sources.mapping` for the `country:` rule of a mapping file.

A name is looked up, in order: the mapping file's own aliases; an exact match (ignoring case, accents,
apostrophe style and spacing) against the ISO-2 and ISO-3 codes, the English short, official and common
names and their translations in the chosen languages; the contract's shared aliases and English lookup
(`features.contract.countries.country_code`); finally `pycountry.countries.search_fuzzy`, which decides
between *ambiguous* (several countries match, e.g. `Korea`) and *unknown* (none does).
"""

from __future__ import annotations

import gettext
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pycountry

from features.contract.countries import country_code

__all__ = ["CountryMatch", "available_languages", "lookup_country", "normalize_name"]

MatchKind = Literal["alias", "exact", "contract", "fuzzy", "ambiguous", "unknown"]
_DOMAIN = "iso3166-1"
_NAME_FIELDS = ("name", "official_name", "common_name")


@dataclass(frozen=True)
class CountryMatch:
    """The outcome of looking up one name.

    Attributes:
        code: ISO-2 code, None when the name is ambiguous or unknown.
        kind: how it was found (or why not).
        candidates: ISO-2 codes that matched when the name is ambiguous.
    """

    code: str | None
    kind: MatchKind
    candidates: tuple[str, ...] = ()


def normalize_name(name: str) -> str:
    """Case-, accent-, apostrophe- and space-insensitive form of a country name.

    Examples:
        >>> normalize_name("  Côte d’Ivoire "), normalize_name("VIET  NAM")
        ("cote d'ivoire", 'viet nam')
    """
    text = unicodedata.normalize("NFKD", name.replace("\u2019", "'").replace("`", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


@lru_cache(maxsize=1)
def available_languages() -> frozenset[str]:
    """Languages with an ISO 3166-1 translation in `pycountry`, plus `en` (the names themselves)."""
    root = Path(pycountry.LOCALES_DIR)
    found = {p.name for p in root.iterdir() if (p / "LC_MESSAGES" / f"{_DOMAIN}.mo").is_file()}
    return frozenset(found | {"en"})


@lru_cache(maxsize=16)
def _index(languages: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """Normalized name -> ISO-2 codes it names, over the codes, English names and their translations."""
    translators = [
        gettext.translation(_DOMAIN, pycountry.LOCALES_DIR, languages=[lang])
        for lang in languages
        if lang != "en"
    ]
    index: dict[str, set[str]] = {}
    for country in pycountry.countries:
        code = str(country.alpha_2)
        names = {code, str(country.alpha_3)}
        english = [str(getattr(country, f)) for f in _NAME_FIELDS if getattr(country, f, None)]
        names.update(english)
        for translator in translators:
            names.update(translator.gettext(n) for n in english)
        for n in names:
            index.setdefault(normalize_name(n), set()).add(code)
    return {k: frozenset(v) for k, v in index.items()}


def lookup_country(
    name: str, languages: tuple[str, ...] = ("en",), aliases: Mapping[str, str] | None = None
) -> CountryMatch:
    """Look up the ISO-2 code of a country name written in one of `languages`.

    Args:
        name: the name as written in the source (`Deutschland`, `Côte d'Ivoire`, `Viet Nam`, `DE`, `DEU`).
        languages: pycountry locale names (`en`, `de`, `fr`, `es`, `pt_BR`, ...) the names may be written in.
        aliases: the mapping file's own names -> ISO-2 codes, checked first (keys compared normalized).

    Returns:
        The match; `code` is None when the name is ambiguous (`candidates` lists the countries) or unknown.

    Examples:
        >>> lookup_country("Deutschland", ("en", "de")).code, lookup_country("Korea").kind
        ('DE', 'ambiguous')
    """
    key = normalize_name(name)
    if not key:
        return CountryMatch(None, "unknown")
    for alias, code in (aliases or {}).items():
        if normalize_name(alias) == key:
            return CountryMatch(code.upper(), "alias")
    codes = _index(tuple(languages)).get(key, frozenset())
    if len(codes) == 1:
        return CountryMatch(next(iter(codes)), "exact")
    if len(codes) > 1:
        return CountryMatch(None, "ambiguous", tuple(sorted(codes)))
    shared = country_code(name)
    if shared is not None:
        return CountryMatch(shared, "contract")
    try:
        found = pycountry.countries.search_fuzzy(name)
    except LookupError:
        return CountryMatch(None, "unknown")
    if len(found) == 1:  # pragma: no cover - country_code already accepts a unique fuzzy match
        return CountryMatch(str(found[0].alpha_2), "fuzzy")
    return CountryMatch(None, "ambiguous", tuple(sorted(str(c.alpha_2) for c in found)))
