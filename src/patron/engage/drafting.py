"""Drafting a campaign before anyone is contacted: the message as one of the target's customers would read it, the
contact policy's verdict in numbers, a prepared campaign discarded, and a send started in the background (the
page follows its progress in the contact statuses, as the CLI's re-run would resume it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, delete, func, select

from patron.cif.ledger import audit_row, audited
from patron.engage.campaigns import (
    CAMPAIGNS,
    CONTACTS,
    MEMBERS,
    OFFERS,
    PLANS,
    RESPONSES,
    SAMPLE_CONTEXT,
    TEMPLATES,
    check_template,
)
from patron.engage.channels import ContactFailed
from patron.engage.sending import Channel, message_context, rendered, send_campaign
from patron.errors import ConflictError, InvalidInputError, NotFoundError
from patron.segments.rules import preview


@dataclass(frozen=True)
class SampleMessage:
    customer_id: int | None  # None: the rule selects nobody, so the sample is the template's own example
    members: int
    subject: str
    body: str


def sample_message(
    engine: Engine,
    rule: str,
    subject: str,
    body: str,
    *,
    offer: str | None = None,
    within: Select[int] | None = None,
) -> SampleMessage:
    """The subject and body rendered for the first customer the rule selects (among ``within``: a manager's
    portfolio), with the campaign's offer; nothing is written. Bad templates and rules raise as at creation."""
    check_template(subject, "subject")
    check_template(body, "body")
    selected = preview(engine, rule, sample=1, within=within)
    offered = _offer(engine, offer)
    templates = (TEMPLATES.from_string(subject), TEMPLATES.from_string(body))
    customer = int(selected.sample["customer_id"][0]) if selected.sample.height else None
    if customer is None:
        return SampleMessage(None, 0, *rendered(templates, _example_context(offered)))
    try:
        written = rendered(templates, message_context(engine, customer, "A", offered))
    except ContactFailed as error:
        raise InvalidInputError(str(error), field="body") from error
    return SampleMessage(customer, selected.count, *written)


def _offer(engine: Engine, name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(OFFERS).where(OFFERS.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"there is no offer {name!r}", field="offer")
    return dict(row)


def _example_context(offer: dict[str, Any] | None) -> dict[str, Any]:
    return {**SAMPLE_CONTEXT, **({"offer": offer} if offer else {})}


def blocked_reasons(engine: Engine, key: str) -> dict[str, int]:
    """Why prepared contacts will not go, with how many each: the contact policy's verdict before sending."""
    with engine.connect() as conn:
        campaign_id = conn.scalar(select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.campaign_key == key))
        rows = conn.execute(
            select(CONTACTS.c.reason, func.count())
            .where(CONTACTS.c.campaign_id == campaign_id, CONTACTS.c.status == "blocked")
            .group_by(CONTACTS.c.reason)
            .order_by(func.count().desc())
        ).all()
    return {str(reason or "no reason given"): int(count) for reason, count in rows}


def send_stopped_because(engine: Engine, key: str) -> str | None:
    """Why the last send stopped, if it did: the channel's failure the first contact put back to pending carries."""
    with engine.connect() as conn:
        reason = conn.scalar(
            select(CONTACTS.c.reason)
            .join(CAMPAIGNS, CAMPAIGNS.c.id == CONTACTS.c.campaign_id)
            .where(CAMPAIGNS.c.campaign_key == key, CONTACTS.c.status == "pending",
                   CONTACTS.c.reason.like("channel failed:%"))
            .limit(1)
        )  # fmt: skip
    return None if reason is None else str(reason)


def discard_campaign(engine: Engine, key: str, *, actor: str = "operator", interface: str = "cli") -> None:
    """Remove a campaign planned in Patron that has contacted nobody (a draft, or prepared and not sent): its plan,
    members and decisions. A campaign that has sent or been answered is history and stays."""
    with engine.begin() as conn:
        found = conn.execute(
            select(CAMPAIGNS.c.id, PLANS.c.status)
            .join(PLANS, PLANS.c.campaign_id == CAMPAIGNS.c.id)
            .where(CAMPAIGNS.c.campaign_key == key)
        ).first()
        if found is None:
            raise NotFoundError(f"there is no campaign {key!r} planned in Patron", field="campaign")
        campaign_id, status = found
        gone = conn.scalar(
            select(func.count()).where(
                CONTACTS.c.campaign_id == campaign_id, CONTACTS.c.status.in_(("sent", "sending"))
            )
        )
        answered = conn.scalar(select(func.count()).where(RESPONSES.c.campaign_id == campaign_id))
        if status not in ("draft", "prepared") or gone or answered:
            raise ConflictError(
                f"campaign {key!r} has contacted customers (or been answered): it stays as history", field="campaign"
            )
        for table in (CONTACTS, MEMBERS, PLANS):
            conn.execute(delete(table).where(table.c.campaign_id == campaign_id))
        conn.execute(delete(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id))
        audited(conn, [audit_row(actor=actor, interface=interface, action="discard", entity="campaign",
                                 entity_id=campaign_id, details={"key": key})])  # fmt: skip


_SENDING: set[str] = set()  # campaigns this process is sending now (a second click does not start a second send)
_SENDING_LOCK = threading.Lock()


def start_send(engine: Engine, key: str, channel: Channel) -> bool:
    """Send a prepared campaign's pending contacts in a thread of this process; False when this process is
    already sending it. Progress and failures are in the contacts' statuses (``overview.live_counts``); a send
    that stopped (the channel failed) is carried on by starting it again."""
    with _SENDING_LOCK:
        if key in _SENDING:
            return False
        _SENDING.add(key)

    def send() -> None:
        try:
            send_campaign(engine, key, channel)
        finally:
            with _SENDING_LOCK:
                _SENDING.discard(key)

    try:
        status = _plan_status(engine, key)
        if status not in ("prepared", "sending"):
            raise ConflictError(f"campaign {key!r} is {status}: only a prepared campaign is sent", field="campaign")
        threading.Thread(target=send, name=f"send-{key}", daemon=True).start()
    except Exception:
        with _SENDING_LOCK:
            _SENDING.discard(key)
        raise
    return True


def is_sending(key: str) -> bool:
    with _SENDING_LOCK:
        return key in _SENDING


def _plan_status(engine: Engine, key: str) -> str:
    with engine.connect() as conn:
        status = conn.scalar(
            select(PLANS.c.status)
            .join(CAMPAIGNS, CAMPAIGNS.c.id == PLANS.c.campaign_id)
            .where(CAMPAIGNS.c.campaign_key == key)
        )
    if status is None:
        raise NotFoundError(f"there is no campaign {key!r} planned in Patron", field="campaign")
    return str(status)
