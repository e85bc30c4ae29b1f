"""Uplift models trained on a past randomised campaign in the store, and the scores that target the next one.

The campaign's members are the experiment: its control group (``is_control``) against the contacted members (or one
arm of them); the outcome is whether they gave a response of one kind (visit, conversion, bought …). Features are
the customer feature frame, without any campaign response (they would leak the outcome). Each learner of
``uplift.LEARNERS`` is judged on a stratified held-out share; the best Qini is kept and every customer of the frame is
scored with their predicted uplift (a model run of kind ``uplift``, so scores are versioned like any model's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.model_selection import train_test_split
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.store import id_by_key
from patron.errors import InvalidInputError
from patron.predict.design import fit_design, matrix
from patron.predict.models import RUNS, SCORES, store_model_run
from patron.predict.uplift import LEARNERS, Evaluation, evaluate
from patron.segments.features import build_features

MEMBERS = table_of(s.CampaignMember)
RESPONSES = table_of(s.CampaignResponse)
MIN_GROUP = 200  # fewer contacted or control members than this cannot show an effect worth modelling


@dataclass(frozen=True)
class TrainedUplift:
    run_id: int
    chosen: str
    evaluations: dict[str, Evaluation]
    train_rows: int
    holdout_rows: int
    scored: int


def experiment(engine: Engine, campaign: str, kind: str, *, arm: str | None = None) -> pl.DataFrame:
    """customer_id, treated, outcome for the campaign's control group and its contacted members (or one arm)."""
    campaign_id = id_by_key(engine, table_of(s.Campaign).c.campaign_key, campaign, what="campaign", field="campaign")
    responded = select(RESPONSES.c.customer_id).where(RESPONSES.c.campaign_id == campaign_id, RESPONSES.c.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(
            select(MEMBERS.c.customer_id, MEMBERS.c.arm, MEMBERS.c.is_control, MEMBERS.c.customer_id.in_(responded))
            .where(MEMBERS.c.campaign_id == campaign_id)
        ).all()  # fmt: skip
    frame = pl.DataFrame(
        rows, schema={"customer_id": pl.Int64, "arm": pl.String, "control": pl.Boolean, "outcome": pl.Boolean},
        orient="row",
    )  # fmt: skip
    if arm is not None:
        arms = sorted(set(frame.filter(~pl.col("control"))["arm"].to_list()))
        if arm not in arms:
            raise InvalidInputError(
                f"campaign {campaign!r} has no arm {arm!r}; its arms: {', '.join(arms)}", field="arm"
            )
        frame = frame.filter(pl.col("control") | (pl.col("arm") == arm))
    controls, contacted = int(frame["control"].sum()), int((~frame["control"]).sum())
    if min(controls, contacted) < MIN_GROUP:
        raise InvalidInputError(
            f"campaign {campaign!r} has {controls:,} control and {contacted:,} contacted members; an uplift model "
            f"needs a randomised control group and at least {MIN_GROUP} of each",
            field="campaign",
        )
    if frame["outcome"].sum() == 0:
        raise InvalidInputError(f"nobody in campaign {campaign!r} gave a {kind!r} response", field="kind")
    return frame.select("customer_id", (~pl.col("control")).alias("treated"), pl.col("outcome").cast(pl.Int8))


def train_uplift(
    engine: Engine, name: str, *, campaign: str, kind: str, arm: str | None = None, seed: int = 0,
    holdout: float = 0.3, as_of: dt.date | None = None,
) -> TrainedUplift:  # fmt: skip
    """Learn who responds because they were contacted; judge each learner on a held-out share; score everyone."""
    members = experiment(engine, campaign, kind, arm=arm)
    features = build_features(engine, as_of=as_of)
    frame = features.customers.join(members, on="customer_id")
    leaking = [c for c in frame.columns if c.startswith("responded.")]
    candidates = [c for c in features.customers.columns if c not in leaking]
    design = fit_design(frame, candidates, features.as_of)
    design.scope = features.scope
    x = matrix(design, frame)
    treated = frame["treated"].to_numpy().astype(bool)
    outcome = frame["outcome"].to_numpy().astype(np.int64)
    strata = treated.astype(int) * 2 + outcome
    train, test = train_test_split(np.arange(len(outcome)), test_size=holdout, stratify=strata, random_state=seed)
    fitted, evaluations = {}, {}
    for learner_name, learner in LEARNERS.items():
        fitted[learner_name] = learner(seed=seed).fit(x[train], treated[train], outcome[train])
        predicted = fitted[learner_name].predict(x[test])
        evaluations[learner_name] = evaluate(learner_name, predicted, treated[test], outcome[test], seed=seed)
    chosen = max(evaluations, key=lambda learner_name: evaluations[learner_name].qini)
    everyone = features.customers
    scores = everyone.select("customer_id").with_columns(
        pl.Series("score", fitted[chosen].predict(matrix(design, everyone)))
    )
    card: dict[str, Any] = {
        "kind": "uplift", "name": name, "target": f"{kind} response to {campaign}" + (f" (arm {arm})" if arm else ""),
        "population": f"members of {campaign}", "campaign": campaign, "response": kind, "arm": arm,
        "created_at": utcnow().isoformat(timespec="seconds"), "as_of": features.as_of.isoformat(),
        "features": sorted({design.source_of(c) for c in design.columns}), "train_rows": len(train),
        "holdout_rows": len(test), "chosen": chosen, "seed": seed,
        "metrics": {n: {"qini": e.qini, "qini_low": e.qini_low, "qini_high": e.qini_high,
                        "top_uplift": e.top_uplift, "overall_uplift": e.overall_uplift}
                    for n, e in evaluations.items()},
        "by_decile": evaluations[chosen].by_decile, "evaluations": [asdict(e) for e in evaluations.values()],
    }  # fmt: skip
    run_id = store_model_run(engine, card, design, fitted[chosen], scores)
    return TrainedUplift(run_id, chosen, evaluations, len(train), len(test), scores.height)


def uplift_scores(engine: Engine, model: str) -> dict[int, float]:
    """Each customer's predicted uplift from the newest run of the uplift model ``model``."""
    with engine.connect() as conn:
        run = conn.execute(
            select(RUNS.c.id, RUNS.c.card).where(RUNS.c.name == model).order_by(RUNS.c.id.desc()).limit(1)
        ).first()
        if run is None:
            raise InvalidInputError(
                f"there is no model called {model!r}: train one with `patron models uplift`", field="uplift_model"
            )
        if run.card.get("kind") != "uplift":
            raise InvalidInputError(
                f"model {model!r} predicts who responds, not who responds because of the contact: train an uplift "
                "model on a randomised campaign with `patron models uplift`",
                field="uplift_model",
            )
        rows = conn.execute(select(SCORES.c.customer_id, SCORES.c.score).where(SCORES.c.run_id == run.id))
        return {int(customer): float(score) for customer, score in rows}
