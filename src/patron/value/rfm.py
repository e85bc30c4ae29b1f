"""RFM scores: the answer a shop still gets when no probability model can be fitted (too few repeat buyers).

Recency, frequency and monetary value are each scored 1-5 by quintile of the customers (5 = most recent, most
frequent, highest revenue); the tiers rank customers by R + F + M, ties broken by revenue. The value column of an
RFM run is the customer's **past margin** (revenue × margin rate), not a forecast: P(alive), expected purchases and
value at risk stay empty, and the run says so.
"""

from __future__ import annotations

import polars as pl

from patron.value.summary import Summary

QUINTILES = 5


def quintile(values: pl.Expr, *, descending: bool = False) -> pl.Expr:
    """1-5 by the customer's position among all (ties share the lower score); 5 is the best fifth."""
    rank = values.rank(method="min", descending=descending)
    return ((rank - 1) * QUINTILES // pl.len() + 1).cast(pl.Int8)


def rfm_scores(summary: Summary, margin_rate: float) -> pl.DataFrame:
    """Per customer: the summary's figures, R, F, M scores, their sum, and the past margin as the value."""
    frame = summary.frame
    days_since = (pl.lit(summary.observation_end) - pl.col("last_purchase")).dt.total_days()
    has_margin = pl.col("margin").is_not_null() if "margin" in frame.columns else pl.lit(False)
    past_margin = pl.when(has_margin).then(pl.col("margin")).otherwise(pl.col("revenue") * margin_rate)
    return frame.select(
        "customer_id", "frequency", "recency", "T", "revenue",
        quintile(days_since, descending=True).alias("r_score"),
        quintile(pl.col("frequency")).alias("f_score"),
        quintile(pl.col("revenue")).alias("m_score"),
        past_margin.alias("clv"),
    ).with_columns(
        (pl.col("r_score").cast(pl.Int64) + pl.col("f_score") + pl.col("m_score")).alias("rfm"),
        *(pl.lit(None, dtype=pl.Float64).alias(name) for name in (
            "p_alive", "expected_purchases", "expected_margin_per_purchase", "value_at_risk",
        )),
    )  # fmt: skip


def rfm_order(scores: pl.DataFrame) -> pl.Series:
    """A value that ranks by R + F + M first and revenue second, for the tiers."""
    revenue = scores["revenue"].cast(pl.Float64).to_numpy()
    spread = float(revenue.max() - revenue.min()) or 1.0
    return pl.Series(
        "rfm_order", scores["rfm"].cast(pl.Float64).to_numpy() + (revenue - revenue.min()) / (spread * 1.001)
    )
