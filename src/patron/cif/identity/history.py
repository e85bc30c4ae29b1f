"""The merges a customer took part in, for the customer page, the API and the CLI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, or_, select

from patron.cif.identity.merge import MERGES


def merges_of(conn: Connection, customer_id: int) -> list[dict[str, Any]]:
    query = (
        select(MERGES)
        .where(or_(MERGES.c.survivor_id == customer_id, MERGES.c.merged_id == customer_id))
        .order_by(MERGES.c.id)
    )
    return [dict(row) for row in conn.execute(query).mappings()]
