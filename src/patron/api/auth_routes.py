"""Sign-in for API clients: a token for a username and password, and who the token belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from patron.api.schemas import Me, TokenOut
from patron.auth.service import authenticate, issue_token
from patron.http.common import Caller, ShortText, Store

router = APIRouter(prefix="/api")


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
