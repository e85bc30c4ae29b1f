"""Maximum-likelihood fitting shared by the models: compressed data, log-parameters, L-BFGS-B, clear failures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from patron.errors import FitError, InvalidInputError

Array = NDArray[np.float64]
# The objective returns the mean negative log-likelihood and, when it has one, its gradient in log-parameters.
Objective = Callable[[Array], tuple[float, Array]]

LOG_BOUND = 15.0  # parameters stay within e^±15: wide enough for any real base, narrow enough never to overflow


@dataclass(frozen=True)
class Compressed:
    """Unique rows of the model's sufficient statistics with how many customers share each."""

    columns: dict[str, Array]
    weights: Array

    @property
    def customers(self) -> int:
        return int(self.weights.sum())

    @property
    def unique(self) -> int:
        return len(self.weights)


@dataclass(frozen=True)
class FitResult:
    parameters: dict[str, float]
    log_likelihood: float
    customers: int
    unique_rows: int
    iterations: int
    # Delta-method standard errors from the observed information; empty for parameters set by hand.
    standard_errors: dict[str, float] = field(default_factory=dict)


class MaximumLikelihoodModel:
    """The fitted state every model shares: parameters, log-likelihood, and parameters set by hand."""

    name: str
    parameter_names: tuple[str, ...]

    def __init__(self) -> None:
        self._fit: FitResult | None = None

    @property
    def fitted(self) -> FitResult:
        if self._fit is None:
            raise FitError(f"{self.name} has not been fitted yet", kind="not_fitted")
        return self._fit

    @property
    def params(self) -> dict[str, float]:
        return self.fitted.parameters

    @property
    def log_likelihood(self) -> float:
        return self.fitted.log_likelihood

    def with_params(self, **parameters: float) -> Self:
        """A model with known parameters (from a stored run or a paper), ready to forecast."""
        if set(parameters) != set(self.parameter_names):
            raise InvalidInputError(f"{self.name} takes parameters {', '.join(self.parameter_names)}")
        self._fit = FitResult({k: float(parameters[k]) for k in self.parameter_names}, float("nan"), 0, 0, 0)
        return self


def floats(values: object) -> Array:
    """``values`` as a float array (scipy's special functions are untyped)."""
    return np.asarray(values, dtype=np.float64)


def as_array(values: ArrayLike, name: str) -> Array:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional", field=name)
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{name} holds missing or infinite values", field=name)
    return array


def compress(columns: dict[str, Array], weights: Array | None = None) -> Compressed:
    """Group identical rows: 2.36M customers often share a few thousand (frequency, recency, T) triples."""
    frame = pl.DataFrame(columns).with_columns(
        pl.Series("__weight__", np.ones(len(next(iter(columns.values())))) if weights is None else weights)
    )
    grouped = frame.group_by(list(columns), maintain_order=True).agg(pl.col("__weight__").sum())
    return Compressed(
        {name: grouped[name].to_numpy().astype(np.float64) for name in columns},
        grouped["__weight__"].to_numpy().astype(np.float64),
    )


def maximise(
    objective: Objective,
    names: Sequence[str],
    start: Sequence[float],
    data: Compressed,
    *,
    model: str,
    gradient: bool,
    edge: Callable[[dict[str, float]], str | None] | None = None,
) -> FitResult:
    """Maximise the likelihood over log-parameters; raise :class:`FitError` rather than return a bad fit.

    ``edge`` looks at each accepted iterate and names the parameter heading for a boundary the model has a limit
    at (Pareto/NBD's s when the drop-out rate is already negligible): the fit stops there with an ``edge`` error
    instead of walking on into the region where the likelihood is slow to evaluate.
    """
    if data.customers == 0:
        raise InvalidInputError(f"{model}: there are no customers to fit")
    x0 = np.log(np.asarray(start, dtype=np.float64))
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    # Without an analytic gradient, forward differences steer the optimiser (half the evaluations of central ones,
    # the value at z shared): the convergence check and the standard errors below use central differences.
    steered = objective if gradient else (lambda z: _with_forward_gradient(objective, z))

    def watch(z: Array) -> None:
        estimates = {name: float(v) for name, v in zip(names, np.exp(z), strict=True)}
        if edge is not None and (heading := edge(estimates)) is not None:
            raise _AtEdge(heading, estimates)

    with np.errstate(all="ignore"):
        try:
            result = optimize.minimize(
                steered, x0, jac=True, method="L-BFGS-B", bounds=bounds, callback=watch,
                options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-15},
            )  # fmt: skip
        except _AtEdge as stopped:
            raise FitError(
                f"{model}: {stopped.parameter} is running to the edge of the parameter space", field=stopped.parameter,
                kind="edge", estimates=stopped.estimates,
            ) from None  # fmt: skip
    value = float(result.fun)
    if not np.isfinite(value):
        raise FitError(f"{model}: the likelihood is not finite at the optimum; the data cannot identify the model")
    at_bound = np.abs(result.x) >= LOG_BOUND - 1e-6
    if at_bound.any():
        stuck = ", ".join(name for name, hit in zip(names, at_bound, strict=True) if hit)
        raise FitError(
            f"{model}: the fit did not converge ({stuck} ran off to the edge of the parameter space); "
            "the data has too few repeat purchases or too short a history for this model",
            field=next(name for name, hit in zip(names, at_bound, strict=True) if hit),
            kind="edge",
            estimates={name: float(v) for name, v in zip(names, np.exp(result.x), strict=True)},
        )
    with np.errstate(all="ignore"):  # the checks probe around the optimum, where the special functions may overflow
        if not result.success and not np.max(np.abs(_central_gradient(objective, result.x))) <= 1e-4:
            raise FitError(
                f"{model}: the optimiser did not converge ({result.message})", kind="failed",
                estimates={name: float(v) for name, v in zip(names, np.exp(result.x), strict=True)},
            )  # fmt: skip
        errors = _standard_errors(objective, result.x, names, data.customers, model=model, gradient=gradient)
    parameters = {name: float(v) for name, v in zip(names, np.exp(result.x), strict=True)}
    return FitResult(parameters, -value * data.customers, data.customers, data.unique, int(result.nit), errors)


def _standard_errors(
    objective: Objective, z: Array, names: Sequence[str], customers: int, *, model: str, gradient: bool
) -> dict[str, float]:
    """Standard errors from the observed information; a flat direction means the data cannot identify the model."""
    step = 1e-4
    hessian = np.empty((len(z), len(z)))
    for i in range(len(z)):
        shift = np.zeros_like(z)
        shift[i] = step
        if gradient:
            upper, lower = objective(z + shift)[1], objective(z - shift)[1]
        else:
            upper, lower = _central_gradient(objective, z + shift), _central_gradient(objective, z - shift)
        hessian[i] = (upper - lower) / (2 * step)
    information = customers * (hessian + hessian.T) / 2
    if not np.isfinite(information).all():
        raise FitError(f"{model}: the likelihood cannot be evaluated around the optimum; the fit is no answer")
    eigenvalues, eigenvectors = np.linalg.eigh(information)
    if eigenvalues[0] <= 1e-6 * max(eigenvalues[-1], 1.0):
        weakest = names[int(np.argmax(np.abs(eigenvectors[:, 0])))]
        raise FitError(
            f"{model}: the data cannot identify the model (the likelihood is flat in {weakest}); "
            "it needs more customers with repeat purchases or a longer history",
            field=weakest,
            kind="flat",
            estimates={name: float(v) for name, v in zip(names, np.exp(z), strict=True)},
        )
    log_errors = np.sqrt(np.diag(np.linalg.inv(information)))
    return {name: float(np.exp(v) * e) for name, v, e in zip(names, z, log_errors, strict=True)}


class _AtEdge(Exception):
    def __init__(self, parameter: str, estimates: dict[str, float]) -> None:
        super().__init__(parameter)
        self.parameter, self.estimates = parameter, estimates


def _with_forward_gradient(objective: Objective, z: Array, step: float = 1e-7) -> tuple[float, Array]:
    """The objective at z and its forward-difference gradient."""
    base = objective(z)[0]
    gradient = np.empty_like(z)
    for i in range(len(z)):
        shift = np.zeros_like(z)
        shift[i] = step
        gradient[i] = (objective(z + shift)[0] - base) / step
    return base, gradient


def _central_gradient(objective: Objective, z: Array, step: float = 1e-6) -> Array:
    gradient = np.empty_like(z)
    for i in range(len(z)):
        shift = np.zeros_like(z)
        shift[i] = step
        gradient[i] = (objective(z + shift)[0] - objective(z - shift)[0]) / (2 * step)
    return gradient


def maximise_without_gradient(
    log_likelihood: Callable[..., Array], columns: Sequence[str], names: Sequence[str], start: Sequence[float],
    data: Compressed, *, model: str, edge: Callable[[dict[str, float]], str | None] | None = None,
) -> FitResult:  # fmt: skip
    """:func:`maximise` for a model whose likelihood has no analytic gradient: ``log_likelihood(params, *columns)``
    per distinct history, weighted by how many customers share it."""
    values, weights = [data.columns[name] for name in columns], data.weights
    total = weights.sum()

    def objective(z: Array) -> tuple[float, Array]:
        return -float(weights @ log_likelihood(np.exp(z), *values)) / total, np.zeros_like(z)

    return maximise(objective, names, start, data, model=model, gradient=False, edge=edge)
