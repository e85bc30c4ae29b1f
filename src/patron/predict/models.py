"""Predictive models on the customer feature frame: churn risk, response propensity, best prospects.

A model is defined by two rules in the segment language: the *population* it learns from and the *target*
(true/false) it predicts, e.g. population ``source == "telco"``, target ``attributes.churned``. Fields the
target reads are never features (no leakage), nor are any listed in ``exclude``. Two learners are trained on a
stratified split: a logistic-regression baseline and gradient boosting with isotonic probability calibration;
the better one on the holdout is kept. Every run stores a model card and versioned per-customer scores.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import joblib
import numpy as np
import polars as pl
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import Engine, insert, select

from patron.cif.columns import table_of, utcnow
from patron.cif.facts import Scope
from patron.cif.ledger import no_such_customer
from patron.errors import InvalidInputError, NotFoundError
from patron.predict.design import Design, fit_design, matrix
from patron.predict.schema import ModelRun, ModelScore
from patron.segments.expression import Context, compile_rule
from patron.segments.features import Features, build_features, feature_schema

RUNS = table_of(ModelRun)
SCORES = table_of(ModelScore)
MIN_CLASS = 20  # fewer examples of a class than this cannot be learned or judged


@dataclass
class ModelCard:
    name: str
    target: str
    population: str
    created_at: str
    as_of: str
    features: list[str]
    train_rows: int
    holdout_rows: int
    positive_rate: float
    chosen: str
    metrics: dict[str, dict[str, float]]
    calibration: list[dict[str, float]]
    lift: list[dict[str, float]]
    top_drivers: list[dict[str, float | str]]
    seed: int
    excluded: list[str] = field(default_factory=list)


@dataclass
class TrainedModel:
    run_id: int
    card: ModelCard
    scores: pl.DataFrame


def _rows(features: Features, rule: str | None, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if not rule:
        return features.customers
    compiled = compile_rule(rule, schema)
    return features.customers.filter(compiled.expression(Context(features.categories, features.as_of)))


def train_model(
    engine: Engine,
    name: str,
    *,
    target: str,
    population: str | None = None,
    exclude: Sequence[str] = (),
    score_population: str | None = None,
    as_of: dt.date | None = None,
    scope: Scope | None = None,
    seed: int = 0,
    holdout: float = 0.25,
) -> TrainedModel:
    """Train, judge on a stratified holdout, store the card and score ``score_population`` (default: population)."""
    schema = feature_schema(engine)
    target_rule = compile_rule(target, schema)
    features = build_features(engine, as_of=as_of, scope=scope)
    frame = _rows(features, population, schema)
    labels = frame.select(target_rule.expression(Context(features.categories, features.as_of)))[:, 0].to_numpy()
    positives = int(labels.sum())
    if min(positives, len(labels) - positives) < MIN_CLASS:
        raise InvalidInputError(
            f"the target is true for {positives:,} and false for {len(labels) - positives:,} customers; "
            f"each needs at least {MIN_CLASS} to learn from",
            field="target",
        )
    leaking = set(target_rule.fields) | set(exclude)
    candidates = [c for c in frame.columns if c not in leaking]
    design = fit_design(frame, candidates, features.as_of)
    design.scope = features.scope
    x = matrix(design, frame)
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels.astype(int), test_size=holdout, stratify=labels, random_state=seed
    )
    learners = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=0.5)),
        "gradient_boosting": CalibratedClassifierCV(
            HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=seed),
            method="isotonic",
            cv=3,
        ),
    }
    metrics: dict[str, dict[str, float]] = {}
    for label, learner in learners.items():
        learner.fit(x_train, y_train)
        predicted = learner.predict_proba(x_test)[:, 1]
        metrics[label] = {
            "auc": float(roc_auc_score(y_test, predicted)),
            "brier": float(brier_score_loss(y_test, predicted)),
        }
    chosen = max(metrics, key=lambda label: metrics[label]["auc"])
    model = learners[chosen]
    predicted = model.predict_proba(x_test)[:, 1]
    card = ModelCard(
        name=name,
        target=target_rule.text,
        population=population or "everyone",
        created_at=utcnow().isoformat(timespec="seconds"),
        as_of=features.as_of.isoformat(),
        features=sorted({design.source_of(c) for c in design.columns}),
        train_rows=len(y_train),
        holdout_rows=len(y_test),
        positive_rate=float(labels.mean()),
        chosen=chosen,
        metrics=metrics,
        calibration=_deciles(y_test, predicted, "calibration"),
        lift=_deciles(y_test, predicted, "lift"),
        top_drivers=_drivers(model, design, x_test, y_test, seed),
        seed=seed,
        excluded=sorted(leaking),
    )
    scored = _rows(features, score_population, schema) if score_population else frame
    scores = scored.select("customer_id").with_columns(
        pl.Series("score", model.predict_proba(matrix(design, scored))[:, 1])
    )
    run_id = store_model_run(engine, asdict(card), design, model, scores)
    return TrainedModel(run_id, card, scores)


def _deciles(y: NDArray[np.int_], predicted: NDArray[np.float64], kind: str) -> list[dict[str, float]]:
    """Per decile of predicted probability (highest first): mean predicted vs observed, and lift."""
    order = np.argsort(-predicted, kind="stable")
    groups = np.array_split(order, 10)
    base = float(y.mean())
    rows: list[dict[str, float]] = []
    captured = 0
    for number, group in enumerate(groups, start=1):
        observed = float(y[group].mean())
        captured += int(y[group].sum())
        if kind == "calibration":
            rows.append({"decile": number, "predicted": float(predicted[group].mean()), "observed": observed})
        else:
            rows.append(
                {
                    "decile": number,
                    "lift": observed / base if base else 0.0,
                    "cumulative_capture": captured / max(y.sum(), 1),
                }
            )
    return rows


def _drivers(
    model: Any, design: Design, x: NDArray[np.float64], y: NDArray[np.int_], seed: int
) -> list[dict[str, float | str]]:
    """Permutation importance per raw field on the holdout: how much AUC drops when the field is shuffled."""
    rng = np.random.default_rng(seed)
    baseline = roc_auc_score(y, model.predict_proba(x)[:, 1])
    columns = design.columns
    fields: dict[str, list[int]] = {}
    for index, column in enumerate(columns):
        fields.setdefault(design.source_of(column), []).append(index)
    drops = []
    for name, indices in fields.items():
        shuffled = x.copy()
        permutation = rng.permutation(len(x))
        shuffled[:, indices] = x[permutation][:, indices]
        drops.append((name, float(baseline - roc_auc_score(y, model.predict_proba(shuffled)[:, 1]))))
    drops.sort(key=lambda item: -item[1])
    return [{"feature": name, "auc_drop": round(drop, 4)} for name, drop in drops[:10]]


def store_model_run(engine: Engine, card: dict[str, Any], design: Design, model: Any, scores: pl.DataFrame) -> int:
    """A model run (its card, the pickled design and learner) and its per-customer scores with their deciles."""
    buffer = io.BytesIO()
    joblib.dump({"design": design, "model": model}, buffer)
    rank = scores["score"].rank(method="ordinal", descending=True).cast(pl.Int64)
    deciles = 1 + (rank - 1) * 10 // max(scores.height, 1)  # 1 = the most likely tenth
    with engine.begin() as conn:
        run_id = int(
            conn.execute(
                insert(RUNS).values(name=card["name"], card=card, artifact=buffer.getvalue()).returning(RUNS.c.id)
            ).scalar_one()
        )
        rows = scores.with_columns(pl.lit(run_id).alias("run_id"), deciles.alias("decile")).to_dicts()
        for start in range(0, len(rows), 5000):
            conn.execute(insert(SCORES), rows[start : start + 5000])
    return run_id


def model_card(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        card = conn.scalar(select(RUNS.c.card).where(RUNS.c.id == run_id))
    if card is None:
        raise NotFoundError(f"there is no model run {run_id}", field="run")
    return dict(card)


def list_models(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(RUNS.c.id, RUNS.c.name, RUNS.c.created_at, RUNS.c.card).order_by(RUNS.c.id.desc()))
        return [
            {"id": r.id, "name": r.name, "created_at": r.created_at, "chosen": r.card["chosen"],
             "kind": r.card.get("kind", "propensity"), "auc": r.card["metrics"][r.card["chosen"]].get("auc"),
             "qini": r.card["metrics"][r.card["chosen"]].get("qini"), "target": r.card["target"]}
            for r in rows
        ]  # fmt: skip


def explain(engine: Engine, run_id: int, customer_id: int, *, top: int = 5) -> list[tuple[str, float]]:
    """The fields that move this customer's score most: score change when each is set to its typical value."""
    with engine.connect() as conn:
        artifact = conn.scalar(select(RUNS.c.artifact).where(RUNS.c.id == run_id))
    if artifact is None:
        raise NotFoundError(f"there is no model run {run_id}", field="run")
    stored = joblib.load(io.BytesIO(artifact))
    design: Design = stored["design"]
    features = build_features(engine, as_of=design.as_of, customer_ids=[customer_id], scope=design.scope)
    if features.customers.height == 0:
        raise no_such_customer(customer_id)
    frame = features.customers.with_columns(
        pl.lit(None).alias(name)
        for name in [*design.numeric, *design.dates, *design.levels]
        if name not in features.customers.columns
    )
    row = matrix(design, frame)
    score = float(stored["model"].predict_proba(row)[0, 1])
    typical = _typical_row(design)
    sources = [design.source_of(column) for column in design.columns]
    effects: dict[str, float] = {}
    for name in dict.fromkeys(sources):
        changed = row.copy()
        indices = [i for i, source in enumerate(sources) if source == name]
        changed[0, indices] = typical[indices]
        effects[name] = score - float(stored["model"].predict_proba(changed)[0, 1])
    ranked = sorted(effects.items(), key=lambda item: -abs(item[1]))
    return [(name, round(effect, 4)) for name, effect in ranked[:top]]


def _typical_row(design: Design) -> NDArray[np.float64]:
    """Medians, no missing flags, the most common level: the baseline a contribution is measured against."""
    values: list[float] = [design.medians[n] for n in design.numeric] + [0.0] * len(design.numeric)
    values += [design.date_medians[n] for n in design.dates]
    for levels in design.levels.values():
        values += [1.0] + [0.0] * (len(levels) - 1) + [0.0]
    return np.array(values)


def model_scores(engine: Engine, run_id: int) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            select(SCORES.c.customer_id, SCORES.c.score, SCORES.c.decile).where(SCORES.c.run_id == run_id)
        ).all()
    return pl.DataFrame(rows, schema={"customer_id": pl.Int64, "score": pl.Float64, "decile": pl.Int64}, orient="row")
