"""A case on the service desk: its details and what an agent does with it — note a contact or an internal note,
resolve it (on the first contact, that counts towards the day's first-contact resolution), reopen it — through
the same domain functions as the API, with the audit trail of the case's interactions.

A form that cannot be taken comes back (422) with the reason beside its field and what was typed kept, nothing
written; a case about a customer outside a manager's portfolio is not found, like a case that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from patron.auth.portfolio import check_case_visible
from patron.auth.service import Principal, authorize
from patron.cif.columns import utcnow
from patron.cif.view import with_keys
from patron.errors import PatronError
from patron.http.common import STATUS, Viewer, engine_of
from patron.service.cases import (
    CLOSED,
    active_agents,
    agent_for,
    assign_case,
    due_state,
    escalate_case,
    get_case,
    reopen_case,
    resolve_case,
    update_case,
)
from patron.service.knowledge import suggest_for_case
from patron.web.render import page

router = APIRouter(include_in_schema=False)
Action = Callable[[Engine, str], None]  # what a form does, given the store and who does it
CaseId = Annotated[int, Path(ge=1, le=2**53)]
Text = Annotated[str, Form(max_length=5000)]
DONE = {
    "note": "Noted: the note is in the customer's timeline.",
    "resolve": "Resolved. On the first contact it counts towards today's first-contact resolution.",
    "reopen": "Reopened: the case is back in the queue.",
    "assign": "Assigned: the case is in its owner's queue (Service desk, mine).",
    "escalate": "Escalated: urgent, first in the queue, its service level shortened, owned by a manager.",
}


def case_page(
    request: Request, principal: Principal, case_id: int, *, status_code: int = 200, **context: Any
) -> Response:
    engine = engine_of(request)
    try:
        authorize(principal, "manage_cases")
        check_case_visible(engine, principal, case_id)
        case = with_keys(engine, [get_case(engine, case_id)])[0]
    except PatronError as error:
        status = STATUS.get(error.code, 400)
        title = "Case not found" if status == 404 else "Not allowed"
        return page(request, "message.html", principal, status_code=status, title=title, message=error.message)
    values = {"typed": {}, "errors": {}, "notice": None, **context}
    return page(request, "case.html", principal, status_code=status_code, case=case, closed=case["status"] in CLOSED,
                due=due_state(case, utcnow()), articles=suggest_for_case(engine, case_id), agents=active_agents(engine),
                **values)  # fmt: skip


@router.get("/service/cases/{case_id}", response_model=None)
def case(
    request: Request, principal: Viewer, case_id: CaseId, done: Annotated[str | None, Query(max_length=16)] = None
) -> Response:
    return case_page(request, principal, case_id, notice=DONE.get(done or ""))


@router.post("/service/cases/{case_id}/notes", response_model=None)
def note(
    request: Request, principal: Viewer, case_id: CaseId, text: Text = "", contact: Annotated[str, Form()] = ""
) -> Response:
    """A note; with ``contact`` ticked, another contact with the customer (which the first-contact figure counts)."""
    return _act(request, principal, case_id, form="note", text=text, action=lambda engine, actor: update_case(
        engine, case_id, note=text.strip(), customer_contact=bool(contact), actor=actor))  # fmt: skip


@router.post("/service/cases/{case_id}/resolve", response_model=None)
def resolve(request: Request, principal: Viewer, case_id: CaseId, text: Text = "") -> Response:
    return _act(request, principal, case_id, form="resolve", text=text,
                action=lambda engine, actor: resolve_case(engine, case_id, text.strip(), actor=actor))  # fmt: skip


@router.post("/service/cases/{case_id}/reopen", response_model=None)
def reopen(request: Request, principal: Viewer, case_id: CaseId, text: Text = "") -> Response:
    return _act(request, principal, case_id, form="reopen", text=text,
                action=lambda engine, actor: reopen_case(engine, case_id, text.strip(), actor=actor))  # fmt: skip


@router.post("/service/cases/{case_id}/assign", response_model=None)
def assign(
    request: Request, principal: Viewer, case_id: CaseId, agent: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    """Give the case to someone on the desk; ``me`` takes it (the first time, the user joins the desk)."""

    def act(engine: Engine, actor: str) -> None:
        owner = (
            agent_for(engine, actor, role="manager" if principal.role in ("admin", "manager") else "agent")
            if agent == "me"
            else agent
        )
        assign_case(engine, case_id, owner, actor=actor)

    return _act(request, principal, case_id, form="assign", text=agent, action=act)


@router.post("/service/cases/{case_id}/escalate", response_model=None)
def escalate(request: Request, principal: Viewer, case_id: CaseId, text: Text = "") -> Response:
    """Escalate by hand, saying why: urgent, first in the queue, owned by a manager."""

    def act(engine: Engine, actor: str) -> None:
        escalate_case(engine, case_id, text.strip(), actor=actor)

    return _act(request, principal, case_id, form="escalate", text=text, action=act)


NEEDS_TEXT = {"note": "a note needs its text", "resolve": "say how it was resolved", "reopen": "say why it is reopened",
              "assign": "choose whom to give it to", "escalate": "say why it is escalated"}  # fmt: skip


def _act(request: Request, principal: Principal, case_id: int, *, form: str, text: str, action: Action) -> Response:
    """Check who may, that the case is theirs to see, and that the text is there; then act, or show why not."""
    engine = engine_of(request)
    try:
        authorize(principal, "manage_cases")
        check_case_visible(engine, principal, case_id)
    except PatronError:
        return case_page(request, principal, case_id)  # the page's own answer (refused, or no such case), as a GET
    if not text.strip():
        return case_page(request, principal, case_id, status_code=422, typed={form: text},
                         errors={form: NEEDS_TEXT[form]})  # fmt: skip
    try:
        action(engine, principal.username)
    except PatronError as error:  # the case's state, or a choice (an agent who is not on the desk), forbids it
        status = 422 if error.code == "not_found" else STATUS.get(error.code, 400)
        return case_page(request, principal, case_id, status_code=status, typed={form: text},
                         errors={form: error.message})  # fmt: skip
    return RedirectResponse(f"/service/cases/{case_id}?done={form}", status_code=303)
