"""Cases: open, assign, update, resolve, reopen — every change also written to the customer's interaction ledger.

Service levels follow value: an A-tier customer's case is due in 4 hours, B in 24, C in 72, an unscored
customer's in 48 (urgent cases in half the time). A complaint from a valuable customer (tier A or B) who already
complained in the last 12 months is escalated: urgent, owned by a manager, and first in the work queue.
Everything is checked before anything is written; a failed call changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, insert, or_, select, update

from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import case_changed, require_customer
from patron.errors import ConflictError, InvalidInputError, NotFoundError
from patron.service.schema import Agent, Case
from patron.value.latest import LATEST_SCORE

CASES = table_of(Case)
AGENTS = table_of(Agent)

SLA_HOURS: dict[str | None, int] = {"A": 4, "B": 24, "C": 72, None: 48}
VALUABLE_TIERS = ("A", "B")
KINDS = ("complaint", "request", "question")
PRIORITIES = ("low", "normal", "high", "urgent")
CLOSED = ("resolved", "closed")
LIMITS = {"subject": 200, "description": 10_000, "note": 5_000, "resolution": 5_000, "category": 100}


@dataclass(frozen=True)
class OpenedCase:
    id: int
    sla_due_at: dt.datetime
    escalated: bool
    escalation_reason: str | None
    assigned_to: str | None


def _check_length(**texts: str | None) -> None:
    for name, text in texts.items():
        if text is not None and len(text) > LIMITS[name]:
            raise InvalidInputError(f"the {name} is {len(text):,} characters; at most {LIMITS[name]:,}", field=name)


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}, not {value!r}", field=name)
    return value


def create_agent(engine: Engine, username: str, display_name: str, role: str = "agent") -> int:
    _choice(role, ("agent", "manager"), "role")
    if not username or len(username) > 64:
        raise InvalidInputError("a username needs 1 to 64 characters", field="username")
    with engine.begin() as conn:
        if conn.scalar(select(AGENTS.c.id).where(AGENTS.c.username == username)) is not None:
            raise ConflictError(f"there is already an agent {username!r}", field="username")
        row = {"username": username, "display_name": display_name, "role": role}
        return int(conn.execute(insert(AGENTS).values(row).returning(AGENTS.c.id)).scalar_one())


def agent_for(engine: Engine, username: str, *, role: str = "agent") -> str:
    """The desk's agent record of a signed-in user, made the first time they take a case (``role``: a manager
    owns escalated cases)."""
    with engine.begin() as conn:
        found = conn.execute(select(AGENTS.c.id, AGENTS.c.active).where(AGENTS.c.username == username)).first()
        if found is None:
            conn.execute(
                insert(AGENTS).values(
                    username=username, display_name=username, role=_choice(role, ("agent", "manager"), "role")
                )
            )
        elif not found.active:
            raise ConflictError(f"agent {username!r} is inactive on the desk", field="agent")
    return username


def active_agents(engine: Engine) -> list[dict[str, Any]]:
    """Whom a case can be assigned to: the desk's active agents and managers, by name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(AGENTS.c.username, AGENTS.c.display_name, AGENTS.c.role)
            .where(AGENTS.c.active)
            .order_by(AGENTS.c.username)
        )
        return [dict(row._mapping) for row in rows]


def _agent_id(conn: Connection, username: str) -> int:
    found = conn.scalar(select(AGENTS.c.id).where(AGENTS.c.username == username, AGENTS.c.active))
    if found is None:
        raise NotFoundError(f"there is no active agent {username!r}", field="agent")
    return int(found)


def _tier(conn: Connection, customer_id: int) -> str | None:
    latest = conn.execute(LATEST_SCORE, {"customer_id": customer_id}).first()
    return None if latest is None else latest.tier


def _previous_complaints(conn: Connection, customer_id: int, at: dt.datetime) -> int:
    """Complaint cases opened in the 12 months before ``at`` (imported complaints count once they are cases)."""
    since = at - dt.timedelta(days=365)
    cases = conn.scalar(
        select(func.count()).where(
            CASES.c.customer_id == customer_id,
            CASES.c.kind == "complaint",
            CASES.c.opened_at > since,
            CASES.c.opened_at <= at,
        )
    )
    return int(cases or 0)


def _manager_with_fewest_open_cases(conn: Connection) -> tuple[int, str] | None:
    load = (
        select(AGENTS.c.id, AGENTS.c.username, func.count(CASES.c.id).label("open"))
        .select_from(AGENTS.outerjoin(CASES, (CASES.c.assigned_to == AGENTS.c.id) & CASES.c.status.not_in(CLOSED)))
        .where(AGENTS.c.role == "manager", AGENTS.c.active)
        .group_by(AGENTS.c.id, AGENTS.c.username)
        .order_by("open", AGENTS.c.username)
        .limit(1)
    )
    row = conn.execute(load).first()
    return None if row is None else (int(row.id), str(row.username))


def open_case(
    engine: Engine,
    customer_id: int,
    *,
    subject: str,
    kind: str = "request",
    description: str | None = None,
    category: str | None = None,
    priority: str = "normal",
    channel: str = "phone",
    agent: str | None = None,
    order_id: int | None = None,
    at: dt.datetime | None = None,
    source: str = "patron",
    case_key: str | None = None,
    outcome: str | None = None,
) -> OpenedCase:
    _check_length(subject=subject, description=description, category=category)
    if not subject.strip():
        raise InvalidInputError("a case needs a subject", field="subject")
    _choice(kind, KINDS, "kind")
    _choice(priority, PRIORITIES, "priority")
    at = at or utcnow()
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        assignee = _agent_id(conn, agent) if agent else None
        assignee_name = agent
        tier = _tier(conn, customer_id)
        reason = None
        if kind == "complaint" and tier in VALUABLE_TIERS:
            earlier = _previous_complaints(conn, customer_id, at)
            if earlier >= 1:
                reason = f"tier {tier} customer with {earlier + 1} complaints in 12 months: baby-sit their orders"
                priority = "urgent"
                owner = _manager_with_fewest_open_cases(conn)
                if owner is not None and assignee is None:
                    assignee, assignee_name = owner
        hours = SLA_HOURS.get(tier, SLA_HOURS[None]) / (2 if priority == "urgent" else 1)
        row = {
            "source": source, "case_key": case_key or uuid.uuid4().hex, "customer_id": customer_id, "kind": kind,
            "category": category, "subject": subject.strip(), "description": description, "priority": priority,
            "channel": channel, "assigned_to": assignee, "order_id": order_id, "opened_at": at,
            "sla_due_at": at + dt.timedelta(hours=hours), "contacts": 1, "escalated": reason is not None,
            "escalation_reason": reason, "outcome": outcome,
        }  # fmt: skip
        case_id = int(conn.execute(insert(CASES).values(row).returning(CASES.c.id)).scalar_one())
        case_changed(
            conn, customer_id, case_id, "case_opened", at, channel=channel, body=description, subject=subject, kind=kind
        )
        if reason:
            case_changed(conn, customer_id, case_id, "case_escalated", at, reason=reason, agent=assignee_name)
    return OpenedCase(case_id, row["sla_due_at"], reason is not None, reason, assignee_name)  # type: ignore[arg-type]


def _open_case_row(conn: Connection, case_id: int) -> Any:
    row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
    if row is None:
        raise NotFoundError(f"there is no case {case_id}", field="case_id")
    return row


def _require_open(row: Any) -> None:
    if row.status in CLOSED:
        raise ConflictError(f"case {row.id} is {row.status}; reopen it before changing it", field="case_id")


def assign_case(engine: Engine, case_id: int, agent: str, *, actor: str = "system") -> None:
    with engine.begin() as conn:
        row = _open_case_row(conn, case_id)
        _require_open(row)
        agent_id = _agent_id(conn, agent)
        conn.execute(update(CASES).where(CASES.c.id == case_id).values(assigned_to=agent_id))
        case_changed(conn, row.customer_id, case_id, "case_assigned", utcnow(), agent=actor, assigned_to=agent)


def escalate_case(engine: Engine, case_id: int, reason: str, *, actor: str = "system") -> str | None:
    """Escalate by hand: urgent, first in the queue, its service level halved from now at the latest, owned by the
    manager with the fewest open cases unless someone owns it already; returns who owns it."""
    _check_length(note=reason)
    if not reason.strip():
        raise InvalidInputError("say why the case is escalated", field="reason")
    at = utcnow()
    with engine.begin() as conn:
        row = _open_case_row(conn, case_id)
        _require_open(row)
        if row.escalated:
            raise ConflictError(f"case {case_id} is already escalated", field="case_id")
        changes: dict[str, Any] = {"escalated": True, "escalation_reason": reason.strip(), "priority": "urgent"}
        owner = None
        if row.assigned_to is None and (manager := _manager_with_fewest_open_cases(conn)) is not None:
            changes["assigned_to"], owner = manager
        elif row.assigned_to is not None:
            owner = conn.scalar(select(AGENTS.c.username).where(AGENTS.c.id == row.assigned_to))
        window = row.sla_due_at - row.opened_at
        changes["sla_due_at"] = min(row.sla_due_at, at + window / 2)
        conn.execute(update(CASES).where(CASES.c.id == case_id).values(**changes))
        case_changed(conn, row.customer_id, case_id, "case_escalated", at, reason=reason.strip(), agent=actor)
    return owner


def update_case(
    engine: Engine,
    case_id: int,
    *,
    note: str | None = None,
    priority: str | None = None,
    category: str | None = None,
    customer_contact: bool = False,
    channel: str = "phone",
    actor: str = "system",
) -> None:
    """Add a note or change priority/category; ``customer_contact`` counts another contact with the customer."""
    _check_length(note=note, category=category)
    if priority is not None:
        _choice(priority, PRIORITIES, "priority")
    with engine.begin() as conn:
        row = _open_case_row(conn, case_id)
        _require_open(row)
        changes: dict[str, Any] = {}
        if priority is not None:
            changes["priority"] = priority
        if category is not None:
            changes["category"] = category
        if customer_contact:
            changes["contacts"] = CASES.c.contacts + 1
        if changes:
            conn.execute(update(CASES).where(CASES.c.id == case_id).values(**changes))
        entry = "case_contact" if customer_contact else "case_note"
        case_changed(
            conn, row.customer_id, case_id, entry, utcnow(), agent=actor, body=note,
            channel=channel if customer_contact else "internal", priority=priority, category=category,
        )  # fmt: skip


def resolve_case(
    engine: Engine, case_id: int, resolution: str, *, actor: str = "system", at: dt.datetime | None = None
) -> None:
    _check_length(resolution=resolution)
    at = at or utcnow()
    with engine.begin() as conn:
        row = _open_case_row(conn, case_id)
        _require_open(row)
        conn.execute(
            update(CASES).where(CASES.c.id == case_id).values(status="resolved", resolved_at=at, resolution=resolution)
        )
        case_changed(conn, row.customer_id, case_id, "case_resolved", at, agent=actor, body=resolution)


def reopen_case(
    engine: Engine, case_id: int, reason: str, *, actor: str = "system", at: dt.datetime | None = None
) -> None:
    _check_length(note=reason)
    at = at or utcnow()
    with engine.begin() as conn:
        row = _open_case_row(conn, case_id)
        if row.status not in CLOSED:
            raise ConflictError(f"case {case_id} is {row.status}, not resolved: nothing to reopen", field="case_id")
        conn.execute(
            update(CASES)
            .where(CASES.c.id == case_id)
            .values(status="open", resolved_at=None, reopened=CASES.c.reopened + 1, last_reopened_at=at)
        )
        case_changed(conn, row.customer_id, case_id, "case_reopened", at, agent=actor, body=reason, direction="inbound")


QUEUE_VIEWS = ("mine", "overdue", "escalated", "unassigned")  # the work queue's filters


def work_queue(
    engine: Engine,
    *,
    agent: str | None = None,
    limit: int = 50,
    within: Select[int] | None = None,
    only: str | None = None,
    me: str | None = None,
) -> list[dict[str, Any]]:
    """Open cases, escalated ones first, then by service-level due time (only about the customers ``within``
    selects, if given: a manager's portfolio; ``only`` one of ``QUEUE_VIEWS``: assigned to ``me``, past their
    service level, escalated, or not assigned to anyone)."""
    query = (
        select(CASES, AGENTS.c.username.label("agent"))
        .select_from(CASES.outerjoin(AGENTS, AGENTS.c.id == CASES.c.assigned_to))
        .where(CASES.c.status.not_in(CLOSED))
        .order_by(CASES.c.escalated.desc(), CASES.c.sla_due_at, CASES.c.id)
        .limit(limit)
    )
    if agent is not None:
        query = query.where(or_(AGENTS.c.username == agent, CASES.c.assigned_to.is_(None)))
    if within is not None:
        query = query.where(CASES.c.customer_id.in_(within))
    if only is not None:
        _choice(only, QUEUE_VIEWS, "only")
        query = query.where(
            {"overdue": CASES.c.sla_due_at < utcnow(), "escalated": CASES.c.escalated.is_(True),
             "unassigned": CASES.c.assigned_to.is_(None), "mine": AGENTS.c.username == (me or "")}[only]
        )  # fmt: skip
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


DUE_SOON_SHARE = 0.25  # the last quarter of the service-level window


def due_state(case: dict[str, Any], now: dt.datetime) -> str | None:
    """``overdue`` past its service level, ``due soon`` in the last quarter of its window, else None (or closed)."""
    due, opened = case.get("sla_due_at"), case.get("opened_at")
    if case.get("status") in CLOSED or due is None:
        return None
    if now > due:
        return "overdue"
    if opened is not None and due - now <= (due - opened) * DUE_SOON_SHARE:
        return "due soon"
    return None


def case_with_key(engine: Engine, source: str, case_key: str) -> int | None:
    """The case a source opened under ``case_key`` (a form's or a system's own key), if any."""
    with engine.connect() as conn:
        found = conn.scalar(select(CASES.c.id).where(CASES.c.source == source, CASES.c.case_key == case_key))
    return None if found is None else int(found)


def get_case(engine: Engine, case_id: int) -> dict[str, Any]:
    """One case with the username of whoever owns it (``agent``, None when nobody does)."""
    with engine.connect() as conn:
        case = dict(_open_case_row(conn, case_id)._mapping)
        owner = case["assigned_to"]
        case["agent"] = None if owner is None else conn.scalar(select(AGENTS.c.username).where(AGENTS.c.id == owner))
    return case
