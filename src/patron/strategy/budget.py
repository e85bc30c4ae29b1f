"""Budget allocation between acquisition and retention by customer equity.

Response curves are the concave exponential ``rate(x) = ceiling · (1 − e^(−k·x))`` for spend ``x`` per head
(the "ceiling" form of Blattberg & Deighton 1996, "Manage Marketing by the Customer Equity Test", Harvard
Business Review 74(4)). Customer equity over a pool of prospects and the current customers, with margin ``m``
per customer and year, retention spend ``R`` per customer and year, retention rate ``r(R)`` and discount ``d``:

    equity = N_p · (a(A) · [m + (m − R) · r / (1 + d − r)] − A)  +  N_c · (m − R) · (1 + d) / (1 + d − r)

The first term is each prospect's expected value after the acquisition spend ``A`` (first-year margin, then the
retained years); the second is the current customers' retained margin. The budget ``N_p·A + N_c·R`` is split to
maximise equity; :func:`allocate` solves the general "many concave curves, one budget" problem exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, curve_fit, minimize, minimize_scalar

from patron.errors import FitError, InvalidInputError


@dataclass(frozen=True)
class ResponseCurve:
    """rate(x) = ceiling · (1 − exp(−k·x)); ``ceiling`` in (0, 1], ``k`` > 0 per currency unit spent per head."""

    ceiling: float
    k: float
    ceiling_se: float | None = None
    k_se: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.ceiling <= 1:
            raise InvalidInputError("a response ceiling is a rate in (0, 1]", field="ceiling")
        if self.k <= 0:
            raise InvalidInputError("a response curve's k must be positive", field="k")

    def rate(self, spend: float | np.ndarray) -> float | np.ndarray:
        return self.ceiling * (1 - np.exp(-self.k * np.asarray(spend, dtype=float)))

    def marginal(self, spend: float) -> float:
        return float(self.ceiling * self.k * math.exp(-self.k * spend))

    @classmethod
    def fit(cls, spend: Sequence[float], rate: Sequence[float]) -> ResponseCurve:
        """Least-squares fit to observed (spend per head, response rate) points, with standard errors."""
        x, y = np.asarray(spend, dtype=float), np.asarray(rate, dtype=float)
        if len(x) != len(y) or len(x) < 3:
            raise InvalidInputError("fitting a response curve needs at least three (spend, rate) points")
        if (x < 0).any() or (y < 0).any() or (y > 1).any():
            raise InvalidInputError("spends must be ≥ 0 and rates within [0, 1]")
        start = (
            min(max(y.max() * 1.2, 1e-3), 1.0),
            1.0 / max(float(np.median(x[x > 0])) if (x > 0).any() else 1, 1e-9),
        )
        try:
            (ceiling, k), covariance = curve_fit(
                lambda s, c, kk: c * (1 - np.exp(-kk * s)), x, y, p0=start, bounds=([1e-9, 1e-12], [1.0, np.inf])
            )
        except RuntimeError as error:
            raise FitError(f"the response curve did not converge: {error}") from error
        errors = np.sqrt(np.clip(np.diag(covariance), 0, None)) if np.isfinite(covariance).all() else (None, None)
        return cls(float(ceiling), float(k), _maybe(errors[0]), _maybe(errors[1]))


def _maybe(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def allocate(curves: Sequence[tuple[float, ResponseCurve]], budget: float) -> list[float]:
    """Spend per curve maximising Σ weight·rate(spend) with Σ spend = budget, spend ≥ 0.

    At the optimum every funded curve has the same marginal return λ (weight·ceiling·k·e^(−k·x) = λ), so
    x = max(0, ln(weight·ceiling·k / λ) / k); λ is found by bisection on the budget ("water filling").
    """
    if budget < 0:
        raise InvalidInputError("the budget cannot be negative", field="budget")
    if not curves:
        raise InvalidInputError("there is nothing to allocate the budget to")
    if budget == 0:
        return [0.0] * len(curves)
    peaks = [weight * curve.ceiling * curve.k for weight, curve in curves]
    if max(peaks) <= 0:
        raise InvalidInputError("every response curve has a non-positive weight")

    def spends(log_lambda: float) -> list[float]:
        return [
            max(0.0, (math.log(peak) - log_lambda) / curve.k) if peak > 0 else 0.0
            for peak, (_, curve) in zip(peaks, curves, strict=True)
        ]

    high = math.log(max(peaks))
    low = high - 1.0
    while sum(spends(low)) < budget:
        low -= 2 * (high - low)
    log_lambda = brentq(lambda value: sum(spends(value)) - budget, low, high, xtol=1e-14)
    return spends(log_lambda)


@dataclass(frozen=True)
class EquityInputs:
    prospects: int
    customers: int
    margin: float  # per customer and year
    discount_rate: float
    acquisition: ResponseCurve
    retention: ResponseCurve

    def __post_init__(self) -> None:
        if self.prospects < 0 or self.customers < 0 or self.prospects + self.customers == 0:
            raise InvalidInputError("there must be prospects or customers to spend on")
        if not 0 <= self.discount_rate < 1:
            raise InvalidInputError("the discount rate must be in [0, 1)", field="discount_rate")


@dataclass(frozen=True)
class Allocation:
    budget: float
    acquisition_share: float
    acquisition_per_prospect: float
    retention_per_customer: float
    acquisition_rate: float
    retention_rate: float
    equity: float


def customer_equity(inputs: EquityInputs, acquisition_spend: float, retention_spend: float) -> float:
    """Expected customer equity for spend per prospect and per customer (see the module docstring)."""
    a = float(inputs.acquisition.rate(acquisition_spend))
    r = float(inputs.retention.rate(retention_spend))
    m, d = inputs.margin, inputs.discount_rate
    retained = (m - retention_spend) * r / (1 + d - r)
    prospects = inputs.prospects * (a * (m + retained) - acquisition_spend)
    current = inputs.customers * (m - retention_spend) * (1 + d) / (1 + d - r)
    return prospects + current


def best_split(inputs: EquityInputs, budget: float) -> Allocation:
    """The acquisition share of ``budget`` that maximises customer equity (grid, then a bounded refinement)."""
    if budget < 0:
        raise InvalidInputError("the budget cannot be negative", field="budget")

    def spend_of(share: float) -> tuple[float, float]:
        acquisition = share * budget / inputs.prospects if inputs.prospects else 0.0
        retention = (1 - share) * budget / inputs.customers if inputs.customers else 0.0
        return acquisition, retention

    def loss(share: float) -> float:
        return -customer_equity(inputs, *spend_of(share))

    grid = np.linspace(0, 1, 201)
    if not inputs.prospects:
        grid = np.array([0.0])
    elif not inputs.customers:
        grid = np.array([1.0])
    best = float(grid[int(np.argmin([loss(s) for s in grid]))])
    if len(grid) > 1:
        lower, upper = max(0.0, best - 0.005), min(1.0, best + 0.005)
        refined = minimize_scalar(loss, bounds=(lower, upper), method="bounded", options={"xatol": 1e-7})
        if refined.fun < loss(best):
            best = float(refined.x)
    acquisition, retention = spend_of(best)
    return Allocation(
        budget, best, acquisition, retention, float(inputs.acquisition.rate(acquisition)),
        float(inputs.retention.rate(retention)), customer_equity(inputs, acquisition, retention),
    )  # fmt: skip


def what_if(
    inputs: EquityInputs, budget: float, factors: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5)
) -> list[Allocation]:
    """The best split for other budgets: how much equity each extra (or saved) unit of budget buys."""
    return [best_split(inputs, budget * factor) for factor in factors]


def best_budget(inputs: EquityInputs) -> Allocation:
    """The spend per prospect and per customer that maximises equity with no budget cap: beyond it, every extra
    unit spent returns less than a unit of equity."""
    scale = max(inputs.margin, 1.0)

    def loss(spend: np.ndarray) -> float:
        return -customer_equity(inputs, float(spend[0]) * scale, float(spend[1]) * scale) / scale

    best = None
    for start in ((0.1, 0.1), (1.0, 0.2), (3.0, 1.0)):
        found = minimize(loss, np.array(start), method="L-BFGS-B", bounds=[(0.0, 50.0), (0.0, 50.0)])
        if best is None or found.fun < best.fun:
            best = found
    assert best is not None
    acquisition = float(best.x[0]) * scale if inputs.prospects else 0.0
    retention = float(best.x[1]) * scale if inputs.customers else 0.0
    budget = acquisition * inputs.prospects + retention * inputs.customers
    return Allocation(
        budget, acquisition * inputs.prospects / budget if budget else 0.0, acquisition, retention,
        float(inputs.acquisition.rate(acquisition)), float(inputs.retention.rate(retention)),
        customer_equity(inputs, acquisition, retention),
    )  # fmt: skip
