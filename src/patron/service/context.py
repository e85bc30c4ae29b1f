"""The conversation context: everything an agent needs on a live call, in one call and a few indexed queries."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import no_such_customer
from patron.service.schema import Case
from patron.value.latest import LATEST_SCORE

CUSTOMERS = table_of(s.Customer)
INTERACTIONS = table_of(s.Interaction)
ORDERS = table_of(s.Order)
LINES = table_of(s.OrderLine)
CONSENTS = table_of(s.Consent)
CASES = table_of(Case)


@dataclass
class ConversationContext:
    customer: dict[str, Any]
    interactions: list[dict[str, Any]]
    open_cases: list[dict[str, Any]]
    recent_cases: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    next_question: str
    milliseconds: float = 0.0
    scores: dict[str, Any] = field(default_factory=dict)


def conversation_context(
    engine: Engine, customer_id: int, *, interactions: int = 20, orders: int = 5, now: dt.datetime | None = None
) -> ConversationContext:
    started = time.perf_counter()
    now = now or utcnow()
    with engine.connect() as conn:
        customer = conn.execute(
            select(
                CUSTOMERS.c.id, CUSTOMERS.c.display_name, CUSTOMERS.c.kind, CUSTOMERS.c.status, CUSTOMERS.c.source
            ).where(CUSTOMERS.c.id == customer_id)
        ).first()
        if customer is None:
            raise no_such_customer(customer_id)
        recent = conn.execute(
            select(
                INTERACTIONS.c.occurred_at, INTERACTIONS.c.channel, INTERACTIONS.c.direction, INTERACTIONS.c.type,
                INTERACTIONS.c.outcome, INTERACTIONS.c.agent, INTERACTIONS.c.details,
            )
            .where(INTERACTIONS.c.customer_id == customer_id)
            .order_by(INTERACTIONS.c.occurred_at.desc(), INTERACTIONS.c.id.desc())
            .limit(interactions)
        ).all()  # fmt: skip
        cases = conn.execute(
            select(
                CASES.c.id, CASES.c.kind, CASES.c.subject, CASES.c.status, CASES.c.priority, CASES.c.escalated,
                CASES.c.sla_due_at, CASES.c.opened_at, CASES.c.resolved_at,
            )
            .where(CASES.c.customer_id == customer_id)
            .order_by(CASES.c.opened_at.desc())
            .limit(20)
        ).all()  # fmt: skip
        bought = conn.execute(
            select(
                ORDERS.c.id,
                ORDERS.c.ordered_at,
                ORDERS.c.currency,
                func.sum(LINES.c.revenue_minor).label("revenue_minor"),
            )
            .join(LINES, LINES.c.order_id == ORDERS.c.id)
            .where(ORDERS.c.customer_id == customer_id)
            .group_by(ORDERS.c.id, ORDERS.c.ordered_at, ORDERS.c.currency)
            .order_by(ORDERS.c.ordered_at.desc())
            .limit(orders)
        ).all()
        consents = conn.execute(
            select(CONSENTS.c.channel, CONSENTS.c.purpose, CONSENTS.c.status, CONSENTS.c.recorded_at)
            .where(CONSENTS.c.customer_id == customer_id)
            .order_by(CONSENTS.c.recorded_at.desc())
            .limit(50)
        ).all()
        score = conn.execute(LATEST_SCORE, {"customer_id": customer_id}).first()
    latest_consents: dict[tuple[str, str], dict[str, Any]] = {}
    for row in consents:  # newest first: the first seen per channel and purpose is in force
        latest_consents.setdefault((row.channel, row.purpose), dict(row._mapping))
    context = ConversationContext(
        customer=dict(customer._mapping),
        interactions=[dict(row._mapping) for row in recent],
        open_cases=[dict(row._mapping) for row in cases if row.status not in ("resolved", "closed")],
        recent_cases=[dict(row._mapping) for row in cases if row.status in ("resolved", "closed")],
        orders=[dict(row._mapping) for row in bought],
        consents=list(latest_consents.values()),
        next_question="",
        scores={} if score is None else dict(score._mapping),
    )
    context.next_question = suggest_next_question(context, now)
    context.milliseconds = (time.perf_counter() - started) * 1000
    return context


def suggest_next_question(context: ConversationContext, now: dt.datetime) -> str:
    """The first rule that applies, from the most pressing down."""
    escalated = [case for case in context.open_cases if case["escalated"]]
    if escalated:
        case = escalated[0]
        return (
            f"Apologise about \u201c{case['subject']}\u201d and confirm the next step on case {case['id']}: you own it."
        )
    if context.open_cases:
        case = min(context.open_cases, key=lambda c: c["sla_due_at"])
        return (
            f"Follow up on case {case['id']} (\u201c{case['subject']}\u201d), due {case['sla_due_at']:%Y-%m-%d %H:%M}."
        )
    recent = [c for c in context.recent_cases if c["resolved_at"] and now - c["resolved_at"] < dt.timedelta(days=14)]
    if recent:
        return f"Ask whether \u201c{recent[0]['subject']}\u201d was solved to their satisfaction."
    if context.scores.get("tier") in ("A", "B") and (context.scores.get("p_alive") or 1.0) < 0.5:
        return "A valuable customer who may be drifting away: ask how we are doing and what would bring them back."
    if not any(consent["channel"] == "email" for consent in context.consents):
        return "Ask how, and how often, they would like to hear from us (and for e-mail consent)."
    if context.orders:
        return f"Ask how they like what they bought on {context.orders[0]['ordered_at']:%Y-%m-%d}."
    return "Ask what they need today."
