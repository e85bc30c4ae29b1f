"""The REST API: thin routes over the domain services (rules and checks live there, not here)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from patron.api.schemas import (
    BestOffer,
    CaseOpened,
    ConversationContext,
    Count,
    Created,
    Customer360,
    IdPage,
    Ingested,
    Me,
    Page,
    Profile,
    QueuedCase,
    ScoreRunOut,
    SegmentOut,
    Status,
    TimelineItem,
    TokenOut,
    ValueList,
)  # fmt: skip
from patron.auth.access import (
    check_visible,
    customer_360,
    customer_profile,
    customers_page,
    export_customers,
    masked_names,
    run_scores_page,
)
from patron.auth.service import authenticate, issue_token
from patron.cif.events import EventIn
from patron.engage.offers import OfferChoice, next_best_offer
from patron.engage.workflows import ingest_and_follow_up
from patron.http.common import (
    Caller,
    LongText,
    ManageCases,
    ManageSegments,
    ReadCustomers,
    ShortText,
    Store,
    WriteEvents,
    on_store,
)
from patron.segments.rules import create_segment, list_segments, preview, segment_members
from patron.service.cases import open_case, resolve_case, update_case, work_queue
from patron.service.context import conversation_context
from patron.value.base import customer_base
from patron.value.lists import LISTS
from patron.value.scoring import list_runs

router = APIRouter(prefix="/api")
CustomerId = Annotated[int, Path(ge=1, le=2**53)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class Credentials(BaseModel):
    username: ShortText
    password: Annotated[str, Field(min_length=1, max_length=200)]


@router.post("/auth/token", tags=["auth"])
def sign_in(body: Credentials, store: Store) -> TokenOut:
    """Exchange a username and password for an API token (send it as ``Authorization: Bearer …``)."""
    principal = authenticate(store, body.username, body.password)
    return TokenOut(token=issue_token(store, principal), role=principal.role)


@router.get("/me", tags=["auth"])
def me(principal: Caller) -> Me:
    return Me(username=principal.username, role=principal.role)


@router.get("/customers", tags=["customers"])
def customers(
    store: Store,
    principal: Caller,
    search: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """Customers the caller may see, searchable by id, e-mail, phone or name (analysts: by id only)."""
    rows, total = customers_page(store, principal, search=search, limit=limit, offset=offset)
    return Page(items=rows, total=total, limit=limit, offset=offset)


@router.get("/customers/export.csv", tags=["customers"], response_class=PlainTextResponse)
def export(store: Store, principal: Caller) -> str:
    return export_customers(store, principal)


@router.get("/customers/{customer_id}", tags=["customers"])
def customer(customer_id: CustomerId, store: Store, principal: Caller) -> Customer360:
    """The 360° view: identities, profile, attributes, orders, interactions, consents, campaigns, timeline."""
    view = customer_360(store, principal, customer_id)
    return Customer360(
        customer=view.customer, identities=view.identities, profile=view.profile, attributes=view.attributes,
        orders=view.orders[-100:], interactions=view.interactions[-100:], consents=view.consents,
        campaigns=view.campaigns, facts=view.facts,
        timeline=[TimelineItem(at=e.at, kind=e.kind, summary=e.summary) for e in view.timeline[-100:]],
    )  # fmt: skip


# The two real-time lookups are coroutines that choose where their reads run (common.on_store).
@router.get("/customers/{customer_id}/profile", tags=["customers"])
async def profile(customer_id: CustomerId, store: Store, principal: Caller) -> Profile:
    """The real-time profile: who they are, consents, orders per currency and latest value scores (no history)."""
    return Profile(**await on_store(store, lambda: customer_profile(store, principal, customer_id)))


@router.get("/customers/{customer_id}/context", tags=["service"])
def context(customer_id: CustomerId, store: Store, principal: ManageCases) -> ConversationContext:
    """For a live call: last interactions, open cases, recent purchases, consents, the next question."""
    check_visible(store, principal, customer_id)  # the same visibility rules as the 360° view
    result = conversation_context(store, customer_id)
    return ConversationContext(
        customer=result.customer, scores=result.scores, interactions=result.interactions,
        open_cases=result.open_cases, orders=result.orders, consents=result.consents,
        next_question=result.next_question,
    )  # fmt: skip


@router.get("/customers/{customer_id}/next-best-offer", tags=["offers"])
async def best_offer(
    customer_id: CustomerId, store: Store, principal: Caller, channel: Annotated[str, Query(max_length=32)] = "email"
) -> BestOffer:
    """The eligible offer with the highest P(accept) × margin that the contact policy allows, with the reason."""

    def lookup() -> OfferChoice:
        check_visible(store, principal, customer_id)  # the same visibility rules as the 360° view
        return next_best_offer(store, customer_id, channel=channel)

    choice = await on_store(store, lookup)
    return BestOffer(
        customer_id=customer_id, offer=choice.offer, expected_value=choice.expected_value, reason=choice.reason
    )


class EventBatch(BaseModel):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=1000)]


@router.post("/events", tags=["events"], status_code=201)
def event(body: EventIn, store: Store, principal: WriteEvents) -> Ingested:
    """One interaction; sending the same idempotency key again stores nothing new."""
    return _ingest(store, [body])


@router.post("/events/batch", tags=["events"], status_code=201)
def events(body: EventBatch, store: Store, principal: WriteEvents) -> Ingested:
    """Up to 1,000 interactions; each rejected one is reported with its index and reason, the rest are kept."""
    return _ingest(store, body.events)


def _ingest(store: Engine, events: list[EventIn]) -> Ingested:
    """Store the events and follow them up in the same request (triggers fire within seconds)."""
    return Ingested(**ingest_and_follow_up(store, events).as_dict())


class SegmentIn(BaseModel):
    name: ShortText
    rule: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
    description: LongText | None = None


class RuleIn(BaseModel):
    rule: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


@router.get("/segments", tags=["segments"])
def segments(store: Store, principal: ReadCustomers) -> list[SegmentOut]:
    return [SegmentOut(**row) for row in list_segments(store)]


@router.post("/segments", tags=["segments"], status_code=201)
def new_segment(body: SegmentIn, store: Store, principal: ManageSegments) -> Created:
    return Created(id=create_segment(store, body.name, body.rule, body.description), name=body.name)


@router.post("/segments/preview", tags=["segments"])
def preview_segment(body: RuleIn, store: Store, principal: ReadCustomers) -> Count:
    """The live count of a rule (the segment builder calls this as you type)."""
    result = preview(store, body.rule, sample=0)
    return Count(count=result.count, customers=result.customers)


@router.get("/segments/{name}/members", tags=["segments"])
def members(
    name: Annotated[str, Path(max_length=100)],
    store: Store,
    principal: ReadCustomers,
    limit: Limit = 50,
    offset: Offset = 0,
) -> IdPage:
    ids, total = segment_members(store, name, limit=limit, offset=offset)
    return IdPage(items=ids, total=total, limit=limit, offset=offset)


@router.get("/value/runs", tags=["value"])
def runs(store: Store, principal: ReadCustomers, limit: Limit = 20) -> list[ScoreRunOut]:
    return [ScoreRunOut(**row) for row in list_runs(store, limit)]


@router.get("/value/runs/{run_id}/scores", tags=["value"])
def run_scores(
    run_id: Annotated[int, Path(ge=1, le=2**53)],
    *,
    store: Store,
    principal: Caller,
    tier: Annotated[str | None, Query(pattern=r"^[A-Z]$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """A score run's customers by rank, best first: P(alive), expected purchases, CLV, value at risk, tier."""
    rows, total = run_scores_page(store, principal, run_id, tier=tier, limit=limit, offset=offset)
    return Page(items=rows, total=total, limit=limit, offset=offset)


@router.get("/value/lists/{name}", tags=["value"])
def value_list(
    name: Literal["tiers", "top", "bottom", "costly", "declining", "lost", "wallet-gap", "complainers", "at-risk"],
    *,
    store: Store,
    principal: ReadCustomers,
    source: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ValueList:
    """A differentiation list with a reason per customer (names pseudonymised for analysts)."""
    frame, scope, as_of = customer_base(store, source=source)
    result = LISTS[name](frame)
    rows = result.rows.slice(offset, limit).to_dicts()
    rows = masked_names(principal, rows)
    return ValueList(
        title=result.title, note=result.note, source=scope.source, as_of=as_of, total=result.rows.height, items=rows
    )


class CaseIn(BaseModel):
    customer_id: Annotated[int, Field(ge=1, le=2**53)]
    subject: ShortText
    kind: Literal["complaint", "request", "question"] = "request"
    description: LongText | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    channel: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9 _-]+$")] = "phone"


class NoteIn(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=5000, pattern=r"^[^\x00]*$")]
    customer_contact: bool = False


@router.get("/cases/queue", tags=["service"])
def queue(store: Store, principal: ManageCases, limit: Limit = 50) -> list[QueuedCase]:
    return [QueuedCase(**row) for row in work_queue(store, limit=limit)]


@router.post("/cases", tags=["service"], status_code=201)
def new_case(body: CaseIn, store: Store, principal: ManageCases) -> CaseOpened:
    check_visible(store, principal, body.customer_id)
    opened = open_case(
        store, body.customer_id, subject=body.subject, kind=body.kind, description=body.description,
        priority=body.priority, channel=body.channel,
    )  # fmt: skip
    return CaseOpened(
        id=opened.id, sla_due_at=opened.sla_due_at, escalated=opened.escalated, reason=opened.escalation_reason
    )


@router.post("/cases/{case_id}/notes", tags=["service"])
def note(case_id: CustomerId, body: NoteIn, store: Store, principal: ManageCases) -> Status:
    update_case(store, case_id, note=body.text, customer_contact=body.customer_contact, actor=principal.username)
    return Status(status="noted")


@router.post("/cases/{case_id}/resolve", tags=["service"])
def resolve(case_id: CustomerId, body: NoteIn, store: Store, principal: ManageCases) -> Status:
    resolve_case(store, case_id, body.text, actor=principal.username, at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return Status(status="resolved")
