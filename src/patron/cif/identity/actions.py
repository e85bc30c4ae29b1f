"""Identity resolution as the CLI, the API and the pages call it: each action in a transaction of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from patron.cif.identity.merge import MERGES, Merge, merge_customers, merge_of, merges_of, split
from patron.cif.identity.realtime import Decision, match_record
from patron.cif.identity.resolve import StoredModel, latest_model
from patron.cif.identity.review import ReviewPair, decide, list_reviews, open_count


@dataclass(frozen=True)
class Overview:
    model: StoredModel | None
    open_reviews: int
    merges: int  # in force (not split)
    pairs: list[ReviewPair]
    recent: list[dict[str, Any]]


def overview(engine: Engine, *, limit: int = 20, offset: int = 0) -> Overview:
    """What the review page shows: the model in use, the open pairs (a page of them) and the latest merges."""
    with engine.connect() as conn:
        in_force = conn.scalar(select(func.count()).select_from(MERGES).where(MERGES.c.split_at.is_(None)))
        recent = [dict(r) for r in conn.execute(select(MERGES).order_by(MERGES.c.id.desc()).limit(10)).mappings()]
        return Overview(latest_model(conn), open_count(conn), int(in_force or 0),
                        list_reviews(conn, limit=limit, offset=offset), recent)  # fmt: skip


def decide_review(engine: Engine, review_id: int, decision: str, *, actor: str, interface: str) -> ReviewPair:
    with engine.begin() as conn:
        return decide(conn, review_id, decision, actor=actor, interface=interface)


def merge(engine: Engine, ids: list[int], *, actor: str, interface: str) -> list[Merge]:
    with engine.begin() as conn:
        return merge_customers(conn, ids, actor=actor, interface=interface)


def split_merge(
    engine: Engine, *, merge_id: int | None = None, merged_id: int | None = None, actor: str, interface: str
) -> Merge:
    """Undo a merge named by its number or by the record it closed."""
    with engine.begin() as conn:
        chosen = merge_id if merge_id is not None else merge_of(conn, int(merged_id or 0))
        return split(conn, chosen, actor=actor, interface=interface)


def history(engine: Engine, customer_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return merges_of(conn, customer_id)


def match(engine: Engine, record: dict[str, Any]) -> Decision:
    with engine.connect() as conn:
        return match_record(conn, record)
