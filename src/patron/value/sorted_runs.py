"""The per-customer aggregation for transactions already in (customer, day) order, as runs over numpy arrays.

Order lines read from the store come sorted by customer and time (the orders index gives that order for free), and
many files are written that way. Then each customer-day and each customer is a contiguous run, and every figure is
one ``np.add/minimum/maximum.reduceat`` over the run starts: no hashing. ``summary.purchase_summary`` checks the
order and falls back to Polars' group-by otherwise; ``tests/test_value_models.py`` checks both give the same frame
and ``bench/bench_value.py`` measures it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from numpy.typing import NDArray

EPOCH = dt.date(1970, 1, 1)
BIG = np.iinfo(np.int64).max


def is_sorted(transactions: pl.DataFrame) -> bool:
    customers = transactions["customer_id"].to_numpy()
    days = transactions["day"].to_physical().to_numpy()
    if len(customers) < 2:
        return True
    same = customers[1:] == customers[:-1]
    return bool(np.all((customers[1:] > customers[:-1]) | (same & (days[1:] >= days[:-1]))))


def _starts(*keys: NDArray[np.int64]) -> NDArray[np.int64]:
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def aggregate_sorted(transactions: pl.DataFrame, end: dt.date, amounts: list[str]) -> pl.DataFrame:
    """The same columns as the Polars aggregation in ``summary._per_customer``, from sorted transactions."""
    customers = transactions["customer_id"].to_numpy().astype(np.int64)
    days = transactions["day"].to_physical().to_numpy().astype(np.int64)
    day_starts = _starts(customers, days)
    revenue = np.add.reduceat(transactions["revenue"].to_numpy(), day_starts)  # exact per day: no running total
    day_customer, day = customers[day_starts], days[day_starts]
    sums: dict[str, NDArray[np.float64]] = {}
    known: dict[str, NDArray[np.int64]] = {}
    for name in amounts:
        values = transactions[name].to_numpy().astype(np.float64)
        present = ~np.isnan(values)
        sums[name] = np.add.reduceat(np.where(present, values, 0.0), day_starts)
        known[name] = np.add.reduceat(present.astype(np.int64), day_starts)

    end_day = (end - EPOCH).days
    in_calibration = day <= end_day
    occasion = in_calibration & (revenue >= 0)
    later = ~in_calibration & (revenue >= 0)
    starts = _starts(day_customer)
    index = np.arange(len(day), dtype=np.int64)
    first_index = np.minimum.reduceat(np.where(occasion, index, BIG), starts)
    has_occasion = first_index != BIG
    first_day = np.where(has_occasion, day[np.where(has_occasion, first_index, 0)], 0)
    last_day = np.maximum.reduceat(np.where(occasion, day, -1), starts)
    columns: dict[str, object] = {
        "customer_id": day_customer[starts],
        "seen_in_calibration": np.add.reduceat(in_calibration.astype(np.int64), starts) > 0,
        "first_purchase": pl.Series(first_day, dtype=pl.Int32)
        .cast(pl.Date)
        .scatter(np.flatnonzero(~has_occasion), None),
        "last_purchase": pl.Series(last_day, dtype=pl.Int32).cast(pl.Date).scatter(np.flatnonzero(~has_occasion), None),
        "occasions": np.add.reduceat(occasion.astype(np.int64), starts),
        "occasion_revenue": np.add.reduceat(np.where(occasion, revenue, 0.0), starts),
        "first_revenue": np.where(has_occasion, revenue[np.where(has_occasion, first_index, 0)], np.nan),
        "revenue": np.add.reduceat(np.where(in_calibration, revenue, 0.0), starts),
        "return_days": np.add.reduceat((in_calibration & (revenue < 0)).astype(np.int64), starts),
        "frequency_holdout": np.add.reduceat(later.astype(np.int64), starts),
        "revenue_holdout": np.add.reduceat(np.where(later, revenue, 0.0), starts),
    }
    for name in amounts:
        columns[name] = np.add.reduceat(np.where(in_calibration, sums[name], 0.0), starts)
        columns[f"{name}__known"] = np.add.reduceat(np.where(in_calibration, known[name], 0), starts)
    return pl.DataFrame(columns).with_columns(pl.col("first_revenue").fill_nan(None))
