"""Per-customer purchase summaries (frequency, recency, T, spend, margin): one compiled pass over the order lines
sorted by customer and day (``occasions.py``), then the model's figures column-wise in Polars.

A *purchase occasion* is a day on which the customer's net revenue is not negative: several orders on one day
count once (as in the buy-till-you-die literature; CDNOW's free $0 orders count too), and a day whose returns
outweigh its purchases is not a purchase, though its amounts still count in revenue, cost and margin. Time is
measured in *periods* of a fixed number of days, with day precision (the papers' weeks are days / 7).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from patron.errors import InvalidInputError
from patron.value.occasions import is_sorted, occasions

Period = Literal["D", "W", "M", "Y"]
PERIOD_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}

TRANSACTION_COLUMNS = ("customer_id", "at", "revenue")
EPOCH = dt.date(1970, 1, 1)


@dataclass
class Summary:
    """The model-ready summary plus what was left out and why, so nothing disappears silently."""

    frame: pl.DataFrame
    period: Period
    calibration_end: dt.date
    observation_end: dt.date
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def period_days(self) -> float:
        return PERIOD_DAYS[self.period]

    @property
    def has_holdout(self) -> bool:
        return self.observation_end > self.calibration_end

    @property
    def holdout_length(self) -> float:
        return (self.observation_end - self.calibration_end).days / self.period_days


def purchase_summary(
    transactions: pl.DataFrame,
    *,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
    period: Period = "W",
) -> Summary:
    """Summarise ``transactions`` (``customer_id``, ``at``, ``revenue`` and optionally ``cost``, ``margin``).

    Without ``observation_end`` the last transaction date is used; without ``calibration_end`` there is no
    holdout. Rows after ``observation_end`` (future dates), rows with no customer, date or revenue, and customers
    with no purchase occasion before ``calibration_end`` are excluded and counted in ``Summary.excluded``.
    """
    check_transactions(transactions.columns, period)
    if transactions.height == 0:
        raise InvalidInputError("there are no transactions to summarise: import orders first")

    frame = _normalise(transactions)
    excluded: dict[str, int] = {}
    complete = frame.drop_nulls(["customer_id", "day", "revenue"])
    if dropped := frame.height - complete.height:
        excluded["rows_with_missing_customer_date_or_revenue"] = dropped

    if observation_end is None:
        observation_end = _as_date(complete["day"].max())
    calibration_end = calibration_end or observation_end
    if calibration_end > observation_end:
        raise InvalidInputError(
            "the calibration period cannot end after the observation period", field="calibration_end"
        )
    in_window = complete.filter(pl.col("day") <= observation_end)
    if future := complete.height - in_window.height:
        excluded["rows_after_observation_end"] = future

    amounts = [name for name in ("cost", "margin") if in_window[name].null_count() < in_window.height]
    per_customer = customer_rows(in_window, calibration_end, PERIOD_DAYS[period], amounts)
    late = per_customer.height - int(per_customer["seen_in_calibration"].sum())
    if late:
        excluded["customers_first_seen_after_calibration_end"] = late
    without = int((per_customer["frequency"] < 0).sum()) - late  # a late customer has no occasion either
    if without:
        excluded["customers_without_a_purchase_occasion"] = without
    # Filtering copies every column, so only when somebody is left out (in most bases nobody is).
    calibration = per_customer.filter(pl.col("frequency") >= 0) if late or without else per_customer
    if calibration.height == 0:
        raise InvalidInputError("no customer has a purchase (a day with net revenue of zero or more) in the period")
    calibration = calibration.drop("seen_in_calibration")
    if observation_end <= calibration_end:
        calibration = calibration.drop("frequency_holdout", "revenue_holdout")
    return Summary(calibration.sort("customer_id"), period, calibration_end, observation_end, excluded)


def check_transactions(columns: list[str], period: str) -> None:
    """The request makes sense: the needed columns are there and the period is one we know."""
    missing = [name for name in TRANSACTION_COLUMNS if name not in columns]
    if missing:
        raise InvalidInputError(f"transactions lack the column(s) {', '.join(missing)}", field=missing[0])
    if period not in PERIOD_DAYS:
        raise InvalidInputError(f"unknown period {period!r}; use one of {', '.join(PERIOD_DAYS)}", field="period")


def customer_rows(
    transactions: pl.DataFrame, calibration_end: dt.date, period_days: float, amounts: list[str]
) -> pl.DataFrame:
    """Every figure of every customer in ``transactions`` (normalised, complete, within the observation window).

    Customers never seen before ``calibration_end`` have ``seen_in_calibration`` false, and those without a
    purchase occasion frequency −1: the caller counts and drops both. Only the ``amounts`` (cost, margin) somebody
    recorded are aggregated; the others stay, as nulls. Each customer's rows must all be in ``transactions``, so
    the Spark path can call this on one partition of customers at a time.
    """
    unknown = [name for name in ("cost", "margin") if name not in amounts]
    per_customer = _per_customer(transactions.drop(unknown), calibration_end, period_days)
    return per_customer.with_columns(pl.lit(None, dtype=pl.Float64).alias(name) for name in unknown)


def normalise_transactions(transactions: pl.DataFrame) -> pl.DataFrame:
    """customer_id, day (a date), revenue, cost, margin (float; margin = revenue − cost where not given)."""
    return _normalise(transactions)


def _normalise(transactions: pl.DataFrame) -> pl.DataFrame:
    columns = transactions.columns
    day = pl.col("at")
    if transactions.schema["at"] != pl.Date:
        day = day.cast(pl.Date)
    revenue = pl.col("revenue").cast(pl.Float64)
    cost = pl.col("cost").cast(pl.Float64) if "cost" in columns else pl.lit(None, dtype=pl.Float64)
    margin = pl.col("margin").cast(pl.Float64) if "margin" in columns else pl.lit(None, dtype=pl.Float64)
    return transactions.select(
        "customer_id",
        day.alias("day"),
        revenue.alias("revenue"),
        cost.alias("cost"),
        margin.fill_null(revenue - cost).alias("margin"),
    )


def _per_customer(transactions: pl.DataFrame, end: dt.date, period_days: float) -> pl.DataFrame:
    """Every per-customer figure from one compiled pass over the lines sorted by customer and day."""
    amounts = [name for name in ("cost", "margin") if name in transactions.columns]
    ids = transactions["customer_id"]
    codes = ids if ids.dtype.is_integer() else ids.rank("dense")  # the pass needs orderable integers
    # One contiguous copy, so every NumPy view below is taken without copying again.
    lines = transactions.select(
        codes.cast(pl.Int64).alias("code"), pl.col("day").cast(pl.Int32), "revenue", *amounts
    ).rechunk()
    if not is_sorted(lines["code"].to_numpy(), lines["day"].to_numpy()):  # a store's lines mostly are already
        lines = lines.sort("code", "day")
    nothing = np.empty(0, np.float64)
    per = occasions(
        *(lines[name].to_numpy() for name in ("code", "day", "revenue")),
        *(lines[name].fill_null(np.nan).to_numpy() if name in amounts else nothing for name in ("cost", "margin")),
        calibration_end=(end - EPOCH).days,
    )
    unrecorded = {f"{name}{part}" for name in ("cost", "margin") if name not in amounts for part in ("", "_known")}
    frame = pl.DataFrame({name: values for name, values in per._asdict().items() if name not in unrecorded})
    if codes is not ids:  # back from the codes to the customers' own ids
        names = pl.DataFrame({"code": codes.cast(pl.Int64), "customer_id": ids}).unique("code")
        frame = frame.join(names, left_on="customer", right_on="code").drop("customer")
    else:
        frame = frame.rename({"customer": "customer_id"}).with_columns(
            pl.col("customer_id").cast(ids.dtype).set_sorted()  # the pass emits customers in order
        )
    occurred = pl.col("occasions") > 0
    first, last = (pl.when(occurred).then(pl.col(name).cast(pl.Date)) for name in ("first_day", "last_day"))
    # A customer without a purchase occasion gets frequency -1 here; the caller counts and drops them.
    frequency = pl.col("occasions") - 1
    return frame.select(
        "customer_id",
        "seen_in_calibration",
        frequency.alias("frequency"),
        ((last - first).dt.total_days() / period_days).alias("recency"),
        ((pl.lit(end) - first).dt.total_days() / period_days).alias("T"),
        pl.when(frequency > 0)
        .then((pl.col("occasion_revenue") - pl.col("first_revenue")) / frequency)
        .otherwise(0.0)
        .alias("monetary_value"),
        "revenue",
        *(pl.when(pl.col(f"{name}_known")).then(pl.col(name)).alias(name) for name in amounts),
        "return_days",
        first.alias("first_purchase"),
        last.alias("last_purchase"),
        pl.col("holdout_occasions").alias("frequency_holdout"),
        pl.col("holdout_revenue").alias("revenue_holdout"),
    )


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise InvalidInputError("transactions have no usable dates")
