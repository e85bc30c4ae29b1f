"""Country values as ISO 3166-1 alpha-2 codes, read with pycountry (names, official names, alpha-2 and alpha-3).

Exports name countries in many ways. A value that pycountry knows becomes its code; a common alias ("UK", "EIRE")
its country's code; a region without a code of its own ("Channel Islands", "West Indies") or an ambiguous name
("Korea") is kept as given and flagged; a placeholder ("Unspecified") or an unknown value is dropped with a reason.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import pycountry

Outcome = Literal["ok", "flagged", "dropped"]

ALIASES = {
    "uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "eire": "IE", "rsa": "ZA", "holland": "NL", "usa": "US", "u.s.a.": "US", "u.s.": "US", "uae": "AE",
    "czech republic": "CZ", "russia": "RU", "south korea": "KR", "north korea": "KP", "turkey": "TR",
}  # fmt: skip
NO_CODE = {"channel islands", "west indies", "european community", "european union", "korea", "antilles"}
PLACEHOLDERS = {"unspecified", "unknown", "n/a", "na", "none", "-", "?", "other"}


@lru_cache(maxsize=4096)
def normalise_country(value: str) -> tuple[str | None, Outcome, str | None]:
    """(value to store, outcome, reason): the ISO code, the value as given (flagged), or nothing (dropped)."""
    key = " ".join(value.split()).lower()
    if key in ALIASES:
        return ALIASES[key], "ok", None
    if key in NO_CODE:
        return value, "flagged", "a region or ambiguous name with no ISO 3166 code of its own: kept as given"
    if key in PLACEHOLDERS:
        return None, "dropped", "a placeholder, not a country"
    try:
        return pycountry.countries.lookup(key).alpha_2, "ok", None
    except LookupError:
        return None, "dropped", "not a country name or ISO 3166 code"
