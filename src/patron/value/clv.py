"""Customer lifetime value: expected discounted margin over a horizon, with its parts shown.

CLV = Σ_k ΔE[purchases in month k] × expected margin per purchase / (1 + d)^(k/12), where the purchases come from
a repeat-purchase model (which already weighs in the chance that the customer is still alive), the spend per
purchase from the Gamma-Gamma model, and the margin rate from the customer's own cost data when it is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from patron.errors import InvalidInputError
from patron.settings import get_settings
from patron.value.fits import SpendModel
from patron.value.models.base import PurchaseModel
from patron.value.summary import PERIOD_DAYS, Summary

MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class ClvSettings:
    horizon_months: int = 36
    annual_discount_rate: float = 0.10
    # Used for customers whose order lines carry no cost (settings: 30 %, the gross margin Fader, Hardie & Lee
    # assume for CDNOW).
    default_margin_rate: float = field(default_factory=lambda: get_settings().default_margin_rate)

    def __post_init__(self) -> None:
        if self.horizon_months < 1:
            raise InvalidInputError("the CLV horizon must be at least one month", field="horizon_months")
        if not 0 <= self.annual_discount_rate < 1:
            raise InvalidInputError("the annual discount rate must be in [0, 1)", field="annual_discount_rate")
        if not -1 <= self.default_margin_rate <= 1:
            raise InvalidInputError("the default margin rate must be between -1 and 1", field="default_margin_rate")


def customer_lifetime_value(
    summary: Summary, purchases: PurchaseModel, spend: SpendModel, settings: ClvSettings | None = None
) -> pl.DataFrame:
    """Per customer: P(alive), expected purchases, expected value and margin per purchase, CLV, value at risk."""
    settings = settings or ClvSettings()
    histories = summary.frame.select("frequency", "recency", "T").unique(maintain_order=True)
    forecasts = history_forecasts(histories, purchases, settings, summary.period_days)
    return value_customers(summary.frame, forecasts, spend, settings)


def history_forecasts(
    histories: pl.DataFrame, purchases: PurchaseModel, settings: ClvSettings, period_days: float
) -> pl.DataFrame:
    """P(alive), expected and discounted expected purchases per distinct (frequency, recency, T).

    Forecasts depend only on the history, and customers share few histories: computed once per history, this is
    the small table the Spark path computes on the driver and broadcasts.
    """
    month = PERIOD_DAYS["M"] / period_days
    steps = np.arange(1, settings.horizon_months + 1)
    discount = (1 + settings.annual_discount_rate) ** (-steps / MONTHS_PER_YEAR)
    x, t_x, big_t = (histories[name].to_numpy() for name in ("frequency", "recency", "T"))
    cumulative = np.vstack(
        [np.zeros_like(x)] + [purchases.conditional_expected_purchases(k * month, x, t_x, big_t) for k in steps]
    )
    return histories.select("frequency", "recency", "T").with_columns(
        pl.Series("p_alive", purchases.probability_alive(x, t_x, big_t)),
        pl.Series("expected_purchases", cumulative[-1]),
        pl.Series("discounted_purchases", np.diff(cumulative, axis=0).T @ discount),
    )


def value_customers(
    frame: pl.DataFrame, forecasts: pl.DataFrame, spend: SpendModel, settings: ClvSettings
) -> pl.DataFrame:
    """Each customer's CLV from their history's forecast and their expected margin per purchase (row-wise)."""
    value = spend.conditional_expected_value(frame["frequency"].to_numpy(), frame["monetary_value"].to_numpy())
    return (
        frame.select("customer_id", "frequency", "recency", "T", "monetary_value", "revenue", "margin")
        .with_columns(pl.Series("expected_value_per_purchase", value), margin_rate(settings).alias("margin_rate"))
        .join(forecasts, on=["frequency", "recency", "T"], how="left", maintain_order="left")
        .with_columns(
            (pl.col("expected_value_per_purchase") * pl.col("margin_rate")).alias("expected_margin_per_purchase")
        )
        .with_columns((pl.col("discounted_purchases") * pl.col("expected_margin_per_purchase")).alias("clv"))
        .with_columns(VALUE_AT_RISK)
    )


def margin_rate(settings: ClvSettings) -> pl.Expr:
    """The customer's own margin rate where their order lines carry costs, else the default rate."""
    has_margin = pl.col("margin").is_not_null() & (pl.col("revenue") > 0)
    return (
        pl.when(has_margin)
        .then((pl.col("margin") / pl.col("revenue")).clip(-1.0, 1.0))
        .otherwise(settings.default_margin_rate)
    )


VALUE_AT_RISK = (pl.col("clv").clip(lower_bound=0) * (1 - pl.col("p_alive"))).alias("value_at_risk")
