"""Complaints that arrived as interactions (e.g. the CFPB import) become cases, once each.

Mapping: the interaction's channel is the intake channel, its outcome the company's response, the product in its
details the category and the issue the subject. A case is *resolved* when the response starts with "Closed"; a
consumer who disputed the response came back, so the case counts as reopened (and not resolved at first
contact). The resolution time is not in such data, so these cases carry no cycle time.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.service.cases import SLA_HOURS
from patron.service.schema import Case

INTERACTIONS = table_of(s.Interaction)
CASES = table_of(Case)


def cases_from_complaints(engine: Engine, *, source: str = "cfpb") -> int:
    """Open a case for every complaint interaction of ``source`` that has none yet; returns how many were made."""
    query = select(
        INTERACTIONS.c.idempotency_key, INTERACTIONS.c.customer_id, INTERACTIONS.c.occurred_at, INTERACTIONS.c.channel,
        INTERACTIONS.c.outcome, INTERACTIONS.c.details,
    ).where(INTERACTIONS.c.source == source, INTERACTIONS.c.type == "complaint")  # fmt: skip
    with engine.begin() as conn:
        existing = set(conn.scalars(select(CASES.c.case_key).where(CASES.c.source == source)).all())
        rows = []
        for key, customer_id, at, channel, outcome, stored_details in conn.execute(query):
            if key in existing:
                continue
            details = stored_details or {}
            closed = bool(outcome) and str(outcome).startswith("Closed")
            disputed = details.get("consumer_disputed") is True
            rows.append(
                {
                    "source": source, "case_key": key, "customer_id": customer_id, "kind": "complaint",
                    "category": details.get("product") or None,
                    "subject": str(details.get("issue") or "complaint")[:200], "priority": "normal",
                    "channel": channel, "status": "resolved" if closed else "open", "opened_at": at,
                    "sla_due_at": at + dt.timedelta(hours=SLA_HOURS[None]), "contacts": 2 if disputed else 1,
                    "reopened": 1 if disputed else 0, "escalated": False, "outcome": outcome,
                }
            )  # fmt: skip
        for start in range(0, len(rows), 1000):
            conn.execute(insert(CASES), rows[start : start + 1000])
    return len(rows)
