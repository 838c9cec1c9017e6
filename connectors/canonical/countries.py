"""Country spellings as ISO 3166 alpha-2 codes: aliases, then ISO names and codes, then fuzzy matching.

"Philipines" maps (a typo of an ISO name); "Korea" maps through the shipped aliases
(`[prepare.country_aliases]`); a value that fits two countries equally well ("Virgin Islands")
is reported with its candidates and left without a code, never guessed.
Works per distinct spelling.
"""

from __future__ import annotations

from functools import cache, lru_cache

import polars as pl
import pycountry
from rapidfuzz import fuzz, process

CODES = {"country_in": pl.String, "country_code": pl.String, "country_note": pl.String}
THRESHOLD = 85.0  # of 100: rapidfuzz's normalised edit distance ("philipines" ~ "philippines" is 95)
_TIE = 3.0  # two countries closer than this are ambiguous


def country_codes(values: pl.Series, aliases: dict[str, str]) -> pl.DataFrame:
    """Per distinct spelling (`CODES`): its ISO alpha-2 code, or null and a note saying why."""
    distinct = values.drop_nulls().unique().to_list()
    alias = {k.strip().lower(): v.upper() for k, v in aliases.items()}
    rows = [(v, *_code(v, alias)) for v in distinct]
    return pl.DataFrame(rows, schema=CODES, orient="row")


def _code(value: str, aliases: dict[str, str]) -> tuple[str | None, str | None]:
    key = " ".join(value.strip().lower().split())
    if not key:
        return None, None
    if key in aliases:
        return aliases[key], None
    return _lookup(key)


@lru_cache(maxsize=4096)
def _lookup(key: str) -> tuple[str | None, str | None]:
    try:
        return str(pycountry.countries.lookup(key).alpha_2), None
    except LookupError:
        pass
    names = _names()
    candidates = process.extract(key, list(names), scorer=fuzz.ratio, limit=8)
    codes: dict[str, float] = {}
    for name, score, _ in candidates:
        codes.setdefault(names[name], score)
    contained = sorted({code for name, code in names.items() if _words_within(key, name)})
    ranked = sorted(codes.items(), key=lambda item: -item[1])
    if ranked and ranked[0][1] >= THRESHOLD:
        if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < _TIE:
            return None, _ambiguous(key, [code for code, _ in ranked[:2]])
        return ranked[0][0], None
    if len(contained) == 1:
        return contained[0], None
    if len(contained) > 1:
        return None, _ambiguous(key, contained)
    return None, f"country '{key}' is not a country leadq knows (add it to [prepare.country_aliases])"


def _ambiguous(key: str, codes: list[str]) -> str:
    shown = ", ".join(codes[:4])
    return f"country '{key}' is ambiguous ({shown}); set it in [prepare.country_aliases]"


def _words_within(key: str, name: str) -> bool:
    """'virgin islands' is within 'virgin islands, british': every word of the value is a word of the name."""
    words = set(name.replace(",", " ").split())
    return set(key.split()) <= words


@cache
def _names() -> dict[str, str]:
    """Every ISO name, official name and common name, lower-cased, with its alpha-2 code."""
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                names[name.lower()] = str(country.alpha_2)
    return names
