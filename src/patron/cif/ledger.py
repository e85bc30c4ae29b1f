"""The ledger: every event on a customer's timeline and every audit entry is written here, and only here.

One explicit function per kind of event (Saleor's ``account/events.py`` is the model): the write path calls it
inside its own transaction, so the event is stored with the change or not at all. ``interactions`` and
``audit_events`` are append-only; nothing else in Patron inserts into them (``make test`` checks with grep).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, insert, select

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.errors import NotFoundError

if TYPE_CHECKING:
    import polars as pl

INTERACTIONS = table_of(s.Interaction)
AUDIT = table_of(s.AuditEvent)
CUSTOMERS = table_of(s.Customer)
CASE_SOURCE = "service"  # the interactions source of case entries


# -- the customer ------------------------------------------------------------------------------------------


def no_such_customer(customer_id: int) -> NotFoundError:
    """The one answer for a customer id that names nobody, the same wording and field everywhere."""
    return NotFoundError(f"there is no customer {customer_id}", field="customer_id")


def require_customer(conn: Connection, customer_id: int) -> None:
    """The one "customer exists" check."""
    if conn.scalar(select(CUSTOMERS.c.id).where(CUSTOMERS.c.id == customer_id)) is None:
        raise no_such_customer(customer_id)


# -- timeline events ---------------------------------------------------------------------------------------


def case_changed(conn: Connection, customer_id: int, case_id: int, entry: str, at: dt.datetime, **details: Any) -> None:
    """A case was opened, assigned, noted, escalated, resolved or reopened (``entry``): one entry per change."""
    conn.execute(
        insert(INTERACTIONS).values(
            source=CASE_SOURCE,
            idempotency_key=f"case:{case_id}:{uuid.uuid4().hex}",
            customer_id=customer_id,
            occurred_at=at,
            channel=details.pop("channel", "internal"),
            direction=details.pop("direction", "inbound" if entry == "case_opened" else "outbound"),
            type=entry,
            agent=details.pop("agent", None),
            body=details.pop("body", None),
            details={"case_id": case_id, **details},
        )
    )


def contact_sent(
    conn: Connection, *, campaign: str, campaign_id: int, customer_id: int, channel: str, arm: str | None,
    subject: str, at: dt.datetime,
) -> None:  # fmt: skip
    """A campaign contact went out (once per campaign and customer: the key makes a resumed send idempotent)."""
    conn.execute(
        insert(INTERACTIONS).values(
            source="campaign", idempotency_key=f"{campaign}:{customer_id}", customer_id=customer_id, occurred_at=at,
            channel=channel, direction="outbound", type="campaign_contact", outcome="sent", campaign_id=campaign_id,
            details={"campaign": campaign, "arm": arm, "subject": subject},
        )
    )  # fmt: skip


def trigger_emitted(conn: Connection, *, trigger: str, customer_id: int, event: str, key: str, because: str) -> None:
    """A trigger emitted an event of its own for the customer (which may fire further triggers)."""
    conn.execute(
        insert(INTERACTIONS).values(
            source="trigger", idempotency_key=key, customer_id=customer_id, occurred_at=utcnow(), channel="internal",
            direction="outbound", type=event, details={"trigger": trigger, "because": because},
        )
    )  # fmt: skip


def interactions_recorded(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """Interactions from another system (the events API, an import); a key seen before is skipped, not doubled.

    Returns (id, customer_id, type) of the rows stored now.
    """
    if not rows:
        return []
    from sqlalchemy.dialects import postgresql, sqlite  # noqa: PLC0415  (not on every CLI start)

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(INTERACTIONS).on_conflict_do_nothing(index_elements=["source", "idempotency_key"])
    returning = statement.returning(INTERACTIONS.c.id, INTERACTIONS.c.customer_id, INTERACTIONS.c.type)
    return [(int(i), int(c), str(kind)) for i, c, kind in conn.execute(returning, list(rows)).all()]


def interactions_imported(conn: Connection, rows: pl.DataFrame) -> None:
    """Interactions of an import batch whose keys the importer found new (so a re-run adds nothing), a frame whose
    columns are the table's."""
    from patron.cif.bulk import insert_frame  # noqa: PLC0415  (Polars: not loaded by every command that records)

    insert_frame(conn, INTERACTIONS, rows)


def consent_recorded(
    conn: Connection, customer_id: int, *, channel: str, purpose: str, status: str, source: str,
    wording_version: str | None, at: dt.datetime,
) -> None:  # fmt: skip
    """A consent was given or withdrawn (``status``): the consent ledger keeps every record, the newest in force."""
    require_customer(conn, customer_id)
    conn.execute(
        insert(table_of(s.Consent)).values(
            customer_id=customer_id, channel=channel, purpose=purpose, status=status, source=source,
            wording_version=wording_version, recorded_at=at,
        )
    )  # fmt: skip


# -- the audit log -----------------------------------------------------------------------------------------


def audit_row(
    *, actor: str, interface: str, action: str, entity: str, entity_id: int | None,
    details: dict[str, Any] | None = None, at: dt.datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "at": at or utcnow(), "actor": actor, "interface": interface, "action": action, "entity": entity,
        "entity_id": entity_id, "details": details,
    }  # fmt: skip


def audited(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Audit entries (see ``audit_row``), written in the caller's transaction."""
    if rows:
        conn.execute(insert(AUDIT), list(rows))


def audit(
    engine: Engine, *, actor: str, interface: str, action: str, entity: str, entity_id: int | None,
    details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """One audit entry in a transaction of its own."""
    row = audit_row(actor=actor, interface=interface, action=action, entity=entity, entity_id=entity_id,
                    details=details)  # fmt: skip
    with engine.begin() as conn:
        audited(conn, [row])
