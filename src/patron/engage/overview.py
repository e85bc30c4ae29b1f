"""Campaigns at a glance and live: every campaign with its size and responses, and one campaign's progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from patron.engage.campaigns import CAMPAIGNS, CONTACTS, MEMBERS, PLANS, RESPONSES
from patron.engage.report import campaign_id_of


def list_campaigns(engine: Engine) -> list[dict[str, Any]]:
    """Every campaign, newest first: key, name, channel, start, members, plan status, responses per kind."""
    members = select(MEMBERS.c.campaign_id, func.count().label("members")).group_by(MEMBERS.c.campaign_id).subquery()
    query = (
        select(
            CAMPAIGNS.c.id, CAMPAIGNS.c.campaign_key, CAMPAIGNS.c.name, CAMPAIGNS.c.channel, CAMPAIGNS.c.source,
            CAMPAIGNS.c.started_on, func.coalesce(members.c.members, 0).label("members"), PLANS.c.status,
        )
        .outerjoin(members, members.c.campaign_id == CAMPAIGNS.c.id)
        .outerjoin(PLANS, PLANS.c.campaign_id == CAMPAIGNS.c.id)
        .order_by(CAMPAIGNS.c.id.desc())
    )  # fmt: skip
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        responses = conn.execute(
            select(RESPONSES.c.campaign_id, RESPONSES.c.kind, func.count()).group_by(
                RESPONSES.c.campaign_id, RESPONSES.c.kind
            )
        ).all()
    kinds: dict[int, dict[str, int]] = {}
    for campaign_id, kind, count in responses:
        kinds.setdefault(int(campaign_id), {})[str(kind)] = int(count)
    for row in rows:
        row["key"] = row.pop("campaign_key")
        row["status"] = row["status"] or "imported"
        row["responses"] = kinds.get(int(row.pop("id")), {})
    return rows


def live_counts(engine: Engine, key: str) -> dict[str, Any]:
    """What a campaign's page refreshes: contacts by status (planned campaigns) and responses by kind."""
    campaign_id = campaign_id_of(engine, key)
    with engine.connect() as conn:
        statuses = conn.execute(
            select(CONTACTS.c.status, func.count())
            .where(CONTACTS.c.campaign_id == campaign_id)
            .group_by(CONTACTS.c.status)
        ).all()
        responses = conn.execute(
            select(RESPONSES.c.kind, func.count())
            .where(RESPONSES.c.campaign_id == campaign_id)
            .group_by(RESPONSES.c.kind)
        ).all()
        plan = conn.scalar(select(PLANS.c.status).where(PLANS.c.campaign_id == campaign_id))
    return {
        "campaign": key,
        "status": plan or "imported",
        "contacts": {str(status): int(count) for status, count in statuses},
        "responses": {str(kind): int(count) for kind, count in responses},
    }
