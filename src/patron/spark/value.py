"""The value engine on Spark: summaries, BTYD fits on compressed histories, CLV, ranks and tiers.

Each step hands Spark partitions to the embedded path's own functions (see :mod:`patron.spark.kernels`), so the
numbers are the embedded path's: the summary per partition of customers (a shuffle on customer id puts each
customer's rows together), the fits on the distinct histories collected to the driver (a few thousand rows even
for millions of customers), the forecasts once per distinct history, broadcast back to the customers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from patron.errors import InvalidInputError
from patron.spark.kernels import from_polars, map_partitions, to_polars
from patron.value.clv import ClvSettings, history_forecasts, value_customers
from patron.value.diagnostics import MODELS
from patron.value.fits import fit_histories
from patron.value.models.base import PurchaseModel
from patron.value.models.gammagamma import GammaGamma
from patron.value.scoring import DEFAULT_TIER_CUTS, tier_of_rank
from patron.value.summary import PERIOD_DAYS, Period, check_transactions, customer_rows, normalise_transactions

# Spark's monotonically_increasing_id keeps the partition number in the bits above 33.
_PARTITION_SHIFT = 33


@dataclass
class SparkSummary:
    """:class:`patron.value.summary.Summary` with the per-customer frame left in Spark (cached)."""

    frame: DataFrame
    period: Period
    calibration_end: dt.date
    observation_end: dt.date
    customers: int
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def period_days(self) -> float:
        return PERIOD_DAYS[self.period]


def spark_summary(
    transactions: DataFrame,
    *,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
    period: Period = "W",
) -> SparkSummary:
    """:func:`patron.value.summary.purchase_summary` on Spark: same columns, same exclusions, same numbers."""
    check_transactions(transactions.columns, period)
    columns = [name for name in ("customer_id", "at", "revenue", "cost", "margin") if name in transactions.columns]
    normalised = map_partitions(transactions.select(*columns), normalise_transactions)
    complete = F.col("customer_id").isNotNull() & F.col("day").isNotNull() & F.col("revenue").isNotNull()
    counts = normalised.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(complete, 1)).alias("complete"),
        F.max(F.when(complete, F.col("day"))).alias("last_day"),
    ).first()
    assert counts is not None
    if counts["rows"] == 0:
        raise InvalidInputError("there are no transactions to summarise: import orders first")
    excluded: dict[str, int] = {}
    if dropped := counts["rows"] - counts["complete"]:
        excluded["rows_with_missing_customer_date_or_revenue"] = dropped
    if counts["last_day"] is None:
        raise InvalidInputError("transactions have no usable dates")
    observation_end = observation_end or counts["last_day"]
    assert observation_end is not None
    calibration_end = calibration_end or observation_end
    if calibration_end > observation_end:
        raise InvalidInputError(
            "the calibration period cannot end after the observation period", field="calibration_end"
        )

    in_window = normalised.filter(complete & (F.col("day") <= F.lit(observation_end)))
    known = in_window.agg(
        F.count(F.lit(1)).alias("rows"), F.count("cost").alias("cost"), F.count("margin").alias("margin")
    ).first()
    assert known is not None
    if future := counts["complete"] - known["rows"]:
        excluded["rows_after_observation_end"] = future
    amounts = [name for name in ("cost", "margin") if known[name] > 0]
    period_days = PERIOD_DAYS[period]

    def per_partition(frame: pl.DataFrame) -> pl.DataFrame:
        return customer_rows(frame, calibration_end, period_days, amounts)

    # Every row of a customer lands in one partition, so the per-partition summary is the customer's whole one.
    per_customer = map_partitions(in_window.repartition("customer_id"), per_partition, whole_partition=True).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    tally = per_customer.agg(
        F.count(F.lit(1)).alias("customers"),
        F.count(F.when(~F.col("seen_in_calibration"), 1)).alias("late"),
        F.count(F.when(F.col("seen_in_calibration") & (F.col("frequency") < 0), 1)).alias("without"),
    ).first()
    assert tally is not None
    if tally["late"]:
        excluded["customers_first_seen_after_calibration_end"] = tally["late"]
    if tally["without"]:
        excluded["customers_without_a_purchase_occasion"] = tally["without"]
    customers = tally["customers"] - tally["late"] - tally["without"]
    if customers == 0:
        raise InvalidInputError("no customer has a purchase (a day with net revenue of zero or more) in the period")
    frame = per_customer.filter(F.col("seen_in_calibration") & (F.col("frequency") >= 0)).drop("seen_in_calibration")
    if observation_end <= calibration_end:
        frame = frame.drop("frequency_holdout", "revenue_holdout")
    return SparkSummary(frame, period, calibration_end, observation_end, customers, excluded)


def distinct_histories(summary: SparkSummary) -> pl.DataFrame:
    """(frequency, recency, T, customers) in the order the embedded path meets them (by first customer id)."""
    grouped = summary.frame.groupBy("frequency", "recency", "T").agg(
        F.count(F.lit(1)).alias("customers"), F.min("customer_id").alias("first_customer")
    )
    return to_polars(grouped).sort("first_customer").drop("first_customer")


def fit_purchase_model(summary: SparkSummary, model: str = "bgnbd") -> PurchaseModel:
    if model not in MODELS:
        raise InvalidInputError(f"unknown model {model!r} on Spark; use one of {', '.join(MODELS)}", field="model")
    histories = distinct_histories(summary)
    columns = (histories[name].to_numpy() for name in ("frequency", "recency", "T", "customers"))
    return fit_histories(model, *columns).model  # a drop-out at the boundary answers with the NBD, as embedded


def fit_spend_model(summary: SparkSummary) -> GammaGamma:
    grouped = summary.frame.groupBy("frequency", "monetary_value").agg(
        F.count(F.lit(1)).alias("customers"), F.min("customer_id").alias("first_customer")
    )
    spend = to_polars(grouped).sort("first_customer")
    return GammaGamma().fit(spend["frequency"], spend["monetary_value"], spend["customers"])


def spark_lifetime_values(
    summary: SparkSummary,
    purchases: PurchaseModel,
    spend: GammaGamma,
    settings: ClvSettings | None = None,
    tier_cuts: tuple[float, ...] = DEFAULT_TIER_CUTS,
) -> DataFrame:
    """Per customer the embedded path's CLV columns plus rank (1 = most valuable) and tier."""
    settings = settings or ClvSettings()
    histories = distinct_histories(summary).drop("customers")
    forecasts = history_forecasts(histories, purchases, settings, summary.period_days)

    def value(frame: pl.DataFrame) -> pl.DataFrame:
        return value_customers(frame, forecasts, spend, settings)

    valued = map_partitions(summary.frame, value)
    ranked = _rank_descending(valued, "clv", tie_breaker="customer_id")
    customers = summary.customers

    def tier(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(tier_of_rank(pl.col("rank"), customers, tier_cuts))

    return map_partitions(ranked, tier)


def _rank_descending(frame: DataFrame, column: str, *, tie_breaker: str) -> DataFrame:
    """A global 1-based rank without pulling every row into one partition (as a window with no PARTITION BY would).

    The frame is range-sorted and persisted; each partition's rows are numbered from the rows in the partitions
    before it. Ties are broken by ``tie_breaker`` ascending, as the embedded path's ordinal rank does.
    """
    ordered = (
        frame.orderBy(F.desc(column), F.asc(tie_breaker))
        .withColumn("_partition", F.spark_partition_id())
        .withColumn("_row", F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    sizes = sorted((row["_partition"], row["count"]) for row in ordered.groupBy("_partition").count().collect())
    offsets, before = [], 0
    for partition, size in sizes:
        offsets.append({"_partition": partition, "_offset": before})
        before += size
    offset_frame = from_polars(
        ordered.sparkSession, pl.DataFrame(offsets, schema={"_partition": pl.Int32, "_offset": pl.Int64})
    )
    position = F.col("_row") - F.shiftleft(F.col("_partition").cast("long"), _PARTITION_SHIFT)
    return (
        ordered.join(F.broadcast(offset_frame), on="_partition")
        .withColumn("rank", (F.col("_offset") + position + 1).cast("long"))
        .drop("_partition", "_row", "_offset")
    )
