"""Planning campaigns as experiments: target a rule segment, hold out a random control group, split the rest into
arms (or Thompson waves), check the contact policy and the message templates (Jinja2). ``sending.py`` sends the
plan and records what comes back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Engine, Select, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.facts import main_scope
from patron.cif.money import major_to_minor, minor_to_major
from patron.engage.bandit import Replay, replay_thompson, thompson_allocation
from patron.engage.letters import postal_addresses
from patron.engage.offers import next_best_offers
from patron.engage.policy import check_contacts
from patron.engage.report import campaign_id_of, campaign_report
from patron.engage.schema import CampaignContact, CampaignPlan, Offer
from patron.errors import ConflictError, InvalidInputError, NotFoundError
from patron.predict.campaign_uplift import uplift_scores
from patron.segments.expression import Context, compile_rule
from patron.segments.features import build_features, feature_schema

CAMPAIGNS = table_of(s.Campaign)
MEMBERS = table_of(s.CampaignMember)
RESPONSES = table_of(s.CampaignResponse)
PLANS = table_of(CampaignPlan)
CONTACTS = table_of(CampaignContact)
OFFERS = table_of(Offer)
IDENTITIES = table_of(s.Identity)
TEMPLATE_VARIABLES = frozenset(
    {"name", "first_name", "last_purchase", "recommendations", "manager_signature", "offer", "arm"}
)
TEMPLATES = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
SAMPLE_CONTEXT: dict[str, Any] = {
    "name": "Sample Customer", "first_name": "Sample", "last_purchase": dt.date(2026, 1, 1), "arm": "A",
    "manager_signature": "Your customer team", "offer": {"name": "sample offer", "description": None},
    "recommendations": [{"name": "Sample product", "sku": "S1", "price": "1.00 USD", "product_id": 1}],
}  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    members: int
    control: int
    pending: int
    blocked: dict[str, int]
    # uplift targeting: the expected incremental margin of the contacts made, and of contacting the whole segment
    expected_incremental: float | None = None
    everyone_incremental: float | None = None
    left_out: int = 0  # segment members not targeted: their expected incremental margin is not positive


def check_template(text: str, field: str) -> None:
    """Refuse a template that does not parse or names a variable Patron cannot fill."""
    try:
        parsed = TEMPLATES.parse(text)
    except jinja2.TemplateSyntaxError as error:
        raise InvalidInputError(
            f"the {field} template does not parse: {error.message} (line {error.lineno})", field=field
        ) from error
    unknown = sorted(meta.find_undeclared_variables(parsed) - TEMPLATE_VARIABLES)
    if unknown:
        known = ", ".join(sorted(TEMPLATE_VARIABLES))
        raise InvalidInputError(
            f"the {field} template uses unknown variable(s) {', '.join(unknown)}; known: {known}", field=field
        )
    try:  # a trial run on a sample customer: what the sandbox refuses is refused now, not at the first send
        TEMPLATES.from_string(text).render(SAMPLE_CONTEXT)
    except SecurityError as error:
        raise InvalidInputError(
            f"the {field} template does something templates may not: {error}", field=field
        ) from error
    except jinja2.TemplateError:
        pass  # e.g. an attribute the sample offer lacks: a real customer's context decides, at send


def create_campaign(
    engine: Engine,
    key: str,
    name: str,
    *,
    rule: str,
    subject: str,
    body: str,
    channel: str = "email",
    control_share: float = 0.1,
    arms: Sequence[str] = ("A",),
    suppress_tiers: Sequence[str] = (),
    offer: str | None = None,
    best_offer: bool = False,
    uplift_model: str | None = None,
    contact_cost: float | None = None,
) -> int:
    """Plan a campaign: ``offer`` makes one offer to everyone, ``best_offer`` each customer's own next-best offer
    (chosen when the campaign is prepared); ``uplift_model`` targets only the customers whose expected incremental
    margin (uplift × margin − ``contact_cost``) is positive."""
    if not 0 <= control_share < 1:
        raise InvalidInputError("the control share must be at least 0 and below 1", field="control_share")
    if not arms or len(set(arms)) != len(arms):
        raise InvalidInputError("give one or more distinct arm names", field="arms")
    if offer is not None and best_offer:
        raise InvalidInputError("choose one offer for everyone or each customer's best offer, not both", field="offer")
    if contact_cost is not None and contact_cost < 0:
        raise InvalidInputError("the contact cost cannot be negative", field="contact_cost")
    check_template(subject, "subject")
    check_template(body, "body")
    compile_rule(rule, feature_schema(engine))
    if uplift_model is not None and offer is None and not best_offer:
        raise InvalidInputError(
            "targeting by uplift needs an offer (or each customer's best offer): its margin is what a response is "
            "worth", field="uplift_model",
        )  # fmt: skip
    if uplift_model is not None:
        uplift_scores(engine, uplift_model)  # refuses a model that is not an uplift model before anything is written
    cost_minor = None if contact_cost is None else major_to_minor(contact_cost, _cost_currency(engine, offer))
    with engine.begin() as conn:
        if conn.scalar(select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.campaign_key == key)) is not None:
            raise ConflictError(f"there is already a campaign {key!r}", field="key")
        offer_id = None
        if offer is not None:
            offer_id = conn.scalar(select(OFFERS.c.id).where(OFFERS.c.name == offer))
            if offer_id is None:
                raise NotFoundError(f"there is no offer {offer!r}", field="offer")
        campaign_id = int(
            conn.execute(
                insert(CAMPAIGNS)
                .values(source="patron", campaign_key=key, name=name, channel=channel)
                .returning(CAMPAIGNS.c.id)
            ).scalar_one()
        )
        conn.execute(
            insert(PLANS).values(
                campaign_id=campaign_id, rule=rule, subject_template=subject, body_template=body,
                control_share=control_share, arms=list(arms), suppress_tiers=list(suppress_tiers), offer_id=offer_id,
                best_offer=best_offer, uplift_model=uplift_model, settings={},
                contact_cost_minor=cost_minor,
            )
        )  # fmt: skip
    return campaign_id


def _cost_currency(engine: Engine, offer: str | None) -> str:
    """A contact cost is in the campaign offer's currency, or the store's main one."""
    if offer is not None:
        with engine.connect() as conn:
            currency = conn.scalar(select(OFFERS.c.currency).where(OFFERS.c.name == offer))
        if currency:
            return str(currency)
    return main_scope(engine)[0].currency


def plan_of(engine: Engine, key: str) -> Any:
    """The stored plan of a campaign (NotFoundError when it was never planned)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(CAMPAIGNS.c.id, CAMPAIGNS.c.channel, PLANS)
            .join(PLANS, PLANS.c.campaign_id == CAMPAIGNS.c.id)
            .where(CAMPAIGNS.c.campaign_key == key)
        ).first()
    if row is None:
        raise NotFoundError(f"there is no campaign {key!r} planned in Patron", field="campaign")
    return row


def _split(
    key: str,
    customer_ids: list[int],
    control_share: float,
    arms: Sequence[str],
    learned: dict[str, tuple[int, int]] | None,
) -> dict[int, str | None]:
    """A reproducible random split: the campaign key seeds it, so preparing again gives the same groups. With
    ``learned`` results (members, responders per arm) the treated are allocated by Thompson sampling."""
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:16], 16)
    rng = random.Random(seed)
    shuffled = sorted(customer_ids)
    rng.shuffle(shuffled)
    controls = round(len(shuffled) * control_share)
    split: dict[int, str | None] = dict.fromkeys(shuffled[:controls])
    treated = shuffled[controls:]
    if learned is not None:
        chosen = thompson_allocation(arms, learned, len(treated), seed=seed % 2**32)
        split.update(zip(treated, chosen, strict=True))
        return split
    for index, customer in enumerate(treated):
        split[customer] = arms[index % len(arms)]
    return split


def arm_results(engine: Engine, key: str, kind: str) -> dict[str, tuple[int, int]]:
    """(members, responders) per arm of an earlier campaign: what a Thompson-sampling wave learns from."""
    report = campaign_report(engine, key, kind)
    return {arm.arm: (arm.members, arm.responders) for arm in report.arms if not arm.is_control}


def replay_campaign(engine: Engine, key: str, kind: str, *, seed: int = 0) -> Replay:
    """Judge a Thompson-sampling bandit offline on a randomised campaign's log: every arm, the control included."""
    campaign_id = campaign_id_of(engine, key)
    responded = select(RESPONSES.c.customer_id).where(RESPONSES.c.campaign_id == campaign_id, RESPONSES.c.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(
            select(MEMBERS.c.arm, MEMBERS.c.customer_id.in_(responded))
            .where(MEMBERS.c.campaign_id == campaign_id)
            .order_by(MEMBERS.c.customer_id)
        ).all()
    if not rows:
        raise InvalidInputError(f"campaign {key!r} has no members to replay", field="campaign")
    return replay_thompson([arm for arm, _ in rows], [int(bool(hit)) for _, hit in rows], seed=seed)


def prepare_campaign(
    engine: Engine,
    key: str,
    *,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
    learn_from: tuple[str, str] | None = None,
    within: Select[int] | None = None,
) -> Prepared:
    """Select the target, draw the control group and arms, apply the contact policy; record every decision.

    ``learn_from=(earlier campaign, response kind)`` allocates the arms by Thompson sampling on that campaign's
    results per arm (a bandit wave); otherwise the arms get equal shares. ``within`` keeps the target to some
    customers (a manager's portfolio: their campaign reaches their own customers only).
    """
    plan = plan_of(engine, key)
    if plan.status != "draft":
        raise ConflictError(f"campaign {key!r} is already {plan.status}", field="campaign")
    target = _target(engine, plan.rule, as_of, within)
    channel = plan.channel or "email"
    offers = _offers_for(engine, plan, target, channel, as_of)
    targeting = _incremental_margins(engine, plan, offers) if plan.uplift_model else None
    if targeting is not None:
        target = [customer for customer in target if targeting.get(customer, 0.0) > 0]
    learned = arm_results(engine, *learn_from) if learn_from else None
    split = _split(key, target, plan.control_share, plan.arms, learned)
    treated = [customer for customer, arm in split.items() if arm is not None]
    decisions = check_contacts(
        engine,
        treated,
        channel=channel,
        purpose=plan.purpose,
        suppress_tiers=plan.suppress_tiers,
        now=now,
    )
    if channel == "mail":
        addresses = postal_addresses(engine, treated)
    else:
        addresses = addresses_of(engine, treated, "phone" if channel == "sms" else "email")
    members: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    blocked: dict[str, int] = {}
    for customer, arm in split.items():
        members.append(
            {"campaign_id": plan.id, "customer_id": customer, "arm": arm or "control", "is_control": arm is None}
        )
        if arm is None:
            contacts.append(
                {
                    "campaign_id": plan.id,
                    "customer_id": customer,
                    "arm": "control",
                    "status": "control",
                    "reason": "control group",
                    "address": None,
                    "offer_id": None,
                    "offer_reason": None,
                }
            )
            continue
        decision = decisions[customer]
        address = addresses.get(customer)
        offer_id, offer_reason = offers.get(customer, (None, "eligible for no offer"))
        if decision.allowed and not address:
            decision = type(decision)(False, MISSING_ADDRESS.get(channel, "no e-mail address"))
        if decision.allowed and plan.best_offer and offer_id is None:
            decision = type(decision)(False, offer_reason)
        status = "pending" if decision.allowed else "blocked"
        if not decision.allowed:
            blocked[decision.reason] = blocked.get(decision.reason, 0) + 1
        contacts.append(
            {"campaign_id": plan.id, "customer_id": customer, "arm": arm, "status": status,
             "reason": None if decision.allowed else decision.reason, "address": address, "offer_id": offer_id,
             "offer_reason": offer_reason if offer_id is not None else None}
        )  # fmt: skip
    pending = [c["customer_id"] for c in contacts if c["status"] == "pending"]
    targeted = None
    if targeting is not None:
        targeted = {"uplift_model": plan.uplift_model, "expected_incremental": sum(targeting[c] for c in pending),
                    "everyone_incremental": sum(targeting.values()), "left_out": len(targeting) - len(target),
                    "contacts": len(pending)}  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, len(members), 5000):
            conn.execute(insert(MEMBERS), members[start : start + 5000])
            conn.execute(insert(CONTACTS), contacts[start : start + 5000])
        settings = {**(plan.settings or {}), **({"targeting": targeted} if targeted else {})}
        conn.execute(update(PLANS).where(PLANS.c.campaign_id == plan.id).values(status="prepared", settings=settings))
        conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == plan.id).values(started_on=(now or utcnow()).date()))
    expected = {} if targeted is None else {
        key: targeted[key] for key in ("expected_incremental", "everyone_incremental", "left_out")
    }  # fmt: skip
    return Prepared(len(members), len(members) - len(treated), len(pending), blocked, **expected)


def _target(engine: Engine, rule_text: str, as_of: dt.date | None, within: Select[int] | None) -> list[int]:
    """The customers the plan's rule selects now (among ``within``, if given)."""
    rule = compile_rule(rule_text, feature_schema(engine))
    features = build_features(engine, as_of=as_of)
    target = features.customers.filter(rule.expression(Context(features.categories, features.as_of)))[
        "customer_id"
    ].to_list()
    if within is None:
        return target
    with engine.connect() as conn:
        kept = {int(customer) for customer in conn.scalars(within)}
    return [customer for customer in target if customer in kept]


def targeting_of(engine: Engine, key: str) -> dict[str, Any] | None:
    """What uplift targeting expected when the campaign was prepared (None: not targeted by uplift)."""
    try:
        plan = plan_of(engine, key)
    except NotFoundError:
        return None
    return targeting_in(plan)


def targeting_in(plan: Any) -> dict[str, Any] | None:
    """``targeting_of`` for a plan already read (``plan_of``)."""
    found = (plan.settings or {}).get("targeting")
    return dict(found) if found else None


def _offers_for(
    engine: Engine, plan: Any, target: list[int], channel: str, as_of: dt.date | None
) -> dict[int, tuple[int | None, str]]:
    """Each targeted customer's offer and why: the campaign's one offer, or their own next-best offer."""
    if plan.best_offer:
        with engine.connect() as conn:
            ids = {str(name): int(id_) for id_, name in conn.execute(select(OFFERS.c.id, OFFERS.c.name))}
        choices = next_best_offers(engine, customer_ids=target, channel=channel, as_of=as_of)
        return {c.customer_id: (ids.get(c.offer) if c.offer else None, c.reason) for c in choices}
    if plan.offer_id is not None:
        return dict.fromkeys(target, (plan.offer_id, "the campaign's offer"))
    return {}


def _incremental_margins(engine: Engine, plan: Any, offers: dict[int, tuple[int | None, str]]) -> dict[int, float]:
    """uplift × the offer's margin − the contact cost, for every customer with an offer and an uplift score."""
    uplift = uplift_scores(engine, plan.uplift_model)
    with engine.connect() as conn:
        margins = {
            int(id_): (minor_to_major(margin, currency), currency)
            for id_, margin, currency in conn.execute(select(OFFERS.c.id, OFFERS.c.margin_minor, OFFERS.c.currency))
        }
    result = {}
    for customer, (offer_id, _) in offers.items():
        if offer_id is None or customer not in uplift:
            continue
        margin, currency = margins[offer_id]
        cost = minor_to_major(plan.contact_cost_minor or 0, currency)
        result[customer] = uplift[customer] * margin - cost
    return result


MISSING_ADDRESS = {"sms": "no phone number", "mail": "no postal address", "email": "no e-mail address"}


def addresses_of(engine: Engine, ids: list[int], kind: str) -> dict[int, str]:
    """Each customer's newest address of ``kind`` (e-mail, phone): the one they gave last is the one to use."""
    found: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(IDENTITIES.c.customer_id, IDENTITIES.c.value)
                .where(IDENTITIES.c.customer_id.in_(ids[start : start + 500]), IDENTITIES.c.kind == kind)
                .order_by(IDENTITIES.c.id.desc())
            )
            for customer, value in rows:
                found.setdefault(customer, value)
    return found
