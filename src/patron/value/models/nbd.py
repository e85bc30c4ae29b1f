"""NBD: Ehrenberg (1959), "The Pattern of Consumer Purchases"; the limit of BG/NBD and Pareto/NBD without drop-out.

Purchases follow a Poisson process with gamma(r, α) heterogeneity in the rate, and nobody leaves. When a base shows
no detectable drop-out (BG/NBD's ``a`` or Pareto/NBD's ``s`` run to zero), those models reduce to this one, and it
is what forecasts (``value/fits.py``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from patron.value.models._fitting import Array, Compressed, FitResult, as_array, floats, maximise
from patron.value.models.base import PurchaseModel, _check_histories


class NegativeBinomial(PurchaseModel):
    name = "nbd"
    parameter_names = ("r", "alpha")

    def _maximise(self, data: Compressed) -> FitResult:
        x, big_t, w = data.columns["x"], data.columns["T"], data.weights
        total = w.sum()

        def objective(z: Array) -> tuple[float, Array]:
            ll, gradient = _log_likelihood_and_gradient(np.exp(z), x, big_t)
            return -float(w @ ll) / total, -(gradient @ w) * np.exp(z) / total

        return maximise(objective, self.parameter_names, (1.0, 1.0), data, model=self.name, gradient=True)

    def _individual_log_likelihood(self, theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
        return _log_likelihood_and_gradient(theta, x, big_t)[0]

    def expected_purchases(self, t: ArrayLike) -> Array:
        r, alpha = self.params.values()
        return floats(r / alpha * as_array(np.atleast_1d(t), "t"))

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        r, alpha = self.params.values()
        x, _t_x, big_t = _check_histories(frequency, recency, T)
        t = as_array(np.broadcast_to(t, x.shape), "t")
        return floats((r + x) / (alpha + big_t) * t)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        x, _t_x, _big_t = _check_histories(frequency, recency, T)
        return np.ones_like(x)


def _log_likelihood_and_gradient(theta: Array, x: Array, big_t: Array) -> tuple[Array, Array]:
    """Per-customer log-likelihood of x purchases in (0, T] at their times, and its derivatives in (r, α)."""
    r, alpha = theta
    log_alpha_t = np.log(alpha + big_t)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * log_alpha_t
    gradient = np.vstack(
        [digamma(r + x) - digamma(r) + np.log(alpha) - log_alpha_t, r / alpha - (r + x) / (alpha + big_t)]
    )
    return floats(ll), gradient
