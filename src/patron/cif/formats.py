"""How figures read to people, in one place: shares as percentages (money is ``cif/money.py``'s)."""

from __future__ import annotations


def percent(share: float, spec: str = "g") -> str:
    """A share (0.2) as a percentage with a thin-space-free unit, as the pages and CLI write it: ``20 %``."""
    return f"{share * 100:{spec}} %"
