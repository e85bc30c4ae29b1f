"""The users page (admin): who may sign in, with what role; disable, enable or unlock a user, and end one of their
sessions or tokens. The same functions as `patron users …` (auth/accounts.py), each change audited."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from patron.auth.accounts import disable_user, enable_user, list_tokens, list_users, revoke_token, unlock_user
from patron.auth.service import Principal
from patron.errors import PatronError
from patron.http.common import Viewer, engine_of
from patron.web.render import page

router = APIRouter(include_in_schema=False)
ACTIONS = {"disable": disable_user, "enable": enable_user, "unlock": unlock_user}


def _page(request: Request, principal: Principal, *, notice: str | None = None, shown: str | None = None,
          status_code: int = 200) -> Response:  # fmt: skip
    if not principal.can("manage_users"):
        return page(request, "users.html", principal, status_code=403, refused="Managing users is the admin's work.")
    engine = engine_of(request)
    users = list_users(engine)
    tokens = list_tokens(engine, shown) if shown in {user.username for user in users} else None
    return page(request, "users.html", principal, status_code=status_code, refused=None, users=users,
                tokens=tokens, shown=shown, notice=notice)  # fmt: skip


@router.get("/users", response_model=None)
def users(
    request: Request, principal: Viewer, notice: Annotated[str | None, Query(max_length=200)] = None,
    tokens: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:  # fmt: skip
    return _page(request, principal, notice=notice, shown=tokens)


@router.post("/users/{username}", response_model=None)
def change(
    request: Request, principal: Viewer, username: Annotated[str, Path(max_length=64)],
    action: Annotated[str, Form(pattern="^(disable|enable|unlock)$")],
) -> Response:  # fmt: skip
    if not principal.can("manage_users"):
        return _page(request, principal)
    if action == "disable" and username == principal.username:
        return _page(request, principal, notice="You cannot disable yourself.", status_code=409)
    try:
        ACTIONS[action](engine_of(request), username, actor=principal.username)
    except PatronError as error:
        return _page(request, principal, notice=error.message, status_code=404)
    return RedirectResponse(f"/users?notice={quote(f'{username}: {action}d')}", status_code=303)


@router.post("/users/tokens/{token_id}/revoke", response_model=None)
def revoke(
    request: Request, principal: Viewer, token_id: Annotated[int, Path(ge=1, le=2**53)],
    username: Annotated[str, Form(max_length=64)],
) -> Response:  # fmt: skip
    if not principal.can("manage_users"):
        return _page(request, principal)
    try:
        revoke_token(engine_of(request), token_id, actor=principal.username)
    except PatronError as error:
        return _page(request, principal, notice=error.message, status_code=404)
    return RedirectResponse(f"/users?tokens={quote(username)}&notice={quote(f'token {token_id} ended')}", 303)
