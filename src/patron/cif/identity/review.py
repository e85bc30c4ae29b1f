"""The clerical-review queue: pairs the model was unsure of, side by side; a decision merges or keeps apart.

Decisions are kept (``match_reviews.status``) and become labelled pairs the next training run learns from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from patron.cif.columns import utcnow
from patron.cif.identity import records as person
from patron.cif.identity.comparisons import FIELDS
from patron.cif.identity.merge import ERASED, MERGED, Evidence, customer_row, merge_customers
from patron.cif.identity.resolve import REVIEWS
from patron.errors import InvalidInputError, NotFoundError

DECISIONS = {"accept": "accepted", "reject": "rejected"}


@dataclass(frozen=True)
class ReviewPair:
    id: int
    left_id: int
    right_id: int
    probability: float
    weight: float
    status: str
    levels: dict[str, str]
    left: dict[str, Any]
    right: dict[str, Any]

    @property
    def fields(self) -> list[tuple[str, Any, Any, str]]:
        """(field, left value, right value, comparison level) for the side-by-side view."""
        return [(f, self.left.get(f), self.right.get(f), self.levels.get(f, "")) for f in FIELDS]


def open_count(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(REVIEWS).where(REVIEWS.c.status == "open")) or 0)


def list_reviews(conn: Connection, *, status: str = "open", limit: int = 50, offset: int = 0) -> list[ReviewPair]:
    """Pairs to review, most likely matches first, with both records as they are now."""
    query = (
        select(REVIEWS)
        .where(REVIEWS.c.status == status)
        .order_by(REVIEWS.c.match_probability.desc(), REVIEWS.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(r) for r in conn.execute(query).mappings()]
    ids = sorted({i for r in rows for i in (r["left_id"], r["right_id"])})
    records = {r["customer_id"]: r for r in _records_any_status(conn, ids)}
    return [_pair(row, records) for row in rows]


def _records_any_status(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    found = {r["customer_id"]: r for r in person.person_records(conn, ids)}
    return [found.get(i, {"customer_id": i}) for i in ids]  # a record merged or erased since shows empty


def _pair(row: dict[str, Any], records: dict[int, dict[str, Any]]) -> ReviewPair:
    return ReviewPair(
        id=row["id"], left_id=row["left_id"], right_id=row["right_id"], probability=row["match_probability"],
        weight=row["match_weight"], status=row["status"], levels=row["levels"],
        left=records.get(row["left_id"], {}), right=records.get(row["right_id"], {}),
    )  # fmt: skip


def decide(conn: Connection, review_id: int, decision: str, *, actor: str, interface: str = "cli") -> ReviewPair:
    """Accept (merge the pair) or reject (keep them apart) an open review; the decision is stored."""
    if decision not in DECISIONS:
        raise InvalidInputError(f"decision must be one of {', '.join(DECISIONS)}", field="decision")
    row = conn.execute(select(REVIEWS).where(REVIEWS.c.id == review_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no review {review_id}", field="review")
    if row["status"] != "open":
        raise InvalidInputError(f"review {review_id} was already {row['status']}", field="review")
    if decision == "accept":
        statuses = {customer_row(conn, i).status for i in (row["left_id"], row["right_id"])}
        if statuses & {MERGED, ERASED}:
            raise InvalidInputError(
                f"review {review_id}: one of the records was merged or erased since; run the batch again",
                field="review",
            )
        agreed = tuple(f for f, level in row["levels"].items() if level not in ("missing", "different"))
        evidence = Evidence(row["match_probability"], row["match_weight"], agreed, "review")
        merge_customers(conn, [row["left_id"], row["right_id"]], evidence=evidence, actor=actor, interface=interface)
    status = DECISIONS[decision]
    conn.execute(
        update(REVIEWS).where(REVIEWS.c.id == review_id).values(status=status, decided_by=actor, decided_at=utcnow())
    )
    ids = [row["left_id"], row["right_id"]]
    return _pair({**row, "status": status}, {r["customer_id"]: r for r in _records_any_status(conn, ids)})
