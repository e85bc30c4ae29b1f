"""Discrete-time, non-contractual bases (annual donations, yearly events): BG/BB histories and scores.

Each customer's opportunities are the periods after their first purchase (period k covers the days
[first + k·P, first + (k+1)·P) for the period length P, with day precision); a history is (x = periods with a
purchase, t_x = the last such period, n = whole periods observed), as in Fader, Hardie & Shang (2010). Only purchase
occasions count (days of net revenue ≥ 0, as in the continuous summary); spend per transaction comes from the
same spend model as the continuous run.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from patron.value.clv import VALUE_AT_RISK, ClvSettings, margin_rate
from patron.value.fits import SpendModel
from patron.value.models.bgbb import BetaGeometricBetaBinomial
from patron.value.summary import PERIOD_DAYS, Summary, normalise_transactions


def discrete_histories(transactions: pl.DataFrame, observation_end: dt.date, period: str) -> pl.DataFrame:
    """customer_id, x, t_x, n for every customer with a purchase occasion up to ``observation_end``."""
    days = PERIOD_DAYS[period]
    occasions = (
        normalise_transactions(transactions)
        .filter(pl.col("day") <= observation_end)
        .group_by("customer_id", "day")
        .agg(pl.col("revenue").sum())
        .filter(pl.col("revenue") >= 0)
    )
    first = pl.col("day").min().over("customer_id")
    indexed = occasions.with_columns(((pl.col("day") - first).dt.total_days() / days).floor().cast(pl.Int64).alias("k"))
    return (
        indexed.group_by("customer_id")
        .agg(
            (pl.col("k").filter(pl.col("k") > 0).n_unique()).alias("x"),
            pl.col("k").max().alias("t_x"),
            ((pl.lit(observation_end) - pl.col("day").min()).dt.total_days() / days).floor().cast(pl.Int64).alias("n"),
        )
        .sort("customer_id")
    )


def bgbb_scores(
    transactions: pl.DataFrame, summary: Summary, spend: SpendModel, settings: ClvSettings
) -> tuple[pl.DataFrame, BetaGeometricBetaBinomial]:
    """Fit BG/BB on the histories and value each customer over the CLV horizon (in whole periods)."""
    histories = discrete_histories(transactions, summary.observation_end, summary.period)
    frame = summary.frame.join(histories, on="customer_id", how="inner")
    x, t_x, n = (frame[name].to_numpy().astype(np.float64) for name in ("x", "t_x", "n"))
    model = BetaGeometricBetaBinomial().fit(x, t_x, n)
    periods_per_year = PERIOD_DAYS["Y"] / summary.period_days
    horizon = max(1, round(settings.horizon_months / 12 * periods_per_year))
    steps = np.arange(1, horizon + 1)
    cumulative = np.vstack([np.zeros_like(x)] + [model.conditional_expected_purchases(k, x, t_x, n) for k in steps])
    discount = (1 + settings.annual_discount_rate) ** (-steps / periods_per_year)
    discounted = np.diff(cumulative, axis=0).T @ discount
    value = spend.conditional_expected_value(frame["frequency"].to_numpy(), frame["monetary_value"].to_numpy())
    scores = frame.select(
        "customer_id",
        pl.col("x").alias("frequency"),
        pl.col("t_x").cast(pl.Float64).alias("recency"),
        pl.col("n").cast(pl.Float64).alias("T"),
        "revenue",
        pl.Series("p_alive", model.probability_alive(x, t_x, n)),
        pl.Series("expected_purchases", cumulative[-1]),
        (pl.Series(value) * margin_rate(settings)).alias("expected_margin_per_purchase"),
    ).with_columns((pl.Series(discounted) * pl.col("expected_margin_per_purchase")).alias("clv"))
    return scores.with_columns(VALUE_AT_RISK), model
