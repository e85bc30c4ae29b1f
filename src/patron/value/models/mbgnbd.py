"""MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for customer base
analysis", International Journal of Research in Marketing 24(3).

BG/NBD in which a customer may also drop out right after the first purchase (at time 0), so a customer with no
repeat purchase is not assumed alive; this removes BG/NBD's optimism about one-time buyers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, hyp2f1

from patron.value.models._fitting import (
    Array,
    Compressed,
    FitResult,
    as_array,
    floats,
    maximise_without_gradient,
)
from patron.value.models.base import PurchaseModel, _check_histories


class ModifiedBetaGeometricNBD(PurchaseModel):
    name = "mbgnbd"
    parameter_names = ("r", "alpha", "a", "b")

    def _maximise(self, data: Compressed) -> FitResult:
        return maximise_without_gradient(_log_likelihood, ("x", "t_x", "T"), self.parameter_names, (1.0, 1.0, 1.0, 1.0),
                                         data, model=self.name)  # fmt: skip

    def _individual_log_likelihood(self, theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
        return _log_likelihood(theta, x, t_x, big_t)

    def expected_purchases(self, t: ArrayLike) -> Array:
        r, alpha, a, b = self.params.values()
        t = as_array(np.atleast_1d(t), "t")
        return floats(b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t))))

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        r, alpha, a, b = self.params.values()
        x, t_x, big_t = _check_histories(frequency, recency, T)
        t = as_array(np.broadcast_to(t, x.shape), "t")
        ratio = (alpha + big_t) / (alpha + big_t + t)
        body = 1 - np.exp((r + x) * np.log(ratio)) * hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + big_t + t))
        return floats((a + b + x) / (a - 1) * body * self.probability_alive(x, t_x, big_t))

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        r, alpha, a, b = self.params.values()
        x, t_x, big_t = _check_histories(frequency, recency, T)
        log_odds = np.log(a) - np.log(b + x) + (r + x) * np.log((alpha + big_t) / (alpha + t_x))
        return floats(1 / (1 + np.exp(log_odds)))


def _log_likelihood(theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
    """Per-customer log-likelihood (Batislam et al. 2007, eq. 5): alive at T, or gone right after the last purchase
    (which for a customer without repeat purchases is the first one)."""
    r, alpha, a, b = theta
    counts, index = np.unique(x, return_inverse=True)
    per_x = (gammaln(r + counts) + gammaln(b + counts + 1) - gammaln(a + b + counts + 1))[index]
    head = per_x - gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
    alive = -(r + x) * np.log(alpha + big_t)
    gone = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    return floats(head + np.logaddexp(alive, gone))
