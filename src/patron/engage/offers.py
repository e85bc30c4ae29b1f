"""Next-best offer: for each customer, the eligible offer with the highest expected value (P(accept) × margin)
that the contact policy lets us make, with the reason shown; a budget keeps the best ones.

P(accept) comes from a propensity model run when one is named for the offer (its stored scores), otherwise from
how often the offer was bought when it was made before (responses of kind ``bought`` in campaigns that carried
it, with one success in 50 as the prior).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.schema import table_of
from patron.engage.policy import check_contacts
from patron.engage.schema import CampaignPlan, Offer
from patron.errors import InvalidInputError
from patron.predict.schema import ModelRun, ModelScore
from patron.segments.expression import Context, compile_rule
from patron.segments.features import build_features, feature_schema

OFFERS = table_of(Offer)
PLANS = table_of(CampaignPlan)
MEMBERS = table_of(s.CampaignMember)
RESPONSES = table_of(s.CampaignResponse)
RUNS = table_of(ModelRun)
SCORES = table_of(ModelScore)
PRIOR_SUCCESSES, PRIOR_TRIALS = 1, 50


@dataclass(frozen=True)
class OfferChoice:
    customer_id: int
    offer: str | None
    expected_value: float
    reason: str


def _history_rate(engine: Engine, offer_id: int) -> tuple[float, str]:
    with engine.connect() as conn:
        campaigns = select(PLANS.c.campaign_id).where(PLANS.c.offer_id == offer_id)
        made = conn.scalar(select(func.count()).where(MEMBERS.c.campaign_id.in_(campaigns), ~MEMBERS.c.is_control)) or 0
        bought = (
            conn.scalar(
                select(func.count()).where(RESPONSES.c.campaign_id.in_(campaigns), RESPONSES.c.kind == "bought")
            )
            or 0
        )
    rate = (bought + PRIOR_SUCCESSES) / (made + PRIOR_TRIALS)
    return rate, f"bought {bought} times in {made} offers made"


def _model_scores(engine: Engine, model: str) -> dict[int, float]:
    with engine.connect() as conn:
        run = conn.scalar(select(func.max(RUNS.c.id)).where(RUNS.c.name == model))
        if run is None:
            raise InvalidInputError(
                f"there is no model called {model!r}: train it with `patron models train`", field="models"
            )
        return {
            int(c): float(p)
            for c, p in conn.execute(select(SCORES.c.customer_id, SCORES.c.score).where(SCORES.c.run_id == run))
        }


def next_best_offers(
    engine: Engine,
    *,
    customer_ids: Sequence[int] | None = None,
    channel: str = "email",
    budget: int | None = None,
    models: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
) -> list[OfferChoice]:
    """The best offer per customer (or none, with the reason), best expected value first; ``budget`` keeps the top N."""
    today = as_of or dt.date.today()
    with engine.connect() as conn:
        offers = [
            row for row in conn.execute(select(OFFERS))
            if (row.valid_from is None or row.valid_from <= today) and (row.valid_to is None or row.valid_to >= today)
            and (row.channel is None or row.channel == channel)
        ]  # fmt: skip
    features = build_features(engine, as_of=as_of, customer_ids=customer_ids)
    ids = features.customers["customer_id"].to_list()
    if not offers:
        return [OfferChoice(c, None, 0.0, "no offer is valid today on this channel") for c in ids]
    schema = feature_schema(engine)
    context = Context(features.categories, features.as_of)
    candidates = []
    for offer in offers:
        eligible = features.customers
        if offer.eligibility:
            eligible = eligible.filter(compile_rule(offer.eligibility, schema).expression(context))
        if models and offer.name in models:
            scores = _model_scores(engine, models[offer.name])
            source = f"model {models[offer.name]}"
            propensity = eligible.select(
                "customer_id", pl.col("customer_id").replace_strict(scores, default=None).alias("p")
            )
        else:
            rate, source = _history_rate(engine, offer.id)
            propensity = eligible.select("customer_id", pl.lit(rate).alias("p"))
        margin = offer.margin_minor / 100
        candidates.append(
            propensity.drop_nulls().with_columns(
                pl.lit(offer.name).alias("offer"),
                (pl.col("p") * margin).alias("value"),
                pl.format(
                    f"{offer.name}: P(accept) {{}} ({source}) × margin {margin:.2f} = {{}}",
                    pl.col("p").round(3),
                    (pl.col("p") * margin).round(2),
                ).alias("reason"),
            )
        )
    best = (
        pl.concat(candidates).sort("value", descending=True).group_by("customer_id", maintain_order=True).first()
        if candidates
        else pl.DataFrame()
    )
    decisions = check_contacts(engine, ids, channel=channel)
    chosen = {row["customer_id"]: row for row in best.iter_rows(named=True)}
    results = []
    for customer in ids:
        row = chosen.get(customer)
        if row is None:
            results.append(OfferChoice(customer, None, 0.0, "eligible for no offer"))
        elif not decisions[customer].allowed:
            results.append(OfferChoice(customer, None, 0.0, f"not contacted: {decisions[customer].reason}"))
        else:
            results.append(OfferChoice(customer, str(row["offer"]), float(row["value"]), str(row["reason"])))
    results.sort(key=lambda choice: -choice.expected_value)
    if budget is not None:
        kept = [c for c in results if c.offer is not None][:budget]
        dropped = {c.customer_id for c in results if c.offer is not None} - {c.customer_id for c in kept}
        results = [
            c if c.customer_id not in dropped else OfferChoice(c.customer_id, None, 0.0, "outside the budget")
            for c in results
        ]
    return results
