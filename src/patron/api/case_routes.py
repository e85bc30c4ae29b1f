"""The service desk: the work queue, opening a case, notes and resolution."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from patron.api.schemas import CaseOpened, QueuedCase, Status
from patron.auth.portfolio import check_case_visible, check_visible, portfolio
from patron.http.common import CustomerId, Limit, LongText, ManageCases, ShortText, Store
from patron.service.cases import open_case, resolve_case, update_case, work_queue

router = APIRouter(prefix="/api")


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
    return [QueuedCase(**row) for row in work_queue(store, limit=limit, within=portfolio(principal))]


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
    check_case_visible(store, principal, case_id)
    update_case(store, case_id, note=body.text, customer_contact=body.customer_contact, actor=principal.username)
    return Status(status="noted")


@router.post("/cases/{case_id}/resolve", tags=["service"])
def resolve(case_id: CustomerId, body: NoteIn, store: Store, principal: ManageCases) -> Status:
    check_case_visible(store, principal, case_id)
    resolve_case(store, case_id, body.text, actor=principal.username, at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return Status(status="resolved")
