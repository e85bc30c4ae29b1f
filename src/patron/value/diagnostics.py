"""How well a repeat-purchase model fits: the checks an analyst runs before trusting its forecasts.

- calibration vs holdout by frequency (FHL 2005, fig. 3): mean holdout purchases, actual and forecast, per
  number of repeat purchases in the calibration period;
- cumulative repeat-transaction tracking (FHL 2005, fig. 2): actual vs expected per period for the cohort;
- holdout error and model choice: the model that forecasts a held-out part of the calibration period best.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from patron.errors import FitError, InvalidInputError
from patron.value.fits import PURCHASE_MODELS, fit_purchases
from patron.value.models.base import PurchaseModel
from patron.value.summary import Summary, purchase_summary

MODELS = PURCHASE_MODELS


def _require_holdout(summary: Summary) -> None:
    if not summary.has_holdout:
        raise InvalidInputError("this check needs a summary with a holdout period (give a calibration end date)")


def holdout_forecast(model: PurchaseModel, summary: Summary) -> pl.DataFrame:
    """Each customer's actual holdout purchases beside the model's forecast for them."""
    _require_holdout(summary)
    frame = summary.frame
    forecast = model.conditional_expected_purchases(
        summary.holdout_length, frame["frequency"], frame["recency"], frame["T"]
    )
    return frame.select("customer_id", "frequency", "frequency_holdout").with_columns(
        pl.Series("forecast_holdout", forecast)
    )


def calibration_vs_holdout(model: PurchaseModel, summary: Summary, *, top_bucket: int = 7) -> pl.DataFrame:
    """Customers, mean actual and mean forecast holdout purchases per calibration frequency (top bucket is "n+")."""
    bucket = pl.col("frequency").clip(upper_bound=top_bucket)
    return (
        holdout_forecast(model, summary)
        .group_by(bucket.alias("frequency"))
        .agg(
            pl.len().alias("customers"),
            pl.col("frequency_holdout").mean().alias("actual"),
            pl.col("forecast_holdout").mean().alias("forecast"),
        )
        .sort("frequency")
    )


@dataclass(frozen=True)
class HoldoutError:
    model: str
    actual_total: int
    forecast_total: float
    mean_absolute_error: float
    root_mean_squared_error: float

    @property
    def relative_error(self) -> float:
        return self.forecast_total / self.actual_total - 1 if self.actual_total else float("nan")


def holdout_error(model: PurchaseModel, summary: Summary) -> HoldoutError:
    frame = holdout_forecast(model, summary)
    error = frame["forecast_holdout"].to_numpy() - frame["frequency_holdout"].to_numpy()
    return HoldoutError(
        model.name,
        int(frame["frequency_holdout"].sum()),
        float(frame["forecast_holdout"].sum()),
        float(np.abs(error).mean()),
        float(np.sqrt((error**2).mean())),
    )


def tracking(model: PurchaseModel, transactions: pl.DataFrame, summary: Summary) -> pl.DataFrame:
    """Cumulative repeat purchases per period since the cohort's first purchase: actual and expected.

    Expected = Σ over customers of E[X(t − their first purchase)], the unconditional forecast of the model.
    """
    period_days = summary.period_days
    firsts = summary.frame.select("customer_id", "first_purchase")
    start = firsts["first_purchase"].min()
    if not isinstance(start, dt.date):
        raise InvalidInputError("the summary holds no purchases to track")
    periods = int(np.ceil((summary.observation_end - start).days / period_days))
    occasions = (
        transactions.select("customer_id", pl.col("at").cast(pl.Date).alias("day"), "revenue")
        .filter(pl.col("day") <= summary.observation_end)
        .group_by("customer_id", "day")
        .agg(pl.col("revenue").sum())
        .filter(pl.col("revenue") >= 0)
        .join(firsts, on="customer_id")
        .filter(pl.col("day") > pl.col("first_purchase"))
    )
    index = ((pl.col("day") - pl.lit(start)).dt.total_days() / period_days).floor().cast(pl.Int64) + 1
    actual = np.zeros(periods + 1)
    counts = occasions.group_by(index.alias("period")).len()
    np.add.at(actual, np.minimum(counts["period"].to_numpy(), periods), counts["len"].to_numpy())

    births = firsts.group_by("first_purchase").len()
    ends = np.arange(periods + 1) * period_days
    expected = np.zeros(periods + 1)
    for birth, customers in births.iter_rows():
        offset = (birth - start).days
        elapsed = np.maximum(ends - offset, 0) / period_days
        expected += customers * model.expected_purchases(elapsed)
    return pl.DataFrame(
        {
            "period": np.arange(periods + 1),
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": expected,
        }
    ).with_columns(
        pl.col("period").cast(pl.Int64),
        (pl.col("period") * period_days <= (summary.calibration_end - start).days).alias("calibration"),
    )


@dataclass(frozen=True)
class ModelChoice:
    """The candidates' errors on the held-out part (best first is ``chosen``), and why any was left out."""

    chosen: str
    errors: dict[str, HoldoutError]
    validation_end: dt.date
    skipped: dict[str, str] = field(default_factory=dict)
    limited: dict[str, str] = field(default_factory=dict)  # candidates that forecast with their limit (the NBD)

    def ranking(self) -> list[str]:
        """Best first; on a tie (to six digits, as when several reduce to the NBD) the simpler model first."""
        return sorted(
            self.errors,
            key=lambda name: (round(self.errors[name].root_mean_squared_error, 6), len(MODELS[name].parameter_names)),
        )

    def describe(self) -> str:
        scored = ", ".join(
            f"{name}{f' (as {self.limited[name]}: no detectable drop-out)' if name in self.limited else ''} "
            f"{self.errors[name].root_mean_squared_error:.4f}"
            for name in self.ranking()
        )
        left = "".join(f"; {name} left out: {reason}" for name, reason in self.skipped.items())
        return f"chosen by per-customer RMSE on purchases after {self.validation_end}: {scored}{left}"


def choose_model(transactions: pl.DataFrame, summary: Summary, *, validation_share: float = 0.25) -> ModelChoice:
    """Pick the model whose forecasts of the last ``validation_share`` of the calibration period err least.

    Each candidate (BG/NBD, Pareto/NBD, MBG/NBD, NBD) is fitted on the earlier part of the calibration period, with
    its nested limit where the data shows no drop-out, and judged by its per-customer root-mean-squared error on
    the held-out part; the data after the calibration end is never looked at. A candidate that cannot be fitted is
    left out with its reason; ``FitError`` when none can.
    """
    start = summary.frame["first_purchase"].min()
    if not isinstance(start, dt.date):
        raise InvalidInputError("the summary holds no purchases")
    span = (summary.calibration_end - start).days
    validation_end = start + dt.timedelta(days=int(span * (1 - validation_share)))
    inner = purchase_summary(
        transactions, calibration_end=validation_end, observation_end=summary.calibration_end, period=summary.period
    )
    errors: dict[str, HoldoutError] = {}
    skipped: dict[str, str] = {}
    limited: dict[str, str] = {}
    for name in MODELS:
        try:
            fit = fit_purchases(name, inner)
        except FitError as error:
            skipped[name] = error.message
            continue
        errors[name] = holdout_error(fit.model, inner)
        if fit.notes:
            limited[name] = fit.name
    if not errors:
        raise FitError(f"no repeat-purchase model can be fitted: {'; '.join(skipped.values())}")
    choice = ModelChoice("", errors, validation_end, skipped, limited)
    return ModelChoice(choice.ranking()[0], errors, validation_end, skipped, limited)
