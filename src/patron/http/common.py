"""What the API routes and the pages share: the store, the caller, permission checks, error replies, and input
types that refuse junk early.

A route says who may call it in its signature: ``principal: ManageCases`` checks the permission before
the handler runs (and before the body is looked at), so a refused call writes nothing. Pages take ``Viewer``: a
visitor who is not signed in is sent to the sign-in page; fragments take ``FragmentViewer``, which answers 401 with
``HX-Redirect``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import StringConstraints
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from patron.auth.service import Principal, UnauthorizedError, authorize, principal_for_token, remembered_principal
from patron.errors import PatronError
from patron.http.browser import check_csrf
from patron.settings import get_settings

SESSION_COOKIE = "patron_session"
T = TypeVar("T")
STATUS = {
    "not_found": 404, "conflict": 409, "unauthorized": 401, "forbidden": 403, "throttled": 429, "fit_failed": 422,
    "invalid_input": 422, "invalid_segment_rule": 422, "invalid_mapping": 422, "invalid_source": 422,
}  # fmt: skip

# Text that the stores can hold and the pages and messages can show: bounded; a one-line value (a name, a subject)
# has no line break or control character, free text no NUL (PostgreSQL refuses it) nor other control characters.
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
LongText = Annotated[str, StringConstraints(max_length=10_000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
Identifier = Annotated[int, "an id"]
CustomerId = Annotated[int, Path(ge=1, le=2**53)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


@dataclass(frozen=True)
class Paging:
    """Which part of a long list to answer: ``limit`` items from ``offset``."""

    limit: int
    offset: int

    @property
    def window(self) -> dict[str, int]:
        return {"limit": self.limit, "offset": self.offset}


def _paging(limit: Limit = 50, offset: Offset = 0) -> Paging:
    return Paging(limit, offset)


Paged = Annotated[Paging, Depends(_paging)]


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def bearer_or_cookie(request: Request) -> str:
    """The secret a request is signed in with: its bearer token, or else its session cookie."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")


def caller(request: Request) -> Principal:
    """The signed-in user: a bearer token (API clients) or the session cookie (pages)."""
    secret = bearer_or_cookie(request)
    if not secret:
        raise UnauthorizedError("sign in first: send 'Authorization: Bearer <token>' (POST /api/auth/token)")
    return principal_for_token(engine_of(request), secret)


async def on_store(store: Engine, work: Callable[[], T]) -> T:
    """Run a short store read where it costs least (bench/bench_api.py measured both ways).

    On SQLite a lookup is CPU work of a millisecond: done in place on the event loop it skips the hop to a worker
    thread. On PostgreSQL most of it is waiting for replies (each round trip about 0.5 ms here), and waiting on the
    event loop would stall every other request, so a worker thread waits instead.
    """
    if store.dialect.name == "sqlite":
        return work()
    return await to_thread.run_sync(work, limiter=_lookup_limiter())


_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = weakref.WeakKeyDictionary()


def _lookup_limiter() -> CapacityLimiter:
    # No more lookups at once than the pool keeps connections: beyond that each one opened (and closed) a fresh
    # PostgreSQL connection, a new server process each time, and throughput fell to under 200 lookups/s.
    loop = asyncio.get_running_loop()
    if loop not in _LIMITERS:
        _LIMITERS[loop] = CapacityLimiter(get_settings().pool_size)
    return _LIMITERS[loop]


async def _store(request: Request) -> Engine:
    return engine_of(request)


async def _caller(request: Request) -> Principal:
    secret = bearer_or_cookie(request)
    if secret and not request.headers.get("authorization"):  # signed in by the cookie: a browser, maybe led astray
        await check_csrf(request, secret)
    remembered = remembered_principal(engine_of(request), secret) if secret else None
    if remembered is not None:
        return remembered  # checked by this process a moment ago: no store access, no thread
    return await on_store(engine_of(request), lambda: caller(request))


Store = Annotated[Engine, Depends(_store)]
Caller = Annotated[Principal, Depends(_caller)]


def permission(action: str) -> Callable[[Principal], Any]:
    """A dependency: the caller, who must hold the permission ``action`` (see ``auth.service.PERMISSIONS``)."""

    async def check(principal: Caller) -> Principal:
        authorize(principal, action)
        return principal

    check.__name__ = f"may_{action}"
    return check


# The caller holding one permission: ``principal: ManageCases`` in a route's signature is its whole role check.
ReadCustomers = Annotated[Principal, Depends(permission("read_customers"))]
ReadPii = Annotated[Principal, Depends(permission("read_pii"))]
Export = Annotated[Principal, Depends(permission("export"))]
WriteEvents = Annotated[Principal, Depends(permission("write_events"))]
ManageSegments = Annotated[Principal, Depends(permission("manage_segments"))]
ManageCases = Annotated[Principal, Depends(permission("manage_cases"))]
RunModels = Annotated[Principal, Depends(permission("run_models"))]
ManageUsers = Annotated[Principal, Depends(permission("manage_users"))]
ReadStrategy = Annotated[Principal, Depends(permission("read_strategy"))]
ImportData = Annotated[Principal, Depends(permission("import_data"))]
RecordConsent = Annotated[Principal, Depends(permission("record_consent"))]
ManageOffers = Annotated[Principal, Depends(permission("manage_offers"))]
ResolveIdentities = Annotated[Principal, Depends(permission("resolve_identities"))]


class SignInRequired(Exception):
    """A page or fragment was asked for without a valid session."""

    def __init__(self, *, fragment: bool) -> None:
        super().__init__("sign in first")
        self.fragment = fragment


def _viewer(*, fragment: bool) -> Callable[[Request], Any]:
    async def signed_in(request: Request) -> Principal:
        try:
            return await _caller(request)
        except UnauthorizedError as error:
            raise SignInRequired(fragment=fragment) from error

    return signed_in


Viewer = Annotated[Principal, Depends(_viewer(fragment=False))]  # a page: the signed-out visitor is sent to sign in
FragmentViewer = Annotated[Principal, Depends(_viewer(fragment=True))]  # an HTMX fragment of a page


async def sign_in_required(_request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    if error.fragment:
        # HTMX follows this header with a full-page visit, so an expired session ends on the sign-in page.
        return HTMLResponse("", status_code=401, headers={"HX-Redirect": "/login"})
    return RedirectResponse("/login", status_code=303)


def problem(status: int, detail: str, code: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code, "field": field}, status_code=status)


async def patron_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PatronError)
    return problem(STATUS.get(error.code, 400), error.message, error.code, error.field)


async def validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first: dict[str, Any] = error.errors()[0] if error.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    return problem(422, str(first.get("msg", "invalid request")), "invalid_request", ".".join(location) or None)


async def storage_error(_request: Request, error: Exception) -> JSONResponse:
    """A value the database cannot take (out of range, wrong encoding) is the client's input, not a crash."""
    assert isinstance(error, DataError | IntegrityError | StatementError)
    return problem(422, "a value in the request cannot be stored (out of range or malformed)", "invalid_value")
