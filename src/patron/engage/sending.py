"""Sending a planned campaign, and what comes back: each contact rendered for its customer, consent checked at
the moment of sending, the contact recorded in the ledger; responses and contact statuses.

Sending is resumable and never contacts anyone twice: each contact is marked *sending* (committed) before the
channel is called and *sent* after; a channel failure puts it back to *pending* and stops the batch, so a re-run
carries on where it stopped. A contact left *sending* by a crash is not retried automatically (it may have gone).
A message that cannot go to this one customer (its address refused, a message that cannot be written or is over
the size limit) marks that contact *failed* with the reason, and the others still go.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

import jinja2
from sqlalchemy import Engine, func, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import contact_sent
from patron.cif.money import major_to_minor
from patron.engage.campaigns import CONTACTS, MEMBERS, OFFERS, PLANS, RESPONSES, TEMPLATES, plan_of
from patron.engage.channels import ContactFailed
from patron.engage.consent import consent_in_force
from patron.engage.offers import offer_valid
from patron.engage.recommendations import recommendations_for
from patron.engage.report import campaign_id_of
from patron.errors import ConflictError, NotFoundError
from patron.settings import get_settings


class Channel(Protocol):
    name: str

    def send(self, address: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SendResult:
    sent: int
    failed: int
    remaining: int
    error: str | None


def message_context(engine: Engine, customer_id: int, arm: str, offer: Any) -> dict[str, Any]:
    """What every channel's template sees for one customer: the same for e-mail, SMS, letters and previews."""
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
        "last_purchase": last.date() if last else None, "arm": arm,
        "recommendations": [item.as_context() for item in recommendations_for(engine, customer_id, k=3).items],
        "manager_signature": manager or "Your customer team", "offer": offer,
    }  # fmt: skip


def send_campaign(engine: Engine, key: str, channel: Channel, *, limit: int | None = None) -> SendResult:
    """Send the pending contacts; stop at the first channel failure, leaving the rest pending for a re-run."""
    plan = plan_of(engine, key)
    if plan.status not in ("prepared", "sending"):
        raise ConflictError(f"campaign {key!r} is {plan.status}: prepare it first", field="campaign")
    offers = _offers(engine)
    with engine.begin() as conn:
        conn.execute(update(PLANS).where(PLANS.c.campaign_id == plan.id).values(status="sending"))
        pending = conn.execute(
            select(CONTACTS.c.customer_id, CONTACTS.c.arm, CONTACTS.c.address, CONTACTS.c.offer_id)
            .where(CONTACTS.c.campaign_id == plan.id, CONTACTS.c.status == "pending")
            .order_by(CONTACTS.c.customer_id)
            .limit(limit)
        ).all()
    subject_template = TEMPLATES.from_string(plan.subject_template)
    body_template = TEMPLATES.from_string(plan.body_template)
    sent = failed = 0
    kind = plan.channel or "email"
    today = dt.date.today()
    for customer_id, arm, address, offer_id in pending:
        where = (CONTACTS.c.campaign_id == plan.id) & (CONTACTS.c.customer_id == customer_id)
        offer = offers.get(offer_id if offer_id is not None else plan.offer_id)
        refusal = _refusal(engine, customer_id, kind, offer, today)
        if refusal:
            with engine.begin() as conn:
                conn.execute(update(CONTACTS).where(where).values(status="blocked", reason=refusal[:200]))
            continue
        message = _written(
            engine, where, (subject_template, body_template), message_context(engine, customer_id, arm, offer)
        )
        if message is None:
            failed += 1
            continue
        subject, body = message
        with engine.begin() as conn:
            conn.execute(update(CONTACTS).where(where).values(status="sending"))
        try:
            channel.send(address, subject, body)
        except ContactFailed as error:  # this contact only: marked failed with why, the others still go
            _fail(engine, where, str(error))
            failed += 1
            continue
        except Exception as error:
            with engine.begin() as conn:
                conn.execute(
                    update(CONTACTS).where(where).values(status="pending", reason=f"channel failed: {error}"[:200])
                )
            remaining = len(pending) - sent - failed  # this contact is pending again, and so are those after it
            return SendResult(sent, failed + 1, remaining, str(error))
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
    return SendResult(sent, failed, int(left or 0), None)


MAX_MESSAGE_BYTES = 100 * 1024  # a rendered body larger than this is not sent (a runaway template, a pasted file)


Templates = tuple[jinja2.Template, jinja2.Template]  # subject, body


def rendered(templates: Templates, context: dict[str, Any]) -> tuple[str, str]:
    """Subject and body for one customer's context; ContactFailed when the message cannot be written."""
    try:
        subject, body = (template.render(context) for template in templates)
    except jinja2.TemplateError as error:  # an attribute the offer lacks, a call the sandbox refuses …
        raise ContactFailed(f"the message could not be written: {error}") from error
    return subject, body


def _written(engine: Engine, where: Any, templates: Templates, context: dict[str, Any]) -> tuple[str, str] | None:
    """The subject and body for one contact, or None with the contact marked failed (and why)."""
    try:
        subject, body = rendered(templates, context)
    except ContactFailed as error:
        _fail(engine, where, str(error))
        return None
    if (size := len(body.encode())) > MAX_MESSAGE_BYTES:
        _fail(engine, where, f"the message is {size // 1024:,} KB, over the {MAX_MESSAGE_BYTES // 1024} KB limit")
        return None
    return subject, body


def _fail(engine: Engine, where: Any, reason: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(CONTACTS).where(where).values(status="failed", reason=reason[:200]))


def _refusal(
    engine: Engine, customer_id: int, channel: str, offer: dict[str, Any] | None, today: dt.date
) -> str | None:
    """Why a prepared contact must not go now, or None: consent withdrawn since, or its offer no longer valid."""
    if not consent_in_force(engine, customer_id, channel=channel):
        return "consent withdrawn after the campaign was prepared"
    if offer is not None and not offer_valid(SimpleNamespace(**offer), today, None):
        valid = f"{offer['valid_from'] or '…'} to {offer['valid_to'] or '…'}"
        return f"offer {offer['name']!r} is no longer valid (valid {valid})"
    return None


def _offers(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {int(row["id"]): dict(row) for row in conn.execute(select(OFFERS)).mappings()}


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
    plan = plan_of(engine, key)
    with engine.connect() as conn:
        rows = conn.execute(
            select(CONTACTS.c.status, func.count()).where(CONTACTS.c.campaign_id == plan.id).group_by(CONTACTS.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


@dataclass(frozen=True)
class MessagePreview:
    customer_id: int
    offer: str | None
    offer_reason: str | None
    subject: str
    body: str


def preview_messages(engine: Engine, key: str, *, sample: int = 3) -> list[MessagePreview]:
    """The messages of a prepared campaign as its first ``sample`` pending customers would get them (nothing sent)."""
    plan = plan_of(engine, key)
    if plan.status == "draft":
        raise ConflictError(f"campaign {key!r} is a draft: prepare it to see each customer's message", field="campaign")
    offers = _offers(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(CONTACTS.c.customer_id, CONTACTS.c.arm, CONTACTS.c.offer_id, CONTACTS.c.offer_reason)
            .where(CONTACTS.c.campaign_id == plan.id, CONTACTS.c.status.in_(("pending", "sent")))
            .order_by(CONTACTS.c.customer_id)
            .limit(sample)
        ).all()
    templates = (TEMPLATES.from_string(plan.subject_template), TEMPLATES.from_string(plan.body_template))
    previews = []
    for customer_id, arm, offer_id, reason in rows:
        offer = offers.get(offer_id if offer_id is not None else plan.offer_id)
        try:
            subject, body = rendered(templates, message_context(engine, customer_id, arm, offer))
        except ContactFailed as error:
            subject, body = "(cannot be written)", str(error)
        previews.append(MessagePreview(customer_id, offer["name"] if offer else None, reason, subject, body))
    return previews
