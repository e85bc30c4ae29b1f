"""Events from other systems: stored once per idempotency key and followed up in the same request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from patron.api.schemas import Ingested
from patron.auth.portfolio import customer_resolver
from patron.auth.service import Principal
from patron.cif.events import EventIn
from patron.engage.workflows import ingest_and_follow_up
from patron.http.common import Store, WriteEvents

router = APIRouter(prefix="/api")


class EventBatch(BaseModel):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=1000)]


@router.post("/events", tags=["events"], status_code=201)
def event(body: EventIn, store: Store, principal: WriteEvents) -> Ingested:
    """One interaction; sending the same idempotency key again stores nothing new."""
    return _ingest(store, principal, [body])


@router.post("/events/batch", tags=["events"], status_code=201)
def events(body: EventBatch, store: Store, principal: WriteEvents) -> Ingested:
    """Up to 1,000 interactions; each rejected one is reported with its index and reason, the rest are kept."""
    return _ingest(store, principal, body.events)


def _ingest(store: Engine, principal: Principal, events: list[EventIn]) -> Ingested:
    """Store the events and follow them up in the same request (triggers fire within seconds); an event about a
    customer outside the caller's portfolio is rejected as one about nobody."""
    resolve = customer_resolver(store, principal)
    return Ingested(**ingest_and_follow_up(store, events, resolve=resolve).as_dict())
