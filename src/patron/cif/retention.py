"""Retention rules: prospects nobody has heard from in N months are anonymised or deleted.

Always previewed first; applying records one audit event per customer so it can be proven later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, delete, func, select, update

from patron.cif import schema as s
from patron.cif.ledger import audit_row, audited

C = s.Customer.__table__.c
Mode = Literal["anonymise", "delete"]


@dataclass(frozen=True)
class StaleProspect:
    customer_id: int
    source: str
    last_contact: dt.datetime


def _months_before(when: dt.datetime, months: int) -> dt.datetime:
    month_index = when.year * 12 + when.month - 1 - months
    year, month = divmod(month_index, 12)
    return when.replace(year=year, month=month + 1, day=min(when.day, 28))


def stale_prospects(engine: Engine, months: int, *, now: dt.datetime | None = None) -> list[StaleProspect]:
    """Prospects without an order whose last interaction (or creation) is more than ``months`` ago."""
    if months < 1:
        raise ValueError(f"The 'months' parameter of a retention rule must be at least 1. Got {months} instead.")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cutoff = _months_before(now, months)
    interactions = s.Interaction.__table__.c
    last_interaction = (
        select(interactions.customer_id, func.max(interactions.occurred_at).label("at"))
        .group_by(interactions.customer_id)
        .subquery()
    )
    orders = select(s.Order.__table__.c.customer_id)
    query = (
        select(C.id, C.source, C.acquired_on, C.created_at, last_interaction.c.at)
        .outerjoin(last_interaction, last_interaction.c.customer_id == C.id)
        .where(C.kind == "prospect", C.status != "anonymised", C.id.not_in(orders))
        .order_by(C.id)
    )
    stale = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            last = row.at or (_as_datetime(row.acquired_on) if row.acquired_on else row.created_at)
            last = _as_datetime(last)
            if last < cutoff:
                stale.append(StaleProspect(row.id, row.source, last))
    return stale


def _as_datetime(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return dt.datetime.fromisoformat(str(value))


def pseudonym(value: str) -> str:
    return "erased:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:20]


def apply_retention(
    engine: Engine,
    months: int,
    *,
    mode: Mode = "anonymise",
    now: dt.datetime | None = None,
    actor: str = "system",
) -> int:
    """Anonymise (or delete) the stale prospects in one transaction; returns how many."""
    stale = stale_prospects(engine, months, now=now)
    ids = [item.customer_id for item in stale]
    identities = s.table_of(s.Identity)
    with engine.begin() as conn:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            if mode == "delete":
                for model in (
                    s.Identity,
                    s.CustomerProfile,
                    s.CustomerAttribute,
                    s.Consent,
                    s.ContactPreference,
                    s.CampaignResponse,
                    s.CampaignMember,
                    s.AccountContact,
                    s.Interaction,
                ):
                    table = s.table_of(model)
                    conn.execute(delete(table).where(table.c.customer_id.in_(chunk)))
                conn.execute(delete(s.table_of(s.Customer)).where(C.id.in_(chunk)))
            else:
                conn.execute(
                    update(s.table_of(s.Customer))
                    .where(C.id.in_(chunk))
                    .values(status="anonymised", display_name=None, first_name=None, last_name=None)
                )
                profiles = s.table_of(s.CustomerProfile)
                conn.execute(
                    update(profiles)
                    .where(profiles.c.customer_id.in_(chunk))
                    .values(birth_year=None, gender=None, street=None, postal_code=None)
                )
                conn.execute(
                    delete(identities).where(
                        identities.c.customer_id.in_(chunk), identities.c.kind.in_(["email", "phone"])
                    )
                )
                for row in conn.execute(
                    select(identities.c.id, identities.c.value).where(identities.c.customer_id.in_(chunk))
                ).all():
                    conn.execute(update(identities).where(identities.c.id == row.id).values(value=pseudonym(row.value)))
                interactions = s.table_of(s.Interaction)
                conn.execute(update(interactions).where(interactions.c.customer_id.in_(chunk)).values(body=None))
        if ids:
            audited(conn, [
                audit_row(actor=actor, interface="cli", action=f"retention_{mode}", entity="customer",
                          entity_id=customer_id, details={"months": months})
                for customer_id in ids
            ])  # fmt: skip
    return len(ids)
