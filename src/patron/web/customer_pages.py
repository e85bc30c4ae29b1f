"""The customer page as a workplace: an agent or account manager logs a contact and opens a case while on the
call, through the same domain functions as the API (events are ingested and followed up; cases opened with their
service level), and sees them at once in the timeline and the conversation context.

A form that cannot be taken comes back with the reason beside its field and what was typed kept, nothing written;
a form sent twice (a double click, a reload) writes once: each form carries its own idempotency key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from patron.auth.access import customer_360
from patron.auth.portfolio import customer_resolver, visible_customer
from patron.auth.service import Principal, authorize
from patron.cif.events import EventIn
from patron.cif.identity.actions import history as merge_history
from patron.engage.recommendations import recommendations_for
from patron.engage.workflows import ingest_and_follow_up
from patron.errors import InvalidInputError, NotFoundError, PatronError
from patron.http.common import STATUS, Viewer, engine_of
from patron.service.cases import case_with_key, open_case
from patron.service.context import conversation_context
from patron.web.render import page

router = APIRouter(include_in_schema=False)
Reference = Annotated[str, Path(max_length=200)]
CHANNELS = ("phone", "email", "visit", "chat", "letter")
KINDS = {"call": "phone", "email": "email", "visit": "visit", "chat": "chat", "letter": "letter", "note": "phone"}


def blank_forms() -> dict[str, Any]:
    """The forms as first shown: empty, each with a fresh idempotency key."""
    return {
        "contact": {"key": uuid.uuid4().hex, "kind": "call", "direction": "inbound", "outcome": "", "body": ""},
        "case": {"key": uuid.uuid4().hex, "subject": "", "kind": "request", "priority": "normal", "description": ""},
        "errors": {},
        "notice": None,
    }


def customer_page(
    request: Request, principal: Principal, reference: str, *, status_code: int = 200, **forms: Any
) -> Response:
    """One customer by internal id, ``system:external-id`` (``cdnow:00001``) or, for roles that see personal data,
    e-mail address; someone outside a manager's portfolio is not found, like nobody."""
    engine = engine_of(request)
    try:
        found = visible_customer(engine, principal, reference)
        view = customer_360(engine, principal, found, interface="web")
    except PatronError as error:
        return page(request, "message.html", principal, status_code=404, title="Customer not found",
                    message=error.message)  # fmt: skip
    context = conversation_context(engine, found) if principal.can("manage_cases") else None
    timeline = list(reversed(view.timeline[-200:]))
    merges = [m for m in merge_history(engine, found) if m["survivor_id"] == found]
    recommended = recommendations_for(engine, found, k=5)
    return page(request, "customer.html", principal, status_code=status_code, view=view, timeline=timeline,
                context=context, merges=merges, recommended=recommended, reference=reference,
                **{**blank_forms(), **forms})  # fmt: skip


DONE = {
    "contact": "Contact logged: it is in the timeline below.",
    "case": "Case opened: it is in the open cases above.",
}


@router.get("/customers/{customer_id}", response_model=None)
def customer(
    request: Request,
    principal: Viewer,
    customer_id: Reference,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    return customer_page(request, principal, customer_id, notice=DONE.get(done or ""))


def _done(reference: str, what: str) -> RedirectResponse:
    """Back to the page (a reload then sends nothing again), saying what was done."""
    return RedirectResponse(f"/customers/{quote(reference, safe=':@')}?done={what}", status_code=303)


@router.post("/customers/{customer_id}/contacts", response_model=None)
def log_contact(
    request: Request,
    principal: Viewer,
    customer_id: Reference,
    *,
    key: Annotated[str, Form(max_length=64)],
    kind: Annotated[str, Form(max_length=16)],
    direction: Annotated[str, Form(max_length=16)] = "inbound",
    outcome: Annotated[str, Form(max_length=64)] = "",
    body: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """A call, e-mail, visit, chat, letter or note logged as an interaction of this customer."""
    typed = {"key": key, "kind": kind, "direction": direction, "outcome": outcome, "body": body}
    engine = engine_of(request)
    errors: dict[str, str] = {}
    try:
        authorize(principal, "write_events")
        if kind not in KINDS:
            errors["kind"] = f"choose one of {', '.join(KINDS)}"
        if not body.strip() and kind == "note":
            errors["body"] = "a note needs its text"
        if not errors:
            event = EventIn(customer=customer_id, idempotency_key=f"web:{key}", source="web", occurred_at=_now(),
                            channel=KINDS[kind], direction=direction, type=kind, outcome=outcome.strip() or None,
                            body=body.strip() or None, details={"logged_by": principal.username})  # fmt: skip
            result = ingest_and_follow_up(engine, [event], resolve=customer_resolver(engine, principal))
            if result.result.rejected:
                _raise_first(result.result.rejected)
    except ValidationError as invalid:
        errors.update({str(problem["loc"][-1]): problem["msg"] for problem in invalid.errors()})
    except PatronError as error:
        if error.code != "invalid_input":
            return _refused(request, principal, customer_id, error)
        errors[error.field or "body"] = error.message
    if errors:
        return customer_page(request, principal, customer_id, status_code=422, contact=typed,
                             errors={f"contact.{name}": message for name, message in errors.items()})  # fmt: skip
    return _done(customer_id, "contact")


@router.post("/customers/{customer_id}/cases", response_model=None)
def new_case(
    request: Request,
    principal: Viewer,
    customer_id: Reference,
    *,
    key: Annotated[str, Form(max_length=64)],
    subject: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=16)] = "request",
    priority: Annotated[str, Form(max_length=16)] = "normal",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """A case opened for this customer, with the service level of their tier."""
    typed = {"key": key, "subject": subject, "kind": kind, "priority": priority, "description": description}
    engine = engine_of(request)
    errors: dict[str, str] = {}
    if not subject.strip():
        errors["subject"] = "a case needs a subject: what is it about?"
    if kind not in ("complaint", "request", "question"):
        errors["kind"] = "choose complaint, request or question"
    if priority not in ("low", "normal", "high", "urgent"):
        errors["priority"] = "choose low, normal, high or urgent"
    try:
        authorize(principal, "manage_cases")
        found = visible_customer(engine, principal, customer_id)
        if not errors and case_with_key(engine, "web", key) is None:  # sent twice (a reload): opened once
            open_case(engine, found, subject=subject.strip(), kind=kind, description=description.strip() or None,
                      priority=priority, channel="phone", source="web", case_key=key)  # fmt: skip
    except PatronError as error:
        if error.code != "invalid_input":
            return _refused(request, principal, customer_id, error)
        errors[error.field or "subject"] = error.message
    if errors:
        return customer_page(request, principal, customer_id, status_code=422, case=typed,
                             errors={f"case.{name}": message for name, message in errors.items()})  # fmt: skip
    return _done(customer_id, "case")


def _refused(request: Request, principal: Principal, reference: str, error: PatronError) -> Response:
    if error.code == "not_found":
        return customer_page(request, principal, reference)  # the page's own "not found", as for a GET
    return page(request, "message.html", principal, status_code=STATUS.get(error.code, 400), title="Not done",
                message=error.message)  # fmt: skip


def _raise_first(rejected: list[dict[str, Any]]) -> None:
    """An event the ingest refused, as the error its reason is: unknown (or unseen) customer, or bad input."""
    first = rejected[0]
    if first.get("field") == "customer":
        raise NotFoundError(first["detail"], field="customer")
    raise InvalidInputError(first["detail"], field=first.get("field"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
