"""How figures read on the pages and in the CLI: one place (cif/formats.py), so no page shows minor units,
six decimals, 1.52e-13 or microseconds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from patron.cif.formats import count, counted, figure, label, p_value, percent, quantity, when


def test_figures_read_as_people_write_them() -> None:
    assert (count(1234567), count(None)) == ("1,234,567", "")
    assert (counted(1, "order"), counted(2, "order"), counted(1204, "customer")) == (
        "1 order", "2 orders", "1,204 customers")  # fmt: skip
    assert (percent(0.1), percent(None)) == ("10 %", "")
    assert (p_value(1.52e-13), p_value(0.04321), p_value(None)) == ("< 0.001", "0.043", "")
    assert (quantity(9.0), quantity(2.5), quantity("3.0000"), quantity(None)) == ("9", "2.5", "3", "")
    assert (figure(12.5), figure(1.0), figure(True), figure(1234), figure(None)) == ("12.5", "1", "yes", "1,234", "")
    assert (figure(Decimal("3.000000")), figure("nan")) == ("3", "nan")
    assert (figure("10.000000"), figure("false"), figure("Graduation"), figure(1957, "birth_year")) == (
        "10", "no", "Graduation", "1957")  # fmt: skip


def test_times_to_the_minute_and_days_as_days() -> None:
    assert when(dt.datetime(2026, 12, 3, 1, 40, 12, 123456)) == "2026-12-03 01:40"
    assert when(dt.datetime(1998, 6, 30)) == "1998-06-30"  # an order dated, not timed
    assert when(dt.date(2024, 1, 31)) == "2024-01-31"
    assert when(None) == "never"


def test_field_names_read_as_labels() -> None:
    assert (label("income_minor"), label("store_purchases"), label("birth_year")) == (
        "Income", "Store purchases", "Born in")  # fmt: skip
