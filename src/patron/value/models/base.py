"""What every repeat-purchase ("buy till you die") model offers: fit, parameters, and per-customer forecasts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import numpy as np
from numpy.typing import ArrayLike

from patron.errors import InvalidInputError
from patron.value.models._fitting import Array, Compressed, FitResult, MaximumLikelihoodModel, as_array, compress
from patron.value.summary import Summary


class PurchaseModel(MaximumLikelihoodModel, ABC):
    """A continuous-time model of repeat purchases fitted on (frequency, recency, T) per customer."""

    name: str
    parameter_names: tuple[str, ...]

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> Self:
        x, t_x, big_t = _check_histories(frequency, recency, T)
        w = None if weights is None else as_array(weights, "weights")
        self._fit = self._maximise(compress({"x": x, "t_x": t_x, "T": big_t}, w))
        return self

    def fit_summary(self, summary: Summary) -> Self:
        frame = summary.frame
        return self.fit(frame["frequency"].to_numpy(), frame["recency"].to_numpy(), frame["T"].to_numpy())

    def log_likelihood_of(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """Each customer's log-likelihood under the fitted parameters."""
        x, t_x, big_t = _check_histories(frequency, recency, T)
        return self._individual_log_likelihood(np.array(list(self.params.values())), x, t_x, big_t)

    @abstractmethod
    def _maximise(self, data: Compressed) -> FitResult: ...

    @abstractmethod
    def _individual_log_likelihood(self, theta: Array, x: Array, t_x: Array, big_t: Array) -> Array: ...

    @abstractmethod
    def expected_purchases(self, t: ArrayLike) -> Array:
        """Expected repeat purchases in (0, t] by a customer just acquired."""

    @abstractmethod
    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        """Expected purchases in the next ``t`` periods given each customer's history."""

    @abstractmethod
    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """Probability that each customer is still active at the end of their history."""


def _check_histories(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[Array, Array, Array]:
    x = as_array(frequency, "frequency")
    t_x = as_array(recency, "recency")
    big_t = as_array(T, "T")
    if not len(x) == len(t_x) == len(big_t):
        raise InvalidInputError("frequency, recency and T must have one value per customer")
    if len(x) == 0:
        raise InvalidInputError("there are no customers with a purchase history to fit")
    if (x < 0).any() or (np.floor(x) != x).any():
        raise InvalidInputError("frequency must be a whole number of repeat purchases, 0 or more", field="frequency")
    if (t_x < 0).any() or (t_x > big_t + 1e-9).any():
        raise InvalidInputError("recency must lie between 0 and T (a purchase after the period end?)", field="recency")
    if ((x == 0) & (t_x > 0)).any():
        raise InvalidInputError("a customer without repeat purchases must have recency 0", field="recency")
    if (big_t <= 0).all():
        raise InvalidInputError("every customer was acquired at the end of the period: T must be positive", field="T")
    return x, t_x, big_t
