"""Interactions arriving one by one or in batches (API, webhooks): validated, resolved to a customer, stored once.

Each event carries an idempotency key; sending it again (a retry, a duplicate delivery) stores nothing new.
A bad event is rejected with its index and reason; the others in the batch are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from patron.cif.ledger import interactions_recorded
from patron.cif.view import resolve_customer
from patron.errors import NotFoundError

Plain = r"^[^\x00]*$"
DetailValue = str | int | float | bool | None


class EventIn(BaseModel):
    customer: Annotated[
        str, Field(min_length=1, max_length=200, pattern=Plain, description="id, system:external-id or e-mail")
    ]
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128, pattern=Plain)]
    source: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = "api"
    occurred_at: dt.datetime
    channel: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9 _-]+$")]
    direction: Literal["inbound", "outbound"] = "inbound"
    type: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    outcome: Annotated[str | None, Field(max_length=64, pattern=Plain)] = None
    body: Annotated[str | None, Field(max_length=10_000, pattern=Plain)] = None
    details: Annotated[dict[Annotated[str, Field(max_length=64, pattern=Plain)], DetailValue], Field(max_length=50)] = (
        Field(default_factory=dict)
    )


@dataclass
class IngestResult:
    created: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    stored: list[tuple[int, int, str]] = field(default_factory=list)  # (interaction id, customer id, type) of new ones

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "duplicates": self.duplicates, "rejected": self.rejected}


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def ingest_events(
    engine: Engine, events: Sequence[EventIn], *, resolve: Callable[[str], int] | None = None
) -> IngestResult:
    """Store the events once each; ``resolve`` finds an event's customer (by default anyone in the file; a caller
    with a portfolio passes its own, so an event about someone outside it is rejected as about nobody)."""
    resolve = resolve or partial(resolve_customer, engine)
    result = IngestResult()
    customers: dict[str, int | None] = {}
    rows = []
    for index, event in enumerate(events):
        reference = event.customer
        if reference not in customers:
            try:
                customers[reference] = resolve(reference)
            except NotFoundError:
                customers[reference] = None
        customer_id = customers[reference]
        if customer_id is None:
            result.rejected.append(
                {"index": index, "field": "customer", "detail": f"no customer matches {reference!r}"}
            )
            continue
        rows.append(
            {
                "source": event.source, "idempotency_key": event.idempotency_key, "customer_id": customer_id,
                "occurred_at": _naive_utc(event.occurred_at), "channel": event.channel, "direction": event.direction,
                "type": event.type, "outcome": event.outcome, "body": event.body, "details": event.details or None,
            }
        )  # fmt: skip
    if rows:
        with engine.begin() as conn:
            created = interactions_recorded(conn, rows)
        result.created = len(created)
        result.stored = [(int(i), int(c), str(kind)) for i, c, kind in created]
        result.duplicates = len(rows) - result.created
    return result
