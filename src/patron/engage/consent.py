"""Recording consent (an append-only ledger per customer, channel and purpose; the newest record is in force) and
the customer's contact preferences: the channel they prefer and at most how many contacts a month on each."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import audit_row, audited, consent_recorded, require_customer
from patron.errors import InvalidInputError

CONSENTS = table_of(s.Consent)
PREFERENCES = table_of(s.ContactPreference)
STATES = ("granted", "withdrawn")
CHANNELS = ("email", "sms", "phone", "mail")


def record_consent(
    engine: Engine,
    customer_id: int,
    *,
    channel: str,
    purpose: str = "marketing",
    status: str = "granted",
    source: str = "patron",
    wording_version: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    if status not in STATES:
        raise InvalidInputError(f"consent status must be granted or withdrawn, not {status!r}", field="status")
    with engine.begin() as conn:
        consent_recorded(
            conn, customer_id, channel=channel, purpose=purpose, status=status, source=source,
            wording_version=wording_version, at=at or utcnow(),
        )  # fmt: skip


def consent_in_force(engine: Engine, customer_id: int, *, channel: str, purpose: str = "marketing") -> bool:
    """Whether the customer's newest consent record for this channel and purpose grants it (checked right before
    each send, so a withdrawal stops a campaign that is already running)."""
    with engine.connect() as conn:
        newest = conn.scalar(
            select(CONSENTS.c.status)
            .where(CONSENTS.c.customer_id == customer_id, CONSENTS.c.channel == channel, CONSENTS.c.purpose == purpose)
            .order_by(CONSENTS.c.recorded_at.desc(), CONSENTS.c.id.desc())
            .limit(1)
        )
    return newest == "granted"


def consent_ledger(engine: Engine, customer_id: int) -> dict[str, Any]:
    """Every consent record of a customer, oldest first, and what is in force per channel and purpose now."""
    with engine.connect() as conn:
        require_customer(conn, customer_id)
        rows = conn.execute(
            select(
                CONSENTS.c.channel, CONSENTS.c.purpose, CONSENTS.c.status, CONSENTS.c.source,
                CONSENTS.c.wording_version, CONSENTS.c.recorded_at,
            )
            .where(CONSENTS.c.customer_id == customer_id)
            .order_by(CONSENTS.c.recorded_at, CONSENTS.c.id)
        ).mappings().all()  # fmt: skip
    records = [dict(row) for row in rows]
    newest = {(row["channel"], row["purpose"]): row["status"] for row in records}  # later records overwrite
    in_force = [
        {"channel": channel, "purpose": purpose, "granted": status == "granted"}
        for (channel, purpose), status in sorted(newest.items())
    ]
    return {"customer_id": customer_id, "in_force": in_force, "records": records}


def set_contact_preference(
    engine: Engine, customer_id: int, *, channel: str, preferred: bool, max_per_month: int | None,
    actor: str = "operator", interface: str = "cli",
) -> None:  # fmt: skip
    """How the customer wants to hear from us on ``channel``: preferred or not, and at most ``max_per_month``
    contacts (None: no cap of their own; the contact policy's still holds). Preferring one channel un-prefers the
    others; a preference that says nothing (not preferred, no cap) is removed."""
    if channel not in CHANNELS:
        raise InvalidInputError(f"choose {', '.join(CHANNELS[:-1])} or {CHANNELS[-1]}", field="channel")
    if max_per_month is not None and not 0 <= max_per_month <= 100:
        raise InvalidInputError("at most 0 to 100 contacts a month (0: none at all on this channel)",
                                field="max_per_month")  # fmt: skip
    where = (PREFERENCES.c.customer_id == customer_id) & (PREFERENCES.c.channel == channel)
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        if preferred:
            conn.execute(update(PREFERENCES).where(PREFERENCES.c.customer_id == customer_id).values(preferred=False))
        conn.execute(delete(PREFERENCES).where(where))
        if preferred or max_per_month is not None:
            conn.execute(insert(PREFERENCES).values(customer_id=customer_id, channel=channel, preferred=preferred,
                                                    max_per_month=max_per_month))  # fmt: skip
        audited(conn, [audit_row(actor=actor, interface=interface, action="contact_preference", entity="customer",
                                 entity_id=customer_id, details={"channel": channel, "preferred": preferred,
                                                                 "max_per_month": max_per_month})])  # fmt: skip


def contact_preferences(engine: Engine, customer_id: int) -> list[dict[str, Any]]:
    """The customer's preferences per channel (the preferred one first)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(PREFERENCES.c.channel, PREFERENCES.c.preferred, PREFERENCES.c.max_per_month)
            .where(PREFERENCES.c.customer_id == customer_id)
            .order_by(PREFERENCES.c.preferred.desc(), PREFERENCES.c.channel)
        ).mappings()
        return [dict(row) for row in rows]
