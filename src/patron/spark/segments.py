"""Rule-segment membership on Spark: the compiled rule runs, unchanged, on every partition of the feature frame.

The feature frame travels as one row per customer; the category purchases that ``bought(...)`` needs ride along
in a nested column, so each partition holds everything its customers' rules can ask about.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from pyspark.sql import DataFrame, SparkSession

from patron.segments.expression import CompiledRule
from patron.segments.features import Features
from patron.segments.rules import members_of
from patron.spark.kernels import from_polars, map_partitions

PURCHASES = "__category_purchases__"


def nest_features(features: Features) -> pl.DataFrame:
    """One row per customer, their category purchases (category, last_day) nested in one list column."""
    purchases = features.categories.group_by("customer_id").agg(pl.struct("category", "last_day").alias(PURCHASES))
    return features.customers.join(purchases, on="customer_id", how="left")


def features_to_spark(spark: SparkSession, features: Features) -> DataFrame:
    return from_polars(spark, nest_features(features))


def export_features(features: Features, path: Path) -> int:
    """Write the nested feature frame to Parquet for Spark; returns the number of customers."""
    frame = nest_features(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return frame.height


def spark_members(
    features: DataFrame, rule: CompiledRule, *, as_of: dt.date, schema: dict[str, pl.DataType] | None = None
) -> DataFrame:
    """The customer ids (one column, ``customer_id``) for whom ``rule`` holds, computed partition by partition."""

    def members(frame: pl.DataFrame) -> pl.DataFrame:
        categories = frame.select("customer_id", PURCHASES).explode(PURCHASES).drop_nulls(PURCHASES).unnest(PURCHASES)
        if categories.is_empty():
            categories = pl.DataFrame(schema={"customer_id": pl.Int64, "category": pl.String, "last_day": pl.Date})
        chunk = Features(frame.drop(PURCHASES), categories, as_of)
        return pl.DataFrame({"customer_id": members_of(chunk, rule, schema)}, schema={"customer_id": pl.Int64})

    return map_partitions(features, members)
