"""How figures read to people, in one place: shares as percentages (money is ``cif/money.py``'s), and CSV cells
that a spreadsheet opens as text, never as a formula."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal


def percent(share: float | None, spec: str = "g") -> str:
    """A share (0.2) as a percentage with a thin-space-free unit, as the pages and CLI write it: ``20 %``."""
    return "" if share is None else f"{share * 100:{spec}} %"


def count(number: int | None) -> str:
    """A count with thousands separators (``12,345``); nothing for a count not known."""
    return "" if number is None else f"{number:,}"


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 order``, ``2 orders``, ``1,204 customers``."""
    return f"{number:,} {noun if number == 1 else (plural or noun + 's')}"


def when(moment: dt.datetime | dt.date | None) -> str:
    """A time to the minute (``2026-12-03 01:40``), a day as itself (a midnight too: an order dated, not timed),
    ``never`` for none: no microseconds."""
    if moment is None:
        return "never"
    if isinstance(moment, dt.datetime):
        return moment.strftime("%Y-%m-%d" if moment.time() == dt.time() else "%Y-%m-%d %H:%M")
    return moment.isoformat()


def quantity(number: object) -> str:
    """A quantity as people write it: ``9``, ``2.5``, never ``9.0000``."""
    if number is None:
        return ""
    text = f"{float(str(number)):,.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


LABELS = {"birth_year": "Born in", "birth_date": "Born on", "income_minor": "Income",
          "teens_at_home": "Teenagers at home"}  # fmt: skip


def label(name: str) -> str:
    """A field's name as people read it: ``income_minor`` → ``Income``, ``store_purchases`` → ``Store purchases``."""
    if name in LABELS:
        return LABELS[name]
    words = name.removesuffix("_minor").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def figure(value: object, name: str = "") -> str:
    """A stored value as people read it: ``12.5`` not ``12.500000`` (stored text too), ``yes``/``no``, days as
    ``2024-01-31``, a year (a field named ``…year``) without a thousands separator."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _text_figure(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value) if name.endswith("year") else f"{value:,}"
    if isinstance(value, float | Decimal):
        number = float(value)
        return quantity(number) if abs(number) >= 0.01 or number == 0 else f"{number:.2g}"
    if isinstance(value, dt.date):
        return when(value)
    return str(value)


def _text_figure(text: str) -> str:
    """An attribute stored as text: ``true``/``false`` as yes/no, a number as a number, anything else as is."""
    if text in ("true", "false"):
        return "yes" if text == "true" else "no"
    try:
        number = float(text)
    except ValueError:
        return text
    return text if math.isnan(number) else figure(number)


def p_value(p: float | None) -> str:
    """A p-value as people read it: two significant digits, ``< 0.001`` below that (never ``1.52e-13``)."""
    if p is None:
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


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
