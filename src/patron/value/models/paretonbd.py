"""Pareto/NBD: Schmittlein, Morrison & Colombo (1987), in the form of Fader & Hardie (2005), "A Note on Deriving
the Pareto/NBD Model and Related Expressions".

Purchases follow a Poisson process with gamma(r, α) rates; each customer's lifetime is exponential with a
gamma(s, β) distributed dropout rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, hyp2f1

from patron.value.models._fitting import Array, Compressed, FitResult, as_array, floats, maximise_without_gradient
from patron.value.models.base import PurchaseModel, _check_histories


class ParetoNBD(PurchaseModel):
    name = "paretonbd"
    parameter_names = ("r", "alpha", "s", "beta")

    def _maximise(self, data: Compressed) -> FitResult:
        # Start from the BG/NBD-like scale of typical data; the likelihood surface is flat in s and β.
        start = (0.5, 5.0, 0.5, 5.0)
        return maximise_without_gradient(_log_likelihood, ("x", "t_x", "T"), self.parameter_names, start, data,
                                         model=self.name, edge=_no_dropout)  # fmt: skip

    def _individual_log_likelihood(self, theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
        return _log_likelihood(theta, x, t_x, big_t)

    def expected_purchases(self, t: ArrayLike) -> Array:
        r, alpha, s, beta = self.params.values()
        t = as_array(np.atleast_1d(t), "t")
        return r * beta / alpha * _survival_integral(s, beta, t)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        r, alpha, s, beta = self.params.values()
        x, t_x, big_t = _check_histories(frequency, recency, T)
        t = as_array(np.broadcast_to(t, x.shape), "t")
        rate = (r + x) / (alpha + big_t)
        return rate * (beta + big_t) * _survival_integral(s, beta + big_t, t) * self.probability_alive(x, t_x, big_t)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        r, alpha, s, beta = self.params.values()
        x, t_x, big_t = _check_histories(frequency, recency, T)
        log_alive_term = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        log_total = _log_likelihood(np.array([r, alpha, s, beta]), x, t_x, big_t) - _log_prefix(r, alpha, s, beta, x)
        # At most 1: a ratio of two equal terms (t_x = T) may come out a rounding error above it.
        return np.minimum(np.exp(log_alive_term - log_total), 1.0)


def _no_dropout(estimates: dict[str, float]) -> str | None:
    """``s`` when an accepted iterate has s < 10⁻³ and a negligible drop-out rate (s/β < 10⁻⁶ per period): further on
    the likelihood takes hundreds of times longer to evaluate, and the answer there is the NBD (``value/fits.py``)."""
    return "s" if estimates["s"] < 1e-3 and estimates["s"] / estimates["beta"] < 1e-6 else None


def _survival_integral(s: float, scale: float | Array, t: Array) -> Array:
    """(1 − (scale / (scale + t))^(s−1)) / (s − 1): the expected alive time in (0, t] divided by ``scale``."""
    log_ratio = np.log(scale / (scale + t))
    if abs(s - 1) < 1e-8:
        return np.asarray(-log_ratio, dtype=np.float64)
    return np.asarray(-np.expm1((s - 1) * log_ratio) / (s - 1), dtype=np.float64)


def _log_prefix(r: float, alpha: float, s: float, beta: float, x: Array) -> Array:
    return np.asarray(gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta), dtype=np.float64)


def _log_likelihood(theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
    """Per-customer log-likelihood, Fader & Hardie (2005) eq. (22), evaluated in logs to avoid overflow."""
    r, alpha, s, beta = theta
    rsx = r + s + x
    if alpha >= beta:
        scale, b_param, gap = alpha, s + 1, alpha - beta
    else:
        scale, b_param, gap = beta, r + x, beta - alpha

    def log_term(u: Array) -> Array:
        return np.asarray(np.log(hyp2f1(rsx, b_param, rsx + 1, gap / (scale + u))) - rsx * np.log(scale + u))

    at_recency, at_end = log_term(t_x), log_term(big_t)
    # A0 = term(t_x) − term(T) ≥ 0; it is zero when the last purchase fell on the last day.
    with np.errstate(divide="ignore"):
        log_a0 = at_recency + np.log(-np.expm1(np.minimum(at_end - at_recency, 0.0)))
    log_alive = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
    log_dead = np.log(s / rsx) + log_a0
    return floats(_log_prefix(r, alpha, s, beta, x) + np.logaddexp(log_alive, log_dead))
