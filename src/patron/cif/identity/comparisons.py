"""How two person records are compared and blocked: one definition for Splink's SQL and the real-time scorer.

Each field has ordered comparison levels (exact, then near by Jaro-Winkler similarity or Levenshtein distance, then
anything else; a missing value on either side is the null level and carries no evidence). ``splink_comparisons``
turns them into Splink comparison settings; ``levels_of`` evaluates the same levels in Python (rapidfuzz) for
one pair, so a record scored in real time gets the weight the batch run would give it.

Blocking keys say which pairs are compared at all: two records are candidates when they share any key. The keys
are columns of the record frame (computed by ``blocking_keys``), so the batch run blocks on exactly the keys the
real-time lookup stores in ``match_keys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import JaroWinkler, Levenshtein


@dataclass(frozen=True)
class Level:
    label: str
    test: str  # exact, jaro_winkler (similarity at least threshold), levenshtein (distance at most threshold)
    threshold: float = 0.0

    def sql(self, field: str) -> str:
        left, right = f'"{field}_l"', f'"{field}_r"'
        if self.test == "exact":
            return f"{left} = {right}"
        if self.test == "jaro_winkler":
            return f"jaro_winkler_similarity({left}, {right}) >= {self.threshold}"
        return f"levenshtein({left}, {right}) <= {int(self.threshold)}"

    def holds(self, left: str, right: str) -> bool:
        if self.test == "exact":
            return left == right
        if self.test == "jaro_winkler":
            return bool(JaroWinkler.similarity(left, right) >= self.threshold)
        return bool(Levenshtein.distance(left, right) <= self.threshold)


def _name() -> tuple[Level, ...]:
    return (Level("exact", "exact"), Level("Jaro-Winkler >= 0.92", "jaro_winkler", 0.92),
            Level("Jaro-Winkler >= 0.80", "jaro_winkler", 0.80))  # fmt: skip


FIELDS: dict[str, tuple[Level, ...]] = {
    "first_name": _name(),
    "last_name": _name(),
    "birth_date": (Level("exact", "exact"), Level("one character apart", "levenshtein", 1)),
    "email": (Level("exact", "exact"), Level("Jaro-Winkler >= 0.88", "jaro_winkler", 0.88)),
    "phone": (Level("exact", "exact"), Level("two digits apart", "levenshtein", 2)),
    "street": (Level("exact", "exact"), Level("Jaro-Winkler >= 0.88", "jaro_winkler", 0.88)),
    "postal_code": (Level("exact", "exact"), Level("one character apart", "levenshtein", 1)),
    "city": (Level("exact", "exact"), Level("Jaro-Winkler >= 0.88", "jaro_winkler", 0.88)),
}
NULL_LEVEL = -1  # the level index of a pair where either side is missing

# A blocking key: its name and the fields whose values, all present, make it (a field's first n characters where
# n is given: an initial, a birth year). Narrow enough that a common name does not pair thousands of records.
BLOCKING_KEYS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "full_name": (("first_name", None), ("last_name", None)),
    "last_name_initial_year": (("last_name", None), ("first_name", 1), ("birth_date", 4)),
    "first_name_initial_year": (("first_name", None), ("last_name", 1), ("birth_date", 4)),
    "first_name_birth": (("first_name", None), ("birth_date", None)),
    "last_name_birth": (("last_name", None), ("birth_date", None)),
    "birth_postcode": (("birth_date", None), ("postal_code", None)),
    "last_name_postcode": (("last_name", None), ("postal_code", None)),
    "first_name_postcode": (("first_name", None), ("postal_code", None)),
    "street_postcode": (("street", None), ("postal_code", None)),
    "email": (("email", None),),
    "phone": (("phone", None),),
}


def key_value(name: str, record: Mapping[str, Any]) -> str | None:
    """The record's value of one blocking key, or None where a field it needs is missing."""
    parts = []
    for field, length in BLOCKING_KEYS[name]:
        value = record.get(field)
        if not value:
            return None
        parts.append(str(value)[:length] if length else str(value))
    return f"{name}:" + "|".join(parts)


def blocking_keys(record: Mapping[str, Any]) -> list[str]:
    return [key for name in BLOCKING_KEYS if (key := key_value(name, record)) is not None]


def splink_comparisons() -> list[dict[str, Any]]:
    comparisons = []
    for field, levels in FIELDS.items():
        null = {
            "sql_condition": f'"{field}_l" IS NULL OR "{field}_r" IS NULL',
            "label_for_charts": "missing",
            "is_null_level": True,
        }
        rest = [{"sql_condition": level.sql(field), "label_for_charts": level.label} for level in levels]
        comparisons.append(
            {
                "output_column_name": field,
                "comparison_levels": [null, *rest, {"sql_condition": "ELSE", "label_for_charts": "different"}],
            }
        )
    return comparisons


def levels_of(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, int]:
    """Per field, the index of the first level the pair meets in ``FIELDS[field]`` (len = different, -1 = missing)."""
    found: dict[str, int] = {}
    for field, levels in FIELDS.items():
        a, b = left.get(field), right.get(field)
        if not a or not b:
            found[field] = NULL_LEVEL
            continue
        found[field] = next((i for i, level in enumerate(levels) if level.holds(str(a), str(b))), len(levels))
    return found


def level_label(field: str, index: int) -> str:
    levels = FIELDS[field]
    if index == NULL_LEVEL:
        return "missing"
    return levels[index].label if index < len(levels) else "different"


def agreed_fields(levels: Mapping[str, int]) -> list[str]:
    """The fields that agreed exactly or nearly (any level above 'different')."""
    return [field for field, index in levels.items() if 0 <= index < len(FIELDS[field])]
