"""BG/BB: Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual Setting",
Marketing Science 29(6).

For discrete opportunities (yearly donations, annual events): while alive a customer transacts at each
opportunity with probability p ~ beta(α, β) and, after each opportunity, drops out with probability θ ~ beta(γ, δ).
A history is (x transactions, last one at opportunity t_x, out of n opportunities).
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, gammaln, logsumexp

from patron.errors import InvalidInputError
from patron.value.models._fitting import (
    Array,
    Compressed,
    FitResult,
    MaximumLikelihoodModel,
    as_array,
    compress,
    floats,
    maximise_without_gradient,
)


class BetaGeometricBetaBinomial(MaximumLikelihoodModel):
    name = "bgbb"
    parameter_names = ("alpha", "beta", "gamma", "delta")

    def fit(
        self, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike, weights: ArrayLike | None = None
    ) -> Self:
        x, t_x, n = _check(frequency, recency, n_periods)
        data = compress({"x": x, "t_x": t_x, "n": n}, None if weights is None else as_array(weights, "weights"))
        self._fit = self._maximise(data)
        return self

    def _maximise(self, data: Compressed) -> FitResult:
        start = (1.0, 1.0, 1.0, 1.0)
        return maximise_without_gradient(_log_likelihood, ("x", "t_x", "n"), self.parameter_names, start, data,
                                         model=self.name)  # fmt: skip

    def expected_purchases(self, n: ArrayLike) -> Array:
        """Expected transactions in the first ``n`` opportunities of a new customer."""
        alpha, beta, gamma, delta = self.params.values()
        n = as_array(np.atleast_1d(n), "n")
        ratio = np.exp(
            gammaln(gamma + delta) - gammaln(gamma + delta + n) + gammaln(1 + delta + n) - gammaln(1 + delta)
        )
        return floats(alpha / (alpha + beta) * delta / (gamma - 1) * (1 - ratio))

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike) -> Array:
        """Probability of being alive at opportunity n + 1."""
        alpha, beta, gamma, delta = self.params.values()
        x, t_x, n = _check(frequency, recency, n_periods)
        log_alive = (
            betaln(alpha + x, beta + n - x) - betaln(alpha, beta) + betaln(gamma, delta + n + 1) - betaln(gamma, delta)
        )
        return floats(np.exp(log_alive - _log_likelihood(np.array([alpha, beta, gamma, delta]), x, t_x, n)))

    def conditional_expected_purchases(
        self, future: ArrayLike, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike
    ) -> Array:
        """Expected transactions in the next ``future`` opportunities given each history (FHS 2010, eq. 13)."""
        alpha, beta, gamma, delta = self.params.values()
        x, t_x, n = _check(frequency, recency, n_periods)
        n_star = as_array(np.broadcast_to(future, x.shape), "future")
        log_head = (
            betaln(alpha + x + 1, beta + n - x)
            - betaln(alpha, beta)
            - _log_likelihood(np.array([alpha, beta, gamma, delta]), x, t_x, n)
        )
        scale = delta / (gamma - 1) * np.exp(gammaln(gamma + delta) - gammaln(1 + delta))
        bracket = np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n)) - np.exp(
            gammaln(1 + delta + n + n_star) - gammaln(gamma + delta + n + n_star)
        )
        return np.asarray(np.exp(log_head) * scale * bracket, dtype=np.float64)


def _log_likelihood(theta: Array, x: Array, t_x: Array, n: Array) -> Array:
    alpha, beta, gamma, delta = theta
    base_p, base_theta = betaln(alpha, beta), betaln(gamma, delta)
    alive = betaln(alpha + x, beta + n - x) - base_p + betaln(gamma, delta + n) - base_theta
    steps = np.arange(int(np.max(n - t_x)) if len(n) else 0)[:, None]
    dropped_at = t_x + steps  # the customer was last alive at opportunity t_x + i, i < n − t_x
    terms = np.where(
        steps < (n - t_x),
        betaln(alpha + x, beta + dropped_at - x) - base_p + betaln(gamma + 1, delta + dropped_at) - base_theta,
        -np.inf,
    )
    return np.asarray(logsumexp(np.vstack([alive[None, :], terms]), axis=0), dtype=np.float64)


def _check(frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike) -> tuple[Array, Array, Array]:
    x = as_array(frequency, "frequency")
    t_x = as_array(recency, "recency")
    n = as_array(np.broadcast_to(n_periods, x.shape), "n_periods")
    if len(x) == 0:
        raise InvalidInputError("there are no histories to fit")
    if (x < 0).any() or (x > n).any() or (np.floor(x) != x).any():
        raise InvalidInputError("frequency must be a whole number between 0 and the number of opportunities")
    if (t_x < x).any() or (t_x > n).any() or ((x == 0) & (t_x != 0)).any():
        raise InvalidInputError("recency must be the opportunity of the last transaction (0 without any), ≤ n")
    return x, t_x, n
