"""What a browser is told and asked so a page cannot be turned against its user: security headers on every answer
(a Content-Security-Policy without inline script, no framing, no type sniffing, a referrer policy, HSTS behind
HTTPS) and a CSRF token that every state-changing request signed in by the session cookie must carry.

The CSRF token is derived from the session's own secret (an HMAC), so it needs no storage, changes with every
sign-in and dies with the session. Pages put it in every form (``csrf_token`` field) and in the HTMX header
(``X-CSRF-Token``, set once on ``<body>``). A request with a bearer token needs none: a foreign site cannot make a
browser send one.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from starlette.datastructures import FormData, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron.auth.service import ForbiddenError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def csrf_token(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), b"patron csrf", hashlib.sha256).hexdigest()[:40]


async def check_csrf(request: Request, session_secret: str) -> None:
    """Refuse a state-changing request signed in by the session cookie unless it carries the session's token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        form: FormData = await request.form()  # parsed once: the route's own Form fields reuse it
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if sent is None or not hmac.compare_digest(sent, csrf_token(session_secret)):
        raise ForbiddenError(
            "this request did not come from one of Patron's own pages (missing or wrong CSRF token): reload the page "
            "and try again"
        )


def security_headers(headers: MutableHeaders, *, https: bool) -> None:
    """The headers every answer carries."""
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """ASGI middleware putting ``security_headers`` on every answer (pages, the API, static files, errors); plain
    ASGI rather than Starlette's BaseHTTPMiddleware, which costs every request a task and a body copy."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app, self.https = app, https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.https or scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                security_headers(MutableHeaders(scope=message), https=https)
            await send(message)

        await self.app(scope, receive, with_headers)
