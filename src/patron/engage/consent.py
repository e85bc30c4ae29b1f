"""Recording consent: an append-only ledger per customer, channel and purpose; the newest record is in force."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import consent_recorded, require_customer
from patron.errors import InvalidInputError

CONSENTS = table_of(s.Consent)
STATES = ("granted", "withdrawn")


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
