"""Uploads are checked before they are read: a multipart POST to an upload route must come from a signed-in user who
may import (else it is answered at once, its body never read), and its body may not grow past the limit while it
streams in (a declared length over it is refused before the first byte; a body that keeps coming is cut off). The
framework would otherwise spool the whole body to disk before any route or permission ran."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron.auth.service import Principal
from patron.errors import PatronError
from patron.http.common import bearer_or_cookie

UPLOAD_PATHS = ("/imports", "/imports/prepare")


class UploadTooLarge(HTTPException):
    """Raised while the body streams in; an HTTP error, so the framework answers 413 with the reason."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the file is larger than {max_bytes // 2**20} MB: import it with `patron import`")


class UploadGuard:
    def __init__(self, app: ASGIApp, *, max_bytes: int, who: Callable[[str], Principal]) -> None:
        self.app, self.max_bytes, self.who = app, max_bytes, who

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)

    async def _refusal(self, request: Request) -> Response | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return self._too_large()
        secret = bearer_or_cookie(request)
        if not secret:
            return RedirectResponse("/login", status_code=303)
        try:
            principal = await run_in_threadpool(self.who, secret)
        except PatronError:
            return RedirectResponse("/login", status_code=303)
        if not principal.can("import_data"):
            return PlainTextResponse("your role may not import data", status_code=403)
        return None

    def _too_large(self) -> Response:
        return PlainTextResponse(UploadTooLarge(self.max_bytes).detail, 413)
