"""Gamma-Gamma spend model: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
Analysis", Journal of Marketing Research 42(4); notation of Fader & Hardie (2013), "The Gamma-Gamma Model of
Monetary Value".

Each transaction's value is gamma(p, ν) distributed; ν varies across customers as gamma(q, γ). It is fitted on
customers with at least one repeat purchase, using the mean value of their repeat purchases.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from patron.errors import FitError, InvalidInputError
from patron.value.models._fitting import Array, MaximumLikelihoodModel, as_array, compress, maximise
from patron.value.summary import Summary


class GammaGamma(MaximumLikelihoodModel):
    name = "gammagamma"
    parameter_names = ("p", "q", "gamma")

    def __init__(self) -> None:
        super().__init__()
        self.excluded: dict[str, int] = {}

    def fit(self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None) -> Self:
        """Fit on customers with repeat purchases and positive mean spend; the others are counted in ``excluded``.

        ``weights`` counts how many customers each row stands for (rows already compressed, e.g. by Spark).
        """
        x = as_array(frequency, "frequency")
        m = as_array(monetary_value, "monetary_value")
        w = np.ones(len(x)) if weights is None else as_array(weights, "weights")
        if not len(x) == len(m) == len(w):
            raise InvalidInputError("frequency, monetary_value (and weights) must have one value per customer")
        repeat = x > 0
        usable = repeat & (m > 0)
        self.excluded = {
            "customers_without_repeat_purchases": int(w[~repeat].sum()),
            "customers_with_zero_or_negative_mean_spend": int(w[repeat & ~usable].sum()),
        }
        if w[usable].sum() < 2:
            raise FitError(
                "gammagamma needs customers with at least one repeat purchase and positive spend; "
                f"found {int(w[usable].sum())}"
            )
        data = compress({"x": x[usable], "m": m[usable]}, w[usable])
        xs, ms, w = data.columns["x"], data.columns["m"], data.weights
        total = w.sum()

        def objective(z: Array) -> tuple[float, Array]:
            ll, gradient = _log_likelihood_and_gradient(np.exp(z), xs, ms)
            return -float(w @ ll) / total, -(gradient @ w) * np.exp(z) / total

        fitted = maximise(objective, self.parameter_names, (1.0, 1.0, 1.0), data, model=self.name, gradient=True)
        if fitted.parameters["q"] <= 1:
            raise FitError(
                f"gammagamma: the estimate has q = {fitted.parameters['q']:.3f} ≤ 1, so the expected spend per "
                "purchase is unbounded (the spend data has too heavy a tail); refusing it",
                field="q",
                estimates=fitted.parameters,
            )
        self._fit = fitted
        return self

    def fit_summary(self, summary: Summary) -> Self:
        return self.fit(summary.frame["frequency"].to_numpy(), summary.frame["monetary_value"].to_numpy())

    @property
    def population_mean(self) -> float:
        p, q, gamma = self.params.values()
        if q <= 1:
            raise FitError("gammagamma: q ≤ 1, so mean spend is unbounded; the spend data has too heavy a tail")
        return p * gamma / (q - 1)

    def conditional_expected_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Array:
        """Expected value of a customer's future transactions: a weighted mean of their own and the population's.

        Customers without repeat purchases (or with non-positive spend) get the population mean.
        """
        p, q, _gamma = self.params.values()
        x = as_array(frequency, "frequency")
        m = np.maximum(as_array(monetary_value, "monetary_value"), 0.0)
        usable = (x > 0) & (m > 0)
        weight = p * x / (p * x + q - 1)
        own = np.where(usable, weight * m + (1 - weight) * self.population_mean, self.population_mean)
        return np.asarray(own, dtype=np.float64)


def _log_likelihood_and_gradient(theta: Array, x: Array, m: Array) -> tuple[Array, Array]:
    """Per-customer log-likelihood of the mean spend m over x transactions, and its derivatives in (p, q, γ)."""
    p, q, gamma = theta
    px = p * x
    log_total = np.log(gamma + m * x)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_total
    )
    gradient = np.vstack(
        [
            x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total),
            digamma(px + q) - digamma(q) + np.log(gamma) - log_total,
            q / gamma - (px + q) / (gamma + m * x),
        ]
    )
    return ll, gradient
