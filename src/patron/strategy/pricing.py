"""Price and discount sensitivity: who buys on deals, and what discount each segment should get.

Two estimates, each with its uncertainty:

* **Deal proneness** from purchase history (Bawa & Shoemaker 1987, "The Coupon-Prone Consumer", Journal of
  Marketing 51(4)): each customer's share of purchases made on a deal, shrunk towards their segment by an
  empirical-Bayes beta-binomial (Efron & Morris 1975; the prior fitted by the method of moments), so a customer
  with three purchases is not called "always on deal" from three coin flips.
* **Discount response** from offers made at several discount levels (campaign arms): per segment a logistic
  curve P(respond | discount d) = σ(α + β·d) by maximum likelihood; each segment's slope is shrunk towards the
  pooled slope with the DerSimonian & Laird (1986) between-segment variance. The recommended discount maximises
  the expected margin per offer (m − d)·P(d); its interval comes from 2,000 draws of (α, β) from the fit.

Limits: deal share measures habit, not causation; the discount curve is only as good as the spread of discounts
actually offered (extrapolating beyond the levels tried is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import expit

from patron.errors import FitError, InvalidInputError

DRAWS = 2000
SEED = 20261123


def deal_proneness(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From (customer_id, segment, deals, purchases): per customer raw and shrunk deal share; per segment the
    mean share with a 95 % interval (customers as the unit), and the prior the shares are shrunk towards: its
    mean (``pooled_share``, all deals over all purchases) and strength (``prior_strength``, in purchases)."""
    needed = {"customer_id", "segment", "deals", "purchases"}
    if missing := needed - set(frame.columns):
        raise InvalidInputError(f"deal proneness needs the column(s) {', '.join(sorted(missing))}")
    usable = (
        frame.drop_nulls(["segment", "deals", "purchases"])
        .filter((pl.col("purchases") > 0) & (pl.col("deals") >= 0))
        .with_columns(pl.min_horizontal("deals", "purchases").alias("deals"))
    )
    if usable.is_empty():
        raise InvalidInputError("no customer has both a deal count and purchases")
    customers, segments = [], []
    for (segment,), group in usable.group_by("segment", maintain_order=True):
        alpha, beta = _beta_prior(group["deals"].to_numpy(), group["purchases"].to_numpy())
        share = group["deals"] / group["purchases"]
        customers.append(
            group.select("customer_id", "segment", "deals", "purchases").with_columns(
                share.alias("raw_share"),
                ((pl.col("deals") + alpha) / (pl.col("purchases") + alpha + beta)).alias("shrunk_share"),
            )
        )
        mean, spread = float(share.mean()), float(share.std() or 0.0)  # type: ignore[arg-type]
        half = 1.96 * spread / np.sqrt(group.height)
        segments.append(
            {"segment": str(segment), "customers": group.height, "deal_share": mean,
             "low": max(0.0, mean - half), "high": min(1.0, mean + half), "prior_strength": alpha + beta,
             "pooled_share": alpha / (alpha + beta)}
        )  # fmt: skip
    return pl.concat(customers), pl.DataFrame(segments).sort("deal_share", descending=True)


def _beta_prior(deals: np.ndarray, purchases: np.ndarray) -> tuple[float, float]:
    """Method-of-moments Beta(α, β) for binomial shares with unequal trials (Kleinman 1973 weighting by n).

    With weights n_i/N, E[Σ w_i (p̂_i − μ)²] = (μ(1 − μ) − σ²)·k/N + σ² for k customers and N purchases, so the
    spread σ² of the customers' true shares is (S − μ(1 − μ)·k/N) / (1 − k/N).
    """
    shares = deals / purchases
    total = float(purchases.sum())
    weights = purchases / total
    mean = float(weights @ shares)
    variance = float(weights @ (shares - mean) ** 2)
    ratio = len(purchases) / total
    if ratio >= 1:  # one purchase each: the spread of true shares cannot be told from coin flips
        return mean * 1e6 + 1e-9, (1 - mean) * 1e6 + 1e-9
    between = (variance - mean * (1 - mean) * ratio) / (1 - ratio)
    if mean <= 0 or mean >= 1 or between <= 1e-12:
        return mean * 1e6 + 1e-9, (1 - mean) * 1e6 + 1e-9  # no detectable spread: everyone gets the mean
    strength = mean * (1 - mean) / between - 1
    strength = max(strength, 1e-3)
    return mean * strength, (1 - mean) * strength


@dataclass(frozen=True)
class DiscountCurve:
    segment: str
    intercept: float
    slope: float
    covariance: np.ndarray
    slope_shrunk: float
    offers: int
    tried: tuple[float, float]  # the lowest and highest discount offered

    def probability(self, discount: np.ndarray | float, *, shrunk: bool = True) -> np.ndarray:
        slope = self.slope_shrunk if shrunk else self.slope
        return np.asarray(expit(self.intercept + slope * np.asarray(discount, dtype=float)))


def discount_response(frame: pl.DataFrame) -> list[DiscountCurve]:
    """Fit σ(α + β·d) per segment from (segment, discount, offered, responded) rows, slopes shrunk to the pool."""
    needed = {"segment", "discount", "offered", "responded"}
    if missing := needed - set(frame.columns):
        raise InvalidInputError(f"discount response needs the column(s) {', '.join(sorted(missing))}")
    if (frame["responded"] > frame["offered"]).any() or (frame["offered"] < 0).any():
        raise InvalidInputError("responses must lie between 0 and the number of offers", field="responded")
    fits = []
    for (segment,), group in frame.group_by("segment", maintain_order=True):
        discounts = group["discount"].cast(pl.Float64).to_numpy()
        if len(np.unique(discounts)) < 2:
            raise InvalidInputError(f"segment {segment}: offers at two discount levels at least are needed")
        theta, covariance = _logistic(discounts, group["offered"].to_numpy(), group["responded"].to_numpy())
        fits.append((str(segment), theta, covariance, int(group["offered"].sum()), (discounts.min(), discounts.max())))
    slopes = np.array([theta[1] for _, theta, _, _, _ in fits])
    variances = np.array([covariance[1, 1] for _, _, covariance, _, _ in fits])
    shrunk = _shrink(slopes, variances)
    return [
        DiscountCurve(name, float(theta[0]), float(theta[1]), covariance, float(slope), offers, (float(lo), float(hi)))
        for (name, theta, covariance, offers, (lo, hi)), slope in zip(fits, shrunk, strict=True)
    ]


def _logistic(discount: np.ndarray, offered: np.ndarray, responded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    def negative_log_likelihood(theta: np.ndarray) -> tuple[float, np.ndarray]:
        p = np.clip(expit(theta[0] + theta[1] * discount), 1e-12, 1 - 1e-12)
        ll = responded * np.log(p) + (offered - responded) * np.log(1 - p)
        residual = responded - offered * p
        return -float(ll.sum()), -np.array([residual.sum(), (residual * discount).sum()])

    result = minimize(negative_log_likelihood, np.zeros(2), jac=True, method="BFGS", options={"gtol": 1e-10})
    if not np.isfinite(result.fun):
        raise FitError("the discount response curve did not converge")
    p = expit(result.x[0] + result.x[1] * discount)
    weight = offered * p * (1 - p)
    information = np.array(
        [[weight.sum(), (weight * discount).sum()], [(weight * discount).sum(), (weight * discount**2).sum()]]
    )
    return result.x, np.linalg.inv(information)


def _shrink(estimates: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """Precision-weighted shrinkage towards the pooled mean with the DerSimonian-Laird between-group variance."""
    if len(estimates) < 2:
        return estimates
    weights = 1 / variances
    pooled = float(weights @ estimates / weights.sum())
    q = float(weights @ (estimates - pooled) ** 2)
    tau2 = max(0.0, (q - (len(estimates) - 1)) / (weights.sum() - (weights**2).sum() / weights.sum()))
    if tau2 == 0:
        return np.full_like(estimates, pooled)
    factor = tau2 / (tau2 + variances)
    return np.asarray(pooled + factor * (estimates - pooled))


@dataclass(frozen=True)
class DiscountAdvice:
    segment: str
    discount: float
    low: float
    high: float
    response_rate: float
    margin_per_offer: float


def recommend_discount(curve: DiscountCurve, margin: float, *, steps: int = 201) -> DiscountAdvice:
    """The discount within the tried range that maximises (margin − d)·P(d), with a 90 % interval."""
    if margin <= 0:
        raise InvalidInputError("the margin before discount must be positive", field="margin")
    low, high = curve.tried
    grid = np.linspace(low, min(high, margin), steps)
    best = grid[int(np.argmax((margin - grid) * curve.probability(grid)))]
    rng = np.random.default_rng(SEED)
    draws = rng.multivariate_normal([curve.intercept, curve.slope_shrunk], curve.covariance, size=DRAWS)
    values = (margin - grid)[None, :] * expit(draws[:, :1] + draws[:, 1:] * grid[None, :])
    optima = grid[values.argmax(axis=1)]
    rate = float(curve.probability(best))
    return DiscountAdvice(
        curve.segment, float(best), float(np.quantile(optima, 0.05)), float(np.quantile(optima, 0.95)), rate,
        float((margin - best) * rate),
    )  # fmt: skip
