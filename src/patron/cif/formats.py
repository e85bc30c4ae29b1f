"""How figures read to people, in one place: shares as percentages (money is ``cif/money.py``'s), and CSV cells
that a spreadsheet opens as text, never as a formula."""

from __future__ import annotations

from collections.abc import Iterable


def percent(share: float, spec: str = "g") -> str:
    """A share (0.2) as a percentage with a thin-space-free unit, as the pages and CLI write it: ``20 %``."""
    return f"{share * 100:{spec}} %"


# A spreadsheet reads a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that opens as text: a string starting like a formula gets a leading apostrophe; numbers and
    everything else are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    return [spreadsheet_safe(value) for value in values]
