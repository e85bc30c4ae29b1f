"""The customer page as a workplace: an agent or account manager logs a contact and opens a case while on the
call, through the same domain functions as the API (events are ingested and followed up; cases opened with their
service level), and sees them at once in the timeline and the conversation context.

A form that cannot be taken comes back with the reason beside its field and what was typed kept, nothing written;
a form sent twice (a double click, a reload) writes once: each form carries its own idempotency key.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from patron.auth.access import customer_360
from patron.auth.portfolio import customer_resolver, visible_customer
from patron.auth.service import Principal, authorize
from patron.cif.columns import utcnow
from patron.cif.events import EventIn
from patron.cif.identity.actions import history as merge_history
from patron.cif.identity.edits import EDITABLE, edit_customer, editable_attributes, editable_values
from patron.engage.consent import CHANNELS as CONSENT_CHANNELS
from patron.engage.consent import STATES as CONSENT_STATES
from patron.engage.consent import consent_ledger, contact_preferences, record_consent, set_contact_preference
from patron.engage.recommendations import recommendations_for
from patron.engage.workflows import ingest_and_follow_up
from patron.errors import InvalidInputError, NotFoundError, PatronError
from patron.http.common import STATUS, Viewer, engine_of
from patron.service.cases import KINDS as CASE_KINDS
from patron.service.cases import PRIORITIES, case_with_key, open_case
from patron.service.context import conversation_context
from patron.settings import get_settings
from patron.web.render import page

router = APIRouter(include_in_schema=False)
Reference = Annotated[str, Path(max_length=200)]
FormText = Annotated[str, Field(max_length=200)]
KINDS = {"call": "phone", "email": "email", "visit": "visit", "chat": "chat", "letter": "letter", "note": "phone"}


def blank_forms() -> dict[str, Any]:
    """The forms as first shown: empty, each with a fresh idempotency key."""
    return {
        "contact": {"key": uuid.uuid4().hex, "kind": "call", "direction": "inbound", "outcome": "", "body": ""},
        "case": {"key": uuid.uuid4().hex, "subject": "", "kind": "request", "priority": "normal", "description": ""},
        "consent": {"channel": "email", "purpose": "marketing", "status": "granted", "wording": ""},
        "preference": {"channel": "email", "preferred": "", "max_per_month": ""},
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
    details: dict[str, str] = {}
    if principal.can("edit_customers"):
        details = {
            **editable_values(engine, found),
            **{f"attributes.{key}": value for key, (value, _) in editable_attributes(engine, found).items()},
        }
    money_currency = view.customer.get("currency") or get_settings().default_currency  # the source's, as imported
    return page(request, "customer.html", principal, status_code=status_code, view=view, timeline=timeline,
                context=context, merges=merges, recommended=recommended, reference=reference,
                money_currency=money_currency, preferences=contact_preferences(engine, found),
                **{**blank_forms(), "details": details, **forms})  # fmt: skip


DONE = {
    "contact": "Contact logged: it is in the timeline below.",
    "case": "Case opened: it is in the open cases above.",
    "consent": "Consent recorded: campaigns check it before every send.",
    "details": "Details saved, as the customer's source record (the audit log names you).",
    "preference": "Contact preference saved: campaigns and the next-best offer respect it from now on.",
}
CONSENT_PURPOSES = ("marketing", "service", "research")


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
    refusal: PatronError | None = None
    try:
        authorize(principal, "write_events")
        if kind not in KINDS:
            errors["kind"] = f"choose one of {', '.join(KINDS)}"
        if not body.strip() and kind == "note":
            errors["body"] = "a note needs its text"
        if not errors:
            event = EventIn(customer=customer_id, idempotency_key=f"web:{key}", source="web", occurred_at=utcnow(),
                            channel=KINDS[kind], direction=direction, type=kind, outcome=outcome.strip() or None,
                            body=body.strip() or None, details={"logged_by": principal.username})  # fmt: skip
            result = ingest_and_follow_up(engine, [event], resolve=customer_resolver(engine, principal))
            if result.result.rejected:
                refusal = _rejection(result.result.rejected[0])
    except ValidationError as invalid:
        errors.update({str(problem["loc"][-1]): problem["msg"] for problem in invalid.errors()})
    except PatronError as error:
        refusal = error
    return _answer(request, principal, customer_id, form="contact", typed=typed, errors=errors, refusal=refusal)


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
    # every field's problem at once (open_case would stop at the first)
    errors = _unchosen(kind=(kind, CASE_KINDS), priority=(priority, PRIORITIES))
    if not subject.strip():
        errors["subject"] = "a case needs a subject: what is it about?"
    refusal: PatronError | None = None
    try:
        authorize(principal, "manage_cases")
        found = visible_customer(engine, principal, customer_id)
        if not errors and case_with_key(engine, "web", key) is None:  # sent twice (a reload): opened once
            open_case(engine, found, subject=subject.strip(), kind=kind, description=description.strip() or None,
                      priority=priority, channel="phone", source="web", case_key=key)  # fmt: skip
    except PatronError as error:
        refusal = error
    return _answer(request, principal, customer_id, form="case", typed=typed, errors=errors, refusal=refusal)


@router.post("/customers/{customer_id}/consents", response_model=None)
def new_consent(
    request: Request,
    principal: Viewer,
    customer_id: Reference,
    *,
    channel: Annotated[str, Form(max_length=16)],
    purpose: Annotated[str, Form(max_length=16)] = "marketing",
    status: Annotated[str, Form(max_length=16)] = "granted",
    wording: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A consent granted or withdrawn as the customer says it; the same as the one in force is not recorded twice
    (a double click, a reload)."""
    typed = {"channel": channel, "purpose": purpose, "status": status, "wording": wording}
    engine = engine_of(request)
    errors = _unchosen(
        channel=(channel, CONSENT_CHANNELS), purpose=(purpose, CONSENT_PURPOSES), status=(status, CONSENT_STATES)
    )
    refusal: PatronError | None = None
    try:
        authorize(principal, "record_consent")
        found = visible_customer(engine, principal, customer_id)
        if not errors and not _already_in_force(engine, found, typed):
            record_consent(engine, found, channel=channel, purpose=purpose, status=status,
                           source=f"web:{principal.username}", wording_version=wording.strip() or None)  # fmt: skip
    except PatronError as error:
        refusal = error
    return _answer(request, principal, customer_id, form="consent", typed=typed, errors=errors, refusal=refusal)


class DetailsForm(BaseModel):
    """The editable C fields as typed (``cif.identity.edits.EDITABLE``); the importer's checks judge them."""

    model_config = ConfigDict(extra="allow")  # the customer's attributes, each as ``attributes.KEY``
    first_name: FormText = ""
    last_name: FormText = ""
    display_name: FormText = ""
    email: FormText = ""
    phone: FormText = ""
    birth_date: FormText = ""
    street: FormText = ""
    postal_code: FormText = ""
    city: FormText = ""
    region: FormText = ""
    country: FormText = ""
    gender: FormText = ""


@router.post("/customers/{customer_id}/details", response_model=None)
def edit_details(
    request: Request, principal: Viewer, customer_id: Reference, details: Annotated[DetailsForm, Form()]
) -> Response:
    """The C fields changed by hand: checked and written as the customer's source would send them."""
    typed = {name: getattr(details, name) for name in EDITABLE}
    extra = details.model_extra or {}
    attributes = {name.removeprefix("attributes."): str(value)[:200] for name, value in extra.items()
                  if name.startswith("attributes.")}  # fmt: skip
    typed.update({f"attributes.{key}": value for key, value in attributes.items()})
    engine = engine_of(request)
    refusal: PatronError | None = None
    try:
        authorize(principal, "edit_customers")
        found = visible_customer(engine, principal, customer_id)
        fields = {name: typed[name] for name in EDITABLE}
        edit_customer(engine, found, fields, actor=principal.username, interface="web", attributes=attributes)
    except PatronError as error:
        refusal = error
    return _answer(request, principal, customer_id, form="details", typed=typed, errors={}, refusal=refusal)


@router.post("/customers/{customer_id}/preferences", response_model=None)
def new_preference(
    request: Request,
    principal: Viewer,
    customer_id: Reference,
    *,
    channel: Annotated[str, Form(max_length=16)],
    preferred: Annotated[str, Form(max_length=8)] = "",
    max_per_month: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """The channel the customer prefers, and at most how many contacts a month on it (empty: no cap of theirs)."""
    typed = {"channel": channel, "preferred": preferred, "max_per_month": max_per_month}
    engine = engine_of(request)
    errors = _unchosen(channel=(channel, CONSENT_CHANNELS))
    cap = None
    if max_per_month.strip():
        try:
            cap = int(max_per_month)
        except ValueError:
            errors["max_per_month"] = "a whole number of contacts a month, or leave it empty"
    refusal: PatronError | None = None
    try:
        authorize(principal, "record_consent")
        found = visible_customer(engine, principal, customer_id)
        if not errors:
            set_contact_preference(engine, found, channel=channel, preferred=bool(preferred), max_per_month=cap,
                                   actor=principal.username, interface="web")  # fmt: skip
    except PatronError as error:
        refusal = error
    return _answer(request, principal, customer_id, form="preference", typed=typed, errors=errors, refusal=refusal)


def _already_in_force(engine: Engine, customer_id: int, typed: dict[str, str]) -> bool:
    newest = [
        record for record in consent_ledger(engine, customer_id)["records"]
        if (record["channel"], record["purpose"]) == (typed["channel"], typed["purpose"])
    ]  # fmt: skip
    return bool(newest) and (newest[-1]["status"], newest[-1]["wording_version"] or "") == (
        typed["status"], typed["wording"].strip())  # fmt: skip


FIRST_FIELD = {
    "contact": "body",
    "case": "subject",
    "consent": "channel",
    "details": "display_name",
    "preference": "channel",
}  # where a refusal without a field is shown


def _answer(
    request: Request,
    principal: Principal,
    reference: str,
    *,
    form: str,
    typed: dict[str, str],
    errors: dict[str, str],
    refusal: PatronError | None,
) -> Response:
    """What a form's post answers: the page again (422) with each problem beside its field and what was typed; the
    page's own "not found" for a customer nobody may see; a refusal page; or, done, back to the page (303)."""
    if refusal is not None and refusal.code == "not_found":
        return customer_page(request, principal, reference)  # as for a GET
    if refusal is not None and refusal.code not in ("invalid_input", "conflict"):
        return page(request, "message.html", principal, status_code=STATUS.get(refusal.code, 400), title="Not done",
                    message=refusal.message)  # fmt: skip
    if refusal is not None:
        errors = {**errors, refusal.field or FIRST_FIELD[form]: refusal.message}
    if errors:
        return customer_page(request, principal, reference, status_code=422, **{form: typed},
                             errors={f"{form}.{name}": message for name, message in errors.items()})  # fmt: skip
    return _done(reference, form)


def _rejection(rejected: dict[str, Any]) -> PatronError:
    """An event the ingest refused, as the error its reason is: unknown (or unseen) customer, or bad input."""
    if rejected.get("field") == "customer":
        return NotFoundError(rejected["detail"], field="customer")
    return InvalidInputError(rejected["detail"], field=rejected.get("field"))


def _unchosen(**fields: tuple[str, tuple[str, ...]]) -> dict[str, str]:
    """Each field whose value (typed, or sent by a changed form) is not one of its choices, with the choices."""
    return {
        name: f"choose {', '.join(choices[:-1])} or {choices[-1]}"
        for name, (value, choices) in fields.items()
        if value not in choices
    }
