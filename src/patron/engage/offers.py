"""Next-best offer: for each customer, the eligible offer with the highest expected value (P(accept) × margin)
that the contact policy lets us make, with the reason shown; a budget keeps the best ones.

P(accept) comes from a propensity model run when one is named for the offer (its stored scores), otherwise from
how often the offer was bought when it was made before (responses of kind ``bought`` in campaigns that carried
it, with one success in 50 as the prior).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, Engine, Row, bindparam, delete, func, insert, select

from patron.cif import schema as s
from patron.cif.ahead import one_ahead
from patron.cif.bulk import DriverRows, driver_rows, insert_rows
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import no_such_customer
from patron.cif.money import major_to_minor, minor_to_major
from patron.cif.store import read_once_more, refresh_statistics
from patron.engage.policy import check_contacts
from patron.engage.schema import CampaignPlan, Offer, OfferCandidate, OfferDecision
from patron.errors import ConflictError, InvalidInputError
from patron.predict.schema import ModelRun, ModelScore
from patron.segments.expression import Context, compile_rule
from patron.segments.features import build_features, feature_schema, parts_for
from patron.settings import get_settings

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


def offer_valid(offer: Any, today: dt.date, channel: str | None) -> bool:
    """An offer row (or a stored candidate joined to its offer) valid today and made on this channel: an offer
    without a channel is made on any, and ``channel=None`` asks for all."""
    valid = (offer.valid_from is None or offer.valid_from <= today) and (
        offer.valid_to is None or offer.valid_to >= today
    )
    return valid and (channel is None or offer.channel is None or offer.channel == channel)


def _valid_offers(engine: Engine, today: dt.date, channel: str | None) -> list[Row[Any]]:
    with engine.connect() as conn:
        return [row for row in conn.execute(select(OFFERS)) if offer_valid(row, today, channel)]


_NO_CANDIDATES = pl.DataFrame(
    schema={"customer_id": pl.Int64, "offer_id": pl.Int64, "p_accept": pl.Float64, "expected_value": pl.Float64}
)


@dataclass(frozen=True)
class Judgement:
    """How one offer is weighed for every customer: its name, where P(accept) comes from, and its margin."""

    name: str
    p_source: str
    margin_minor: int
    currency: str

    @property
    def margin(self) -> float:
        return minor_to_major(self.margin_minor, self.currency)

    def reason(self, p_accept: float, expected_value: float) -> str:
        return (
            f"{self.name}: P(accept) {round(p_accept, 3)} ({self.p_source}) × margin {self.margin:.2f}"
            f" = {round(expected_value, 2)}"
        )


def _candidates(
    engine: Engine,
    offers: Sequence[Row[Any]],
    customer_ids: Sequence[int] | None,
    models: Mapping[str, str] | None,
    as_of: dt.date | None,
) -> tuple[list[int], pl.DataFrame, dict[int, Judgement]]:
    """Every (customer, eligible offer) with P(accept) and P(accept) × margin; the customers considered; and how
    each offer was judged."""
    schema = feature_schema(engine)
    rules = {offer.id: compile_rule(offer.eligibility, schema) for offer in offers if offer.eligibility}
    needed = parts_for(field for rule in rules.values() for field in rule.fields)
    features = build_features(engine, as_of=as_of, customer_ids=customer_ids, parts=needed)
    ids = features.customers["customer_id"].to_list()
    context = Context(features.categories, features.as_of)
    candidates, judgements = [], {}
    for offer in offers:
        eligible = features.customers
        if offer.id in rules:
            eligible = eligible.filter(rules[offer.id].expression(context))
        if models and offer.name in models:
            scores = _model_scores(engine, models[offer.name])
            source = f"model {models[offer.name]}"
            propensity = eligible.select(
                "customer_id", pl.col("customer_id").replace_strict(scores, default=None).alias("p_accept")
            )
        else:
            rate, source = _history_rate(engine, offer.id)
            propensity = eligible.select("customer_id", pl.lit(rate).alias("p_accept"))
        judgements[offer.id] = judgement = Judgement(offer.name, source, offer.margin_minor, offer.currency)
        candidates.append(
            propensity.drop_nulls().select(
                "customer_id",
                pl.lit(offer.id, dtype=pl.Int64).alias("offer_id"),
                "p_accept",
                (pl.col("p_accept") * judgement.margin).alias("expected_value"),
            )
        )
    frame = pl.concat(candidates) if candidates else _NO_CANDIDATES
    return ids, frame, judgements


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
    offers = _valid_offers(engine, as_of or dt.date.today(), channel)
    if not offers:
        everyone = build_features(engine, as_of=as_of, customer_ids=customer_ids, parts=()).customers["customer_id"]
        return [OfferChoice(c, None, 0.0, "no offer is valid today on this channel") for c in everyone.to_list()]
    ids, candidates, judgements = _candidates(engine, offers, customer_ids, models, as_of)
    best = candidates.sort("expected_value", descending=True).group_by("customer_id", maintain_order=True).first()
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
            judged = judgements[row["offer_id"]]
            value = float(row["expected_value"])
            results.append(OfferChoice(customer, judged.name, value, judged.reason(row["p_accept"], value)))
    results.sort(key=lambda choice: -choice.expected_value)
    if budget is not None:
        kept = [c for c in results if c.offer is not None][:budget]
        dropped = {c.customer_id for c in results if c.offer is not None} - {c.customer_id for c in kept}
        results = [
            c if c.customer_id not in dropped else OfferChoice(c.customer_id, None, 0.0, "outside the budget")
            for c in results
        ]
    return results


CANDIDATES = table_of(OfferCandidate)
DECISIONS = table_of(OfferDecision)
KEEP_PER_CUSTOMER = 5
_STORED = (
    select(
        CANDIDATES.c.offer_id,
        CANDIDATES.c.p_accept,
        CANDIDATES.c.expected_value,
        OFFERS.c.name,
        OFFERS.c.channel,
        OFFERS.c.valid_from,
        OFFERS.c.valid_to,
        DECISIONS.c.p_source,
        DECISIONS.c.margin_minor,
        DECISIONS.c.currency,
        select(func.max(DECISIONS.c.decided_at)).scalar_subquery().label("decided_at"),  # one for the decision
    )
    .outerjoin(OFFERS, OFFERS.c.id == CANDIDATES.c.offer_id)
    .outerjoin(DECISIONS, DECISIONS.c.offer_id == CANDIDATES.c.offer_id)
    .where(CANDIDATES.c.customer_id == bindparam("customer_id", type_=BigInteger()))
    .order_by(CANDIDATES.c.rank)
)  # fmt: skip  (built once: it runs on every real-time lookup)


DECIDED_PER_TRANSACTION = 100_000  # customers whose candidates are replaced in one transaction


def decide_offers(
    engine: Engine,
    *,
    models: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Work out every customer's eligible offers (up to five, best first) and store them, replacing the last
    decision; the real-time lookup reads them. Returns the customers decided.

    The base is written a range of customer ids at a time, each range in its own transaction that deletes the
    range's old candidates and inserts the new ones: a reader sees a customer's old decision or the new one,
    never a mix, and no transaction holds millions of rows (2.36M customers × 5 offers are 24 ranges). How each
    offer is judged (``offer_decisions``, the same for every customer) is replaced first, in a transaction of its
    own. ``progress(done, total)`` follows the customers written.
    """
    decided_at = utcnow()
    offers = _valid_offers(engine, as_of or dt.date.today(), None)
    ids, candidates, judgements = (
        _candidates(engine, offers, None, models, as_of) if offers else ([], _NO_CANDIDATES, {})
    )
    kept = (
        candidates.sort("expected_value", descending=True)
        .group_by("customer_id", maintain_order=True)
        .head(KEEP_PER_CUSTOMER)
    )
    everyone = pl.DataFrame({"customer_id": pl.Series(sorted(ids), dtype=pl.Int64)})
    ineligible = everyone.join(kept.select("customer_id").unique(), on="customer_id", how="anti")
    rows = pl.concat(
        [
            kept,
            ineligible.select(
                "customer_id",
                pl.lit(None, dtype=pl.Int64).alias("offer_id"),
                pl.lit(None, dtype=pl.Float64).alias("p_accept"),
                pl.lit(0.0).alias("expected_value"),
            ),
        ]
    )
    starts = everyone.get_column("customer_id").gather_every(DECIDED_PER_TRANSACTION).to_list()
    lows, highs = [None, *starts[1:]], [*starts[1:], None]  # the first range reaches down, the last up: no gaps
    ranges = list(zip(lows, highs, strict=True))

    def prepared(low: int | None, high: int | None) -> DriverRows:
        chosen = [pl.col("customer_id") >= low] if low is not None else []
        chosen += [pl.col("customer_id") < high] if high is not None else []
        batch = rows.filter(*chosen) if chosen else rows
        ordered = batch.sort("customer_id", "expected_value", descending=[False, True], maintain_order=True)
        ranked = ordered.with_columns(pl.int_range(pl.len(), dtype=pl.Int16).over("customer_id").alias("rank"))
        return driver_rows(engine.dialect, CANDIDATES, ranked)

    with engine.begin() as conn:
        conn.execute(delete(DECISIONS))
        if judgements:
            conn.execute(
                insert(DECISIONS),
                [
                    {
                        "offer_id": offer_id,
                        "p_source": judged.p_source,
                        "margin_minor": judged.margin_minor,
                        "currency": judged.currency,
                        "decided_at": decided_at,
                    }
                    for offer_id, judged in judgements.items()
                ],
            )
    # The next range's rows are made ready in a second thread while the store writes this one's.
    readied = one_ahead(lambda bounds: prepared(*bounds), ranges)
    for index, ((low, high), ready) in enumerate(zip(ranges, readied, strict=True)):
        stored = [CANDIDATES.c.customer_id >= low] if low is not None else []
        stored += [CANDIDATES.c.customer_id < high] if high is not None else []
        with engine.begin() as conn:
            conn.execute(delete(CANDIDATES).where(*stored))
            insert_rows(conn, ready)
        if progress is not None:
            progress(min((index + 1) * DECIDED_PER_TRANSACTION, len(ids)), len(ids))
    refresh_statistics(engine, rows_written=rows.height)  # the real-time lookup reads these by customer
    return len(ids)


def next_best_offer(engine: Engine, customer_id: int, *, channel: str = "email") -> OfferChoice:
    """One customer's next-best offer in real time: their stored candidates (``decide_offers``) filtered by
    today's validity and the channel, then the contact policy checked now. A customer not decided yet (new since
    the last decision, or no decision ever made) is worked out on the spot, as ``next_best_offers`` does."""
    today = dt.date.today()
    stored = read_once_more(engine, lambda conn: conn.execute(_STORED, {"customer_id": customer_id}).all())
    if not stored:
        choices = next_best_offers(engine, customer_ids=[customer_id], channel=channel)
        if not choices:
            raise no_such_customer(customer_id)
        return choices[0]
    usable = [
        row
        for row in stored
        if row.offer_id is not None and row.p_source is not None and offer_valid(row, today, channel)
    ]  # (an offer without its judgement was dropped by a decision still being written)
    decided = "" if stored[0].decided_at is None else f" (decided {stored[0].decided_at:%Y-%m-%d %H:%M})"
    if not usable:
        return OfferChoice(customer_id, None, 0.0, f"eligible for no offer on {channel}{decided}")
    decision = check_contacts(engine, [customer_id], channel=channel)[customer_id]
    if not decision.allowed:
        return OfferChoice(customer_id, None, 0.0, f"not contacted: {decision.reason}")
    best = usable[0]
    judged = Judgement(best.name, best.p_source, best.margin_minor, best.currency)
    value = float(best.expected_value)
    return OfferChoice(customer_id, best.name, value, f"{judged.reason(best.p_accept, value)}{decided}")


# -- the catalogue ---------------------------------------------------------------------------------------------


def create_offer(
    engine: Engine,
    name: str,
    *,
    margin: float,
    currency: str | None = None,
    description: str | None = None,
    eligibility: str | None = None,
    channel: str | None = None,
) -> int:
    """A new offer: ``eligibility`` is a segment rule, ``channel`` limits it to one channel (default any)."""
    if margin < 0:
        raise InvalidInputError(
            f"offer {name!r} has a negative margin ({margin}); an offer must not lose money by design", field="margin"
        )
    if eligibility:
        compile_rule(eligibility, feature_schema(engine))
    with engine.begin() as conn:
        if conn.scalar(select(OFFERS.c.id).where(OFFERS.c.name == name)) is not None:
            raise ConflictError(f"there is already an offer {name!r}", field="name")
        currency = currency or get_settings().default_currency
        row = {
            "name": name,
            "description": description,
            "margin_minor": major_to_minor(margin, currency),
            "currency": currency,
            "eligibility": eligibility,
            "channel": channel,
        }
        # Decisions made without this offer are stale: lookups work live until offers are decided again.
        conn.execute(delete(CANDIDATES))
        conn.execute(delete(DECISIONS))
        return int(conn.execute(insert(OFFERS).values(row).returning(OFFERS.c.id)).scalar_one())


def list_offers(engine: Engine) -> list[dict[str, Any]]:
    """Every offer, newest first, with its margin in the currency's units."""
    with engine.connect() as conn:
        rows = conn.execute(select(OFFERS).order_by(OFFERS.c.id.desc())).mappings().all()
    return [{**row, "margin": minor_to_major(row["margin_minor"], row["currency"])} for row in rows]
