"""Money as integer minor units: the store never holds a float amount."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

# ISO 4217 minor-unit exponents that differ from the usual 2.
EXPONENT_EXCEPTIONS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def minor_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (USD 2, JPY 0, KWD 3)."""
    return EXPONENT_EXCEPTIONS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """Convert an exact decimal amount to minor units; refuses amounts finer than the minor unit."""
    scaled = amount.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_exponent(currency))


def format_money(minor: int | None, currency: str | None) -> str:
    """``1,234.50 USD``; without a currency the amount is shown as a bare count of minor units, never guessed."""
    if minor is None:
        return ""
    if not currency:
        return f"{minor:,} (minor units, currency unknown)"
    code = currency.upper()
    return f"{from_minor(minor, code):,.{minor_exponent(code)}f} {code}"


def minor_unit(currency: str) -> int:
    """How many minor units make one major unit (USD 100, JPY 1, KWD 1000)."""
    return int(10 ** minor_exponent(currency))


def to_major(minor_units: pl.Expr, currency: str) -> pl.Expr:
    """A column of minor units as a float column of major units (the unit analyses and rules work in)."""
    import polars as pl  # noqa: PLC0415  (money is formatted where Polars is not loaded: a CLI's start)

    return minor_units.cast(pl.Float64) / minor_unit(currency)


def major_to_minor(amount: float, currency: str) -> int:
    """A float amount in major units (an analysis result, a form field) rounded to whole minor units."""
    return round(amount * minor_unit(currency))


def minor_to_major(minor: int, currency: str) -> float:
    return minor / minor_unit(currency)


def format_amount(amount: float | None, currency: str) -> str:
    """An analysis figure in major units, shown with the currency's own decimals: ``1,234.50 USD``, ``980 JPY``."""
    if amount is None:
        return ""
    return f"{amount:,.{minor_exponent(currency)}f} {currency.upper()}"
