"""Sending a planned campaign, and what comes back: each contact rendered for its customer, consent checked at
the moment of sending, the contact recorded in the ledger; responses and contact statuses.

Sending is resumable and never contacts anyone twice: each contact is marked *sending* (committed) before the
channel is called and *sent* after; a channel failure puts it back to *pending* and stops the batch, so a re-run
carries on where it stopped. A contact left *sending* by a crash is not retried automatically (it may have gone).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, func, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import contact_sent
from patron.cif.money import major_to_minor
from patron.engage.campaigns import CONTACTS, MEMBERS, OFFERS, PLANS, RESPONSES, TEMPLATES, plan_of
from patron.engage.consent import consent_in_force
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
    plan = plan_of(engine, key)
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
    subject_template = TEMPLATES.from_string(plan.subject_template)
    body_template = TEMPLATES.from_string(plan.body_template)
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
    plan = plan_of(engine, key)
    with engine.connect() as conn:
        rows = conn.execute(
            select(CONTACTS.c.status, func.count()).where(CONTACTS.c.campaign_id == plan.id).group_by(CONTACTS.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}
