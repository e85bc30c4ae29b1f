"""The identity page: the match model in use, the pairs in the review band side by side with accept / reject,
the latest merges with an undo, and a button to find duplicates now. For the data steward (admin) only: it shows
any customer's personal data next to another's."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from patron.auth.service import Principal
from patron.cif.identity import actions
from patron.cif.identity.resolve import link
from patron.errors import PatronError
from patron.http.common import STATUS, Viewer, engine_of
from patron.web.render import page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
Id = Annotated[int, Path(ge=1, le=2**53)]


def _page(request: Request, principal: Principal, *, status_code: int = 200, notice: str | None = None,
          problem: str | None = None, offset: int = 0) -> Response:  # fmt: skip
    if not principal.can("resolve_identities"):
        refused = "Reviewing and merging records shows any customer's personal data: it is the admin's work."
        return page(request, "identity.html", principal, status_code=403, refused=refused, found=None)
    found = actions.overview(engine_of(request), limit=PAGE_SIZE, offset=offset)
    return page(request, "identity.html", principal, status_code=status_code, refused=None, found=found,
                notice=notice, problem=problem, offset=offset, page_size=PAGE_SIZE)  # fmt: skip


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"/identity?notice={quote(notice)}", status_code=303)


@router.get("/identity", response_model=None)
def identity(
    request: Request, principal: Viewer, notice: Annotated[str | None, Query(max_length=300)] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:  # fmt: skip
    return _page(request, principal, notice=notice, offset=offset)


@router.post("/identity/reviews/{review_id}", response_model=None)
def decide(
    request: Request, principal: Viewer, review_id: Id, decision: Annotated[str, Form(max_length=16)]
) -> Response:
    if not principal.can("resolve_identities"):
        return _page(request, principal)
    try:
        pair = actions.decide_review(engine_of(request), review_id, decision, actor=principal.username,
                                     interface="web")  # fmt: skip
    except PatronError as error:
        return _page(request, principal, status_code=STATUS.get(error.code, 400), problem=error.message)
    verb = "merged into one customer" if pair.status == "accepted" else "kept apart"
    return _done(f"Customers {pair.left_id} and {pair.right_id} {verb}.")


@router.post("/identity/merges/{merge_id}/split", response_model=None)
def split(request: Request, principal: Viewer, merge_id: Id) -> Response:
    if not principal.can("resolve_identities"):
        return _page(request, principal)
    try:
        undone = actions.split_merge(engine_of(request), merge_id=merge_id, actor=principal.username,
                                     interface="web")  # fmt: skip
    except PatronError as error:
        return _page(request, principal, status_code=STATUS.get(error.code, 400), problem=error.message)
    return _done(f"Merge {undone.merge_id} undone: customer {undone.merged_id} is separate again.")


@router.post("/identity/link", response_model=None)
def find_duplicates(request: Request, principal: Viewer) -> Response:
    if not principal.can("resolve_identities"):
        return _page(request, principal)
    try:
        result = link(engine_of(request), actor=principal.username, interface="web")
    except PatronError as error:
        return _page(request, principal, status_code=STATUS.get(error.code, 400), problem=error.message)
    return _done(f"{result.records:,} records compared: {result.merged:,} merged into their person, "
                 f"{result.reviews:,} pairs to review.")  # fmt: skip
