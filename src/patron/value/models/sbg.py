"""Shifted-beta-geometric (sBG) retention: Fader & Hardie (2007), "How to Project Customer Retention", Journal of
Interactive Marketing 21(1); residual lifetime value from Fader & Hardie (2010), "Customer-Base Valuation in a
Contractual Setting: The Perils of Ignoring Heterogeneity", Marketing Science 29(1).

In a contract renewed each period, a customer cancels at each renewal with probability θ (constant for them), and
θ ~ beta(α, β) across customers. Retention rises with tenure because the customers likely to cancel leave first.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, hyp2f1

from patron.errors import FitError, InvalidInputError
from patron.value.models._fitting import (
    Array,
    FitResult,
    MaximumLikelihoodModel,
    as_array,
    compress,
    floats,
    maximise,
)


class ShiftedBetaGeometric(MaximumLikelihoodModel):
    name = "sbg"
    parameter_names = ("alpha", "beta")
    theta: float | None = None  # set when the fit is the geometric limit (α, β → ∞)
    note: str | None = None

    def fit(self, tenure: ArrayLike, churned: ArrayLike, weights: ArrayLike | None = None) -> Self:
        """Fit on customers' tenures (whole periods, ≥ 1): cancelled at the end of that period, or still active."""
        t = as_array(tenure, "tenure")
        gone = as_array(churned, "churned")
        w = np.ones(len(t)) if weights is None else as_array(weights, "weights")
        if not len(t) == len(gone) == len(w) or len(t) == 0:
            raise InvalidInputError("tenure and churned need one value per customer, and there must be customers")
        if (t < 1).any() or (np.floor(t) != t).any():
            raise InvalidInputError("tenure must be a whole number of periods, 1 or more", field="tenure")
        if not gone.any():
            raise InvalidInputError("nobody has cancelled: retention cannot be estimated yet", field="churned")
        data = compress({"t": t, "churned": (gone > 0).astype(np.float64)}, w)
        periods, cancelled, w = data.columns["t"], data.columns["churned"], data.weights
        total = w.sum()

        def objective(z: Array) -> tuple[float, Array]:
            ll, gradient = _log_likelihood_and_gradient(np.exp(z), periods, cancelled)
            return -float(w @ ll) / total, -(gradient @ w) * np.exp(z) / total

        self.theta = None
        self.note = None
        try:
            self._fit = maximise(objective, self.parameter_names, (1.0, 1.0), data, model=self.name, gradient=True)
        except FitError as error:
            estimates = error.estimates
            smaller = min(estimates.get("alpha", 0), estimates.get("beta", 0))
            if error.kind in ("edge", "flat") and smaller >= 1e3:
                self._fit_geometric(periods, cancelled, w)
            elif error.kind == "failed" and smaller >= 1e2:
                # The line search may stall on the flat ridge towards α, β → ∞ before reaching the bound: the limit
                # is the answer when it fits at least as well as where the optimiser stopped.
                stopped = -objective(np.log([estimates["alpha"], estimates["beta"]]))[0]
                if _geometric(periods, cancelled, w)[1] / total < stopped - 1e-9:
                    raise
                self._fit_geometric(periods, cancelled, w)
            else:
                raise
        return self

    def _fit_geometric(self, periods: Array, cancelled: Array, weights: Array) -> None:
        """The limit α, β → ∞ with α / (α + β) = θ: every customer cancels with the same θ (no heterogeneity)."""
        self.theta, ll = _geometric(periods, cancelled, weights)
        self.note = (
            f"no detectable heterogeneity in cancellation (α and β ran to the boundary): every customer cancels with "
            f"the same probability θ = {self.theta:.4f} per period (the geometric limit)"
        )
        self._fit = FitResult(
            {"alpha": float("inf"), "beta": float("inf")}, float(ll), int(weights.sum()), len(weights), 0
        )

    def fit_survivors(self, survivors: ArrayLike) -> Self:
        """Fit on a cohort's survivor counts (start size first: 1000, 631, 468, …), as in Fader & Hardie (2007)."""
        alive = as_array(survivors, "survivors")
        if len(alive) < 2 or (np.diff(alive) > 0).any() or (alive < 0).any():
            raise InvalidInputError("survivors must start with the cohort size and never grow", field="survivors")
        periods = np.arange(1, len(alive))
        lost = -np.diff(alive)
        tenure = np.concatenate([periods, [periods[-1]]])
        churned = np.concatenate([np.ones(len(periods)), [0.0]])
        return self.fit(tenure, churned, np.concatenate([lost, [alive[-1]]]))

    def survival(self, t: ArrayLike) -> Array:
        """S(t): the share of a new cohort still a customer after t periods."""
        alpha, beta = self.params.values()
        periods = as_array(np.atleast_1d(t), "t")
        if self.theta is not None:
            return floats((1 - self.theta) ** periods)
        return floats(np.exp(betaln(alpha, beta + periods) - betaln(alpha, beta)))

    def retention(self, t: ArrayLike) -> Array:
        """r(t) = S(t) / S(t − 1): the share of those who reached period t − 1 who renew for period t."""
        alpha, beta = self.params.values()
        periods = as_array(np.atleast_1d(t), "t")
        if self.theta is not None:
            return np.full(len(periods), 1 - self.theta)
        return floats((beta + periods - 1) / (alpha + beta + periods - 1))

    def residual_lifetime(self, renewals: ArrayLike, discount_rate: float) -> Array:
        """DERL: the discounted expected number of payments still to come from active customers who have renewed
        ``renewals`` times (tenure − 1), at the end of their current period (Fader & Hardie 2010, eq. 6)."""
        alpha, beta = self.params.values()
        n = as_array(np.atleast_1d(renewals), "renewals") + 1
        if not 0 <= discount_rate < 1:
            raise InvalidInputError("the per-period discount rate must be in [0, 1)", field="discount_rate")
        if self.theta is not None:  # Σ_k ((1 − θ) / (1 + d))^k, times the chance of the next renewal
            return np.full(len(n), (1 - self.theta) * (1 + discount_rate) / (discount_rate + self.theta))
        head = np.exp(betaln(alpha, beta + n) - betaln(alpha, beta + n - 1))
        return floats(head * hyp2f1(1.0, beta + n, alpha + beta + n, 1 / (1 + discount_rate)))


def _geometric(periods: Array, cancelled: Array, weights: Array) -> tuple[float, float]:
    """θ, the one cancellation probability per period, and the log-likelihood of the geometric limit."""
    churned = float(weights @ cancelled)
    exposure = churned + float(weights @ np.where(cancelled > 0, periods - 1, periods))
    theta = churned / exposure
    return theta, float(churned * np.log(theta) + (exposure - churned) * np.log1p(-theta))


def _log_likelihood_and_gradient(theta: Array, t: Array, churned: Array) -> tuple[Array, Array]:
    """log P(T = t) for a cancellation at the end of period t, log S(t) for a customer still active after t, and
    the derivatives in (α, β) (d/da log B(a, b) = ψ(a) − ψ(a + b))."""
    alpha, beta = theta
    base = betaln(alpha, beta)
    gone = churned > 0
    ll = np.where(gone, betaln(alpha + 1, beta + t - 1), betaln(alpha, beta + t)) - base
    tail = digamma(alpha + beta + t)
    d_alpha = np.where(gone, digamma(alpha + 1) - digamma(alpha), 0.0) - tail + digamma(alpha + beta)
    d_beta = np.where(gone, digamma(beta + t - 1), digamma(beta + t)) - tail - digamma(beta) + digamma(alpha + beta)
    return floats(ll), np.vstack([d_alpha, d_beta])
