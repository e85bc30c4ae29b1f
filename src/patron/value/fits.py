"""Fits that always answer: a repeat-purchase model with its nested limit, and a spend model with its fallback.

- A fit that stops at the edge of the parameter space, or is flat there, in a model's **drop-out** parameters with
  the drop-out estimated at (practically) zero is a result: the base shows no detectable drop-out, and the model's
  nested limit, the NBD, forecasts (BG/NBD as ``a/(a+b) → 0``, Pareto/NBD as ``s → 0``). The run says so.
- When the Gamma-Gamma spend model cannot be fitted, or its estimate has ``q ≤ 1`` (an unbounded expected spend),
  each customer's own mean spend forecasts instead (the population's mean for those with no repeat purchase).
- Only when even the NBD cannot be fitted is there no probability model, and the score run falls back to RFM
  (``value/rfm.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from patron.errors import FitError
from patron.value.models._fitting import Array, as_array
from patron.value.models.base import PurchaseModel
from patron.value.models.bgnbd import BetaGeometricNBD
from patron.value.models.gammagamma import GammaGamma
from patron.value.models.mbgnbd import ModifiedBetaGeometricNBD
from patron.value.models.nbd import NegativeBinomial
from patron.value.models.paretonbd import ParetoNBD
from patron.value.summary import Summary

PURCHASE_MODELS: dict[str, type[PurchaseModel]] = {
    "bgnbd": BetaGeometricNBD,
    "paretonbd": ParetoNBD,
    "mbgnbd": ModifiedBetaGeometricNBD,
    "nbd": NegativeBinomial,
}
NO_DROPOUT = 1e-4  # mean drop-out (per purchase, or per period) below which a base shows none


def _dropout(name: str, estimates: dict[str, float]) -> float | None:
    """The mean drop-out the estimates imply: per purchase (BG/NBD, MBG/NBD) or per period (Pareto/NBD)."""
    if name in ("bgnbd", "mbgnbd") and {"a", "b"} <= set(estimates):
        return estimates["a"] / (estimates["a"] + estimates["b"])
    if name == "paretonbd" and {"s", "beta"} <= set(estimates):
        return estimates["s"] / estimates["beta"]
    return None


_DROPOUT_PARAMETERS = {"bgnbd": ("a", "b"), "mbgnbd": ("a", "b"), "paretonbd": ("s", "beta")}


@dataclass(frozen=True)
class PurchaseFit:
    """The model that forecasts, the one asked for, and what happened on the way (shown with the run)."""

    requested: str
    model: PurchaseModel
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.model.name


def fit_purchases(name: str, summary: Summary) -> PurchaseFit:
    """Fit ``name`` on the summary, or its NBD limit where the data shows no drop-out; ``FitError`` otherwise."""
    frame = summary.frame
    return fit_histories(name, *(frame[column].to_numpy() for column in ("frequency", "recency", "T")))


def fit_histories(
    name: str, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> PurchaseFit:
    """:func:`fit_purchases` on (frequency, recency, T) histories, each standing for ``weights`` customers (the
    Spark path fits the distinct histories it collected)."""
    histories = (np.asarray(frequency, np.float64), np.asarray(recency, np.float64), np.asarray(T, np.float64))
    try:
        return PurchaseFit(name, _forecasting(PURCHASE_MODELS[name]().fit(*histories, weights), *histories))
    except FitError as error:
        dropout = _dropout(name, error.estimates)
        if error.field not in _DROPOUT_PARAMETERS.get(name, ()) or dropout is None or dropout > NO_DROPOUT:
            raise
        limit = NegativeBinomial().fit(*histories, weights)
        note = (
            f"{name}: no detectable drop-out (the estimate ran to the boundary, mean drop-out {dropout:.1e}); "
            "forecasts with its nested limit, the NBD"
        )
        return PurchaseFit(name, limit, (note,))


def _forecasting(model: PurchaseModel, x: Array, t_x: Array, big_t: Array) -> PurchaseModel:
    """``model``, once it gives every history a finite P(alive) and forecast (estimates far out in the parameter
    space can overflow the special functions: such a fit is no answer)."""
    with np.errstate(all="ignore"):
        alive = model.probability_alive(x, t_x, big_t)
        ahead = model.conditional_expected_purchases(1.0, x, t_x, big_t)
    if not (np.isfinite(alive).all() and np.isfinite(ahead).all()):
        raise FitError(f"{model.name}: the fitted model gives some customers no finite forecast", kind="failed")
    return model


class SpendModel(Protocol):
    """What the CLV needs of a spend model: each customer's expected value per future purchase."""

    def conditional_expected_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Array: ...


@dataclass
class ObservedSpend:
    """Each customer's own mean repeat-purchase value; the population's mean for customers without one."""

    population_mean: float
    params: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)

    def conditional_expected_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Array:
        x, m = as_array(frequency, "frequency"), as_array(monetary_value, "monetary_value")
        return np.where((x > 0) & (m > 0), m, self.population_mean)


@dataclass(frozen=True)
class SpendFit:
    model: GammaGamma | ObservedSpend
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "gammagamma" if isinstance(self.model, GammaGamma) else "observed_mean"

    @property
    def params(self) -> dict[str, float]:
        return self.model.params

    @property
    def excluded(self) -> dict[str, int]:
        return self.model.excluded


def fit_spend(summary: Summary) -> SpendFit:
    """Gamma-Gamma, or the customers' observed mean spend when Gamma-Gamma cannot answer (with the reason)."""
    try:
        return SpendFit(GammaGamma().fit_summary(summary))
    except FitError as error:
        frame = summary.frame
        x, m = frame["frequency"].to_numpy(), frame["monetary_value"].to_numpy()
        usable = (x > 0) & (m > 0)
        if usable.any():
            mean = float(np.average(m[usable], weights=x[usable]))
        else:  # nobody repeated: the mean value of a purchase occasion
            mean = max(float(frame["revenue"].sum() / (x + 1).sum()), 0.0)
        note = f"{error.message}; expected spend is each customer's own mean (population mean {mean:.2f})"
        return SpendFit(ObservedSpend(mean), (note,))
