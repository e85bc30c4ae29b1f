"""Sign-in for API clients: a token for a username and password, and who the token belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from patron.api.schemas import Me, TokenOut
from patron.auth.accounts import end_session
from patron.auth.service import authenticate, issue_token
from patron.http.common import Caller, ShortText, Store, bearer_or_cookie

router = APIRouter(prefix="/api")


class Credentials(BaseModel):
    username: ShortText
    password: Annotated[str, Field(min_length=1, max_length=200)]


@router.post("/auth/token", tags=["auth"])
def sign_in(body: Credentials, store: Store, request: Request) -> TokenOut:
    """Exchange a username and password for an API token (send it as ``Authorization: Bearer …``); it expires after
    ``PATRON_TOKEN_DAYS``. Repeated failures are throttled (429) and, in the end, lock the account."""
    principal = authenticate(
        store, body.username, body.password, address=request.client.host if request.client else None
    )
    return TokenOut(token=issue_token(store, principal), role=principal.role)


class SignedOut(BaseModel):
    username: str
    ended: bool


@router.post("/auth/logout", tags=["auth"])
def sign_out(request: Request, store: Store, principal: Caller) -> SignedOut:
    """End the token (or session) this request was made with: it stops working at once."""
    end_session(store, bearer_or_cookie(request))
    return SignedOut(username=principal.username, ended=True)


@router.get("/me", tags=["auth"])
def me(principal: Caller) -> Me:
    return Me(username=principal.username, role=principal.role)
