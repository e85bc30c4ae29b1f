"""BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2).

Purchases follow a Poisson process with gamma(r, α) heterogeneity in the rate; after each purchase the customer
drops out with probability p, beta(a, b) distributed across customers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, hyp2f1

from patron.value.models._fitting import Array, Compressed, FitResult, as_array, floats, maximise
from patron.value.models.base import PurchaseModel, _check_histories


class BetaGeometricNBD(PurchaseModel):
    name = "bgnbd"
    parameter_names = ("r", "alpha", "a", "b")

    def _maximise(self, data: Compressed) -> FitResult:
        x, t_x, big_t, w = data.columns["x"], data.columns["t_x"], data.columns["T"], data.weights
        total = w.sum()

        def objective(z: Array) -> tuple[float, Array]:
            ll, gradient = _log_likelihood_and_gradient(np.exp(z), x, t_x, big_t)
            return -float(w @ ll) / total, -(gradient @ w) * np.exp(z) / total

        return maximise(objective, self.parameter_names, (1.0, 1.0, 1.0, 1.0), data, model=self.name, gradient=True)

    def _individual_log_likelihood(self, theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
        return _log_likelihood_and_gradient(theta, x, t_x, big_t)[0]

    def expected_purchases(self, t: ArrayLike) -> Array:
        r, alpha, a, b = self.params.values()
        t = as_array(np.atleast_1d(t), "t")
        return floats(
            (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
        )

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        r, alpha, a, b = self.params.values()
        x, t_x, big_t = _check_histories(frequency, recency, T)
        t = as_array(np.broadcast_to(t, x.shape), "t")
        head = (a + b + x - 1) / (a - 1)
        ratio = (alpha + big_t) / (alpha + big_t + t)
        body = 1 - np.exp((r + x) * np.log(ratio)) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
        return floats(head * body * self.probability_alive(x, t_x, big_t))

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        r, alpha, a, b = self.params.values()
        x, t_x, big_t = _check_histories(frequency, recency, T)
        log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * np.log((alpha + big_t) / (alpha + t_x))
        return np.where(x > 0, 1 / (1 + np.exp(log_odds)), 1.0)


def _log_likelihood_and_gradient(theta: Array, x: Array, t_x: Array, big_t: Array) -> tuple[Array, Array]:
    """Per-customer log-likelihood (FHL 2005, eq. 6) and its derivatives in (r, α, a, b), shape (4, n)."""
    r, alpha, a, b = theta
    # The gamma-function terms depend on x alone: evaluate them once per distinct frequency.
    counts, index = np.unique(x, return_inverse=True)

    def per_x(values: Array) -> Array:
        return floats(values)[index]

    repeat = x > 0
    log_alpha_t = np.log(alpha + big_t)
    log_alpha_tx = np.log(alpha + t_x)
    a1 = per_x(gammaln(r + counts)) - gammaln(r) + r * np.log(alpha)
    a2 = per_x(gammaln(b + counts) - gammaln(a + b + counts)) + gammaln(a + b) - gammaln(b)
    a3 = -(r + x) * log_alpha_t
    b_x1 = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(b_x1) - (r + x) * log_alpha_tx, -np.inf)
    mix = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - mix)
    w4 = np.exp(a4 - mix)
    digamma_abx = per_x(digamma(a + b + counts))
    gradient = np.vstack(
        [
            per_x(digamma(r + counts)) - digamma(r) + np.log(alpha) - w3 * log_alpha_t - w4 * log_alpha_tx,
            r / alpha - w3 * (r + x) / (alpha + big_t) - w4 * (r + x) / (alpha + t_x),
            digamma(a + b) - digamma_abx + w4 / a,
            digamma(a + b) + per_x(digamma(b + counts)) - digamma(b) - digamma_abx - w4 / b_x1,
        ]
    )
    return a1 + a2 + mix, gradient
