"""Campaigns as experiments: target a rule segment, hold out a random control group, split the rest into arms,
check the contact policy, personalise each message (Jinja2), send through a channel, and measure.

Sending is resumable and never contacts anyone twice: each contact is marked *sending* (committed) before the
channel is called and *sent* after; a channel failure puts it back to *pending* and stops the batch, so a re-run
carries on where it stopped. A contact left *sending* by a crash is not retried automatically (it may have gone).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Engine, delete, func, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import contact_sent
from patron.cif.money import major_to_minor, minor_to_major
from patron.engage.bandit import thompson_allocation
from patron.engage.consent import consent_in_force
from patron.engage.letters import postal_addresses
from patron.engage.policy import check_contacts
from patron.engage.report import campaign_id_of, campaign_report
from patron.engage.schema import CampaignContact, CampaignPlan, Offer, OfferCandidate
from patron.errors import ConflictError, InvalidInputError, NotFoundError
from patron.segments.expression import Context, compile_rule
from patron.segments.features import build_features, feature_schema
from patron.settings import get_settings

CAMPAIGNS = table_of(s.Campaign)
MEMBERS = table_of(s.CampaignMember)
RESPONSES = table_of(s.CampaignResponse)
PLANS = table_of(CampaignPlan)
CONTACTS = table_of(CampaignContact)
OFFERS = table_of(Offer)
IDENTITIES = table_of(s.Identity)
INTERACTIONS = table_of(s.Interaction)
TEMPLATE_VARIABLES = frozenset(
    {"name", "first_name", "last_purchase", "recommendations", "manager_signature", "offer", "arm"}
)
_templates = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


class Channel(Protocol):
    name: str

    def send(self, address: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class Prepared:
    members: int
    control: int
    pending: int
    blocked: dict[str, int]


@dataclass(frozen=True)
class SendResult:
    sent: int
    failed: int
    remaining: int
    error: str | None


def check_template(text: str, field: str) -> None:
    """Refuse a template that does not parse or names a variable Patron cannot fill."""
    try:
        parsed = _templates.parse(text)
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
        conn.execute(delete(table_of(OfferCandidate)))
        return int(conn.execute(insert(OFFERS).values(row).returning(OFFERS.c.id)).scalar_one())


def list_offers(engine: Engine) -> list[dict[str, Any]]:
    """Every offer, newest first, with its margin in the currency's units."""
    with engine.connect() as conn:
        rows = conn.execute(select(OFFERS).order_by(OFFERS.c.id.desc())).mappings().all()
    return [{**row, "margin": minor_to_major(row["margin_minor"], row["currency"])} for row in rows]


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
) -> int:
    if not 0 <= control_share < 1:
        raise InvalidInputError("the control share must be at least 0 and below 1", field="control_share")
    if not arms or len(set(arms)) != len(arms):
        raise InvalidInputError("give one or more distinct arm names", field="arms")
    check_template(subject, "subject")
    check_template(body, "body")
    compile_rule(rule, feature_schema(engine))
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
                settings={},
            )
        )  # fmt: skip
    return campaign_id


def _plan(engine: Engine, key: str) -> Any:
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


def prepare_campaign(
    engine: Engine,
    key: str,
    *,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
    learn_from: tuple[str, str] | None = None,
) -> Prepared:
    """Select the target, draw the control group and arms, apply the contact policy; record every decision.

    ``learn_from=(earlier campaign, response kind)`` allocates the arms by Thompson sampling on that campaign's
    results per arm (a bandit wave); otherwise the arms get equal shares.
    """
    plan = _plan(engine, key)
    if plan.status != "draft":
        raise ConflictError(f"campaign {key!r} is already {plan.status}", field="campaign")
    rule = compile_rule(plan.rule, feature_schema(engine))
    features = build_features(engine, as_of=as_of)
    target = features.customers.filter(rule.expression(Context(features.categories, features.as_of)))[
        "customer_id"
    ].to_list()
    learned = arm_results(engine, *learn_from) if learn_from else None
    split = _split(key, target, plan.control_share, plan.arms, learned)
    treated = [customer for customer, arm in split.items() if arm is not None]
    decisions = check_contacts(
        engine,
        treated,
        channel=plan.channel or "email",
        purpose=plan.purpose,
        suppress_tiers=plan.suppress_tiers,
        now=now,
    )
    channel = plan.channel or "email"
    if channel == "mail":
        addresses = postal_addresses(engine, treated)
    else:
        addresses = _addresses(engine, treated, "phone" if channel == "sms" else "email")
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
                }
            )
            continue
        decision = decisions[customer]
        address = addresses.get(customer)
        if decision.allowed and not address:
            decision = type(decision)(False, MISSING_ADDRESS.get(channel, "no e-mail address"))
        status = "pending" if decision.allowed else "blocked"
        if not decision.allowed:
            blocked[decision.reason] = blocked.get(decision.reason, 0) + 1
        contacts.append(
            {"campaign_id": plan.id, "customer_id": customer, "arm": arm, "status": status,
             "reason": None if decision.allowed else decision.reason, "address": address}
        )  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, len(members), 5000):
            conn.execute(insert(MEMBERS), members[start : start + 5000])
            conn.execute(insert(CONTACTS), contacts[start : start + 5000])
        conn.execute(update(PLANS).where(PLANS.c.campaign_id == plan.id).values(status="prepared"))
        conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == plan.id).values(started_on=(now or utcnow()).date()))
    pending = sum(1 for c in contacts if c["status"] == "pending")
    return Prepared(len(members), len(members) - len(treated), pending, blocked)


MISSING_ADDRESS = {"sms": "no phone number", "mail": "no postal address", "email": "no e-mail address"}


def _addresses(engine: Engine, ids: list[int], kind: str) -> dict[int, str]:
    found: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(IDENTITIES.c.customer_id, IDENTITIES.c.value)
                .where(IDENTITIES.c.customer_id.in_(ids[start : start + 500]), IDENTITIES.c.kind == kind)
                .order_by(IDENTITIES.c.id)
            )
            for customer, value in rows:
                found.setdefault(customer, value)
    return found


def _context(engine: Engine, customer_id: int, arm: str, offer: Any) -> dict[str, Any]:
    orders = table_of(s.Order)
    with engine.connect() as conn:
        customer = conn.execute(
            select(s.Customer.display_name, s.Customer.first_name).where(s.Customer.id == customer_id)
        ).first()
        last = conn.scalar(select(func.max(orders.c.ordered_at)).where(orders.c.customer_id == customer_id))
        manager = conn.scalar(
            select(s.Account.manager)
            .join(s.AccountContact, s.AccountContact.account_id == s.Account.id)
            .where(s.AccountContact.customer_id == customer_id)
            .limit(1)
        )
    name = (customer.display_name if customer else None) or "customer"
    return {
        "name": name, "first_name": (customer.first_name if customer else None) or name.split(" ")[0],
        "last_purchase": last.date() if last else None, "recommendations": [], "arm": arm,
        "manager_signature": manager or "Your customer team", "offer": offer,
    }  # fmt: skip


def send_campaign(engine: Engine, key: str, channel: Channel, *, limit: int | None = None) -> SendResult:
    """Send the pending contacts; stop at the first channel failure, leaving the rest pending for a re-run."""
    plan = _plan(engine, key)
    if plan.status not in ("prepared", "sending"):
        raise ConflictError(f"campaign {key!r} is {plan.status}: prepare it first", field="campaign")
    offer = None
    if plan.offer_id is not None:
        with engine.connect() as conn:
            offer = dict(conn.execute(select(OFFERS).where(OFFERS.c.id == plan.offer_id)).one()._mapping)
    with engine.begin() as conn:
        conn.execute(update(PLANS).where(PLANS.c.campaign_id == plan.id).values(status="sending"))
        pending = conn.execute(
            select(CONTACTS.c.customer_id, CONTACTS.c.arm, CONTACTS.c.address)
            .where(CONTACTS.c.campaign_id == plan.id, CONTACTS.c.status == "pending")
            .order_by(CONTACTS.c.customer_id)
            .limit(limit)
        ).all()
    subject_template = _templates.from_string(plan.subject_template)
    body_template = _templates.from_string(plan.body_template)
    sent = 0
    kind = plan.channel or "email"
    for customer_id, arm, address in pending:
        where = (CONTACTS.c.campaign_id == plan.id) & (CONTACTS.c.customer_id == customer_id)
        if not consent_in_force(engine, customer_id, channel=kind):
            with engine.begin() as conn:
                reason = "consent withdrawn after the campaign was prepared"
                conn.execute(update(CONTACTS).where(where).values(status="blocked", reason=reason))
            continue
        context = _context(engine, customer_id, arm, offer)
        subject, body = subject_template.render(context), body_template.render(context)
        with engine.begin() as conn:
            conn.execute(update(CONTACTS).where(where).values(status="sending"))
        try:
            channel.send(address, subject, body)
        except Exception as error:
            with engine.begin() as conn:
                conn.execute(
                    update(CONTACTS).where(where).values(status="pending", reason=f"channel failed: {error}"[:200])
                )
            remaining = len(pending) - sent
            return SendResult(sent, 1, remaining, str(error))
        at = utcnow()
        with engine.begin() as conn:
            conn.execute(update(CONTACTS).where(where).values(status="sent", reason=None))
            contact_sent(
                conn, campaign=key, campaign_id=plan.id, customer_id=customer_id, channel=channel.name, arm=arm,
                subject=subject, at=at,
            )  # fmt: skip
        sent += 1
    with engine.begin() as conn:
        left = conn.scalar(
            select(func.count()).where(CONTACTS.c.campaign_id == plan.id, CONTACTS.c.status == "pending")
        )
        if not left:
            conn.execute(update(PLANS).where(PLANS.c.campaign_id == plan.id).values(status="sent"))
    return SendResult(sent, 0, int(left or 0), None)


def record_response(
    engine: Engine, key: str, customer_id: int, kind: str, *, value: float | None = None,
    currency: str | None = None, at: dt.datetime | None = None,
) -> None:  # fmt: skip
    """A response (opened, clicked, bought …) to a campaign; only members can respond, and each kind counts once.

    ``value`` is in major units of ``currency`` (default: the settings' default currency).
    """
    currency = currency or get_settings().default_currency
    campaign_id = campaign_id_of(engine, key)
    with engine.begin() as conn:
        if (
            conn.scalar(
                select(MEMBERS.c.customer_id).where(
                    MEMBERS.c.campaign_id == campaign_id, MEMBERS.c.customer_id == customer_id
                )
            )
            is None
        ):
            raise NotFoundError(f"customer {customer_id} is not in campaign {key!r}", field="customer_id")
        exists = conn.scalar(
            select(RESPONSES.c.customer_id).where(
                RESPONSES.c.campaign_id == campaign_id, RESPONSES.c.customer_id == customer_id, RESPONSES.c.kind == kind
            )
        )
        if exists is None:
            conn.execute(
                insert(RESPONSES).values(
                    campaign_id=campaign_id, customer_id=customer_id, kind=kind,
                    value_minor=None if value is None else major_to_minor(value, currency),
                    currency=None if value is None else currency, responded_at=at or utcnow(),
                )
            )  # fmt: skip


def contact_statuses(engine: Engine, key: str) -> dict[str, int]:
    """Live monitoring: how many contacts are pending, sent, blocked, failed, control."""
    plan = _plan(engine, key)
    with engine.connect() as conn:
        rows = conn.execute(
            select(CONTACTS.c.status, func.count()).where(CONTACTS.c.campaign_id == plan.id).group_by(CONTACTS.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}
