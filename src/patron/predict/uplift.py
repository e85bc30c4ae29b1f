"""Uplift models: who responds *because* we contact them, learned from a past randomised campaign.

A response model ranks the customers likely to respond anyway; an uplift model ranks the change the contact makes,
τ(x) = P(respond | contacted, x) − P(respond | not contacted, x), which only a randomised control group can reveal.
Two meta-learners over scikit-learn's histogram gradient boosting, both judged on a held-out part:
- two-model (T-learner): one response model per group, τ = μ₁(x) − μ₀(x);
- X-learner (Künzel, Sekhon, Bickel & Yu 2019, PNAS 116(10)): imputes each customer's effect with the other group's
  model, fits those effects per group, and blends the two by the share treated (the propensity, known by design).
Judged by the Qini curve (Radcliffe 2007): the incremental responders among the top n by predicted uplift,
R_T(n) − R_C(n)·N_T(n)/N_C(n); the Qini coefficient is the area between it and random targeting (both axes as
shares of the holdout), with a bootstrap interval over the holdout's customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100, early_stopping=True,
        validation_fraction=0.2, n_iter_no_change=20, random_state=seed,
    )  # fmt: skip


def _regressor(seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100, early_stopping=True,
        validation_fraction=0.2, n_iter_no_change=20, random_state=seed,
    )  # fmt: skip


class TwoModelUplift:
    name = "two-model"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, x: FloatArray, treated: BoolArray, outcome: NDArray[np.int_]) -> TwoModelUplift:
        self.treated_model = _classifier(self.seed).fit(x[treated], outcome[treated])
        self.control_model = _classifier(self.seed).fit(x[~treated], outcome[~treated])
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        treated = self.treated_model.predict_proba(x)[:, 1]
        control = self.control_model.predict_proba(x)[:, 1]
        return np.asarray(treated - control, dtype=np.float64)


class XLearnerUplift(TwoModelUplift):
    name = "x-learner"

    def fit(self, x: FloatArray, treated: BoolArray, outcome: NDArray[np.int_]) -> XLearnerUplift:
        super().fit(x, treated, outcome)
        y = outcome.astype(np.float64)
        # Each group's imputed effect: what happened minus what the other group's model says would have happened.
        effect_treated = y[treated] - self.control_model.predict_proba(x[treated])[:, 1]
        effect_control = self.treated_model.predict_proba(x[~treated])[:, 1] - y[~treated]
        self.effect_of_treated = _regressor(self.seed).fit(x[treated], effect_treated)
        self.effect_of_control = _regressor(self.seed).fit(x[~treated], effect_control)
        self.propensity = float(treated.mean())
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        # Weight each group's effect model by how much of the data the *other* group supplied to it.
        from_control = self.effect_of_control.predict(x)
        from_treated = self.effect_of_treated.predict(x)
        return np.asarray(self.propensity * from_control + (1 - self.propensity) * from_treated, dtype=np.float64)


LEARNERS = {"two-model": TwoModelUplift, "x-learner": XLearnerUplift}


def qini_curve(uplift: FloatArray, treated: BoolArray, outcome: NDArray[np.int_]) -> tuple[FloatArray, FloatArray]:
    """Shares targeted (0…1) and incremental responders as a share of all customers, best predicted uplift first."""
    order = np.argsort(-uplift, kind="stable")
    t, y = treated[order], outcome[order].astype(np.float64)
    treated_n, control_n = np.cumsum(t), np.cumsum(~t)
    treated_r, control_r = np.cumsum(y * t), np.cumsum(y * ~t)
    scale = np.divide(treated_n, control_n, out=np.zeros(len(y)), where=control_n > 0)
    gained = treated_r - control_r * scale
    n = len(y)
    return np.concatenate([[0.0], np.arange(1, n + 1) / n]), np.concatenate([[0.0], gained / n])


def qini_coefficient(uplift: FloatArray, treated: BoolArray, outcome: NDArray[np.int_]) -> float:
    """Area between the model's Qini curve and random targeting (the straight line to the same end point)."""
    share, gained = qini_curve(uplift, treated, outcome)
    random = share * gained[-1]
    return float(np.trapezoid(gained - random, share))


@dataclass(frozen=True)
class Evaluation:
    learner: str
    qini: float
    qini_low: float  # 95 % bootstrap interval
    qini_high: float
    by_decile: list[dict[str, float]]  # predicted vs observed uplift per tenth, best predicted first
    overall_uplift: float  # treated minus control response rate in the holdout: contact everyone
    top_share: float
    top_uplift: float  # the same among the top ``top_share`` by predicted uplift


def observed_uplift(treated: BoolArray, outcome: NDArray[np.int_]) -> float:
    if not treated.any() or treated.all():
        return float("nan")
    return float(outcome[treated].mean() - outcome[~treated].mean())


def evaluate(
    learner: str, uplift: FloatArray, treated: BoolArray, outcome: NDArray[np.int_], *, seed: int = 0,
    resamples: int = 200, top_share: float = 0.3,
) -> Evaluation:  # fmt: skip
    """Qini with a bootstrap interval, uplift by decile, and the top share's uplift against contacting everyone."""
    rng = np.random.default_rng(seed)
    qinis = []
    for _ in range(resamples):
        pick = rng.integers(0, len(uplift), len(uplift))
        qinis.append(qini_coefficient(uplift[pick], treated[pick], outcome[pick]))
    low, high = np.percentile(qinis, [2.5, 97.5])
    order = np.argsort(-uplift, kind="stable")
    deciles = []
    for tenth, rows in enumerate(np.array_split(order, 10), start=1):
        deciles.append({
            "decile": float(tenth), "predicted": float(uplift[rows].mean()),
            "observed": observed_uplift(treated[rows], outcome[rows]), "customers": float(len(rows)),
        })  # fmt: skip
    top = order[: round(len(order) * top_share)]
    return Evaluation(
        learner, qini_coefficient(uplift, treated, outcome), float(low), float(high), deciles,
        observed_uplift(treated, outcome), top_share, observed_uplift(treated[top], outcome[top]),
    )  # fmt: skip
