"""Accounts over their life: a user disabled or enabled, a password changed, a lockout lifted, tokens listed and
revoked. Whatever ends a user's access ends every session and token they hold at once (in this process; other
server processes within ``service.TOKEN_MEMORY_SECONDS``), and is audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from patron.auth.service import TOKENS, USERS, forget_tokens, hash_password, token_digest
from patron.cif.columns import utcnow
from patron.cif.ledger import audit_row, audited
from patron.errors import InvalidInputError, NotFoundError


@dataclass(frozen=True)
class UserInfo:
    username: str
    display_name: str
    role: str
    active: bool
    locked: bool
    failed_sign_ins: int
    live_tokens: int  # sessions and API tokens neither revoked nor expired


def list_users(engine: Engine) -> list[UserInfo]:
    now = utcnow()
    live = (
        select(func.count()).where(TOKENS.c.user_id == USERS.c.id, TOKENS.c.revoked_at.is_(None),
                                   (TOKENS.c.expires_at.is_(None)) | (TOKENS.c.expires_at > now))
        .scalar_subquery()
    )  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(
            select(USERS.c.username, USERS.c.display_name, USERS.c.role, USERS.c.active,
                   USERS.c.locked_at.is_not(None), USERS.c.failed_sign_ins, live).order_by(USERS.c.username)
        ).all()  # fmt: skip
    return [UserInfo(str(u), str(d), str(r), bool(a), bool(lk), int(f), int(t)) for u, d, r, a, lk, f, t in rows]


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    kind: str  # api | session
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _user_id(engine: Engine, username: str) -> int:
    with engine.connect() as conn:
        found = conn.scalar(select(USERS.c.id).where(USERS.c.username == username))
    if found is None:
        raise NotFoundError(f"there is no user {username!r}", field="username")
    return int(found)


def _change(engine: Engine, username: str, action: str, actor: str, *, revoke: bool, **values: object) -> int:
    user_id = _user_id(engine, username)
    now = utcnow()
    with engine.begin() as conn:
        if values:
            conn.execute(USERS.update().where(USERS.c.id == user_id).values(**values))
        revoked = 0
        if revoke:
            revoked = conn.execute(
                TOKENS.update().where(TOKENS.c.user_id == user_id, TOKENS.c.revoked_at.is_(None)).values(revoked_at=now)
            ).rowcount
        audited(conn, [audit_row(actor=actor, interface="accounts", action=action, entity="user", entity_id=user_id,
                                 details={"username": username, "tokens_revoked": revoked})])  # fmt: skip
    forget_tokens()
    return int(revoked)


def disable_user(engine: Engine, username: str, *, actor: str = "operator") -> int:
    """The user can no longer sign in; every session and token they hold ends now. Returns the tokens revoked."""
    return _change(engine, username, "user disabled", actor, revoke=True, active=False)


def enable_user(engine: Engine, username: str, *, actor: str = "operator") -> None:
    _change(engine, username, "user enabled", actor, revoke=False, active=True)


def unlock_user(engine: Engine, username: str, *, actor: str = "operator") -> None:
    """Lift a lockout after too many failed sign-ins."""
    _change(engine, username, "lockout lifted", actor, revoke=False, locked_at=None, failed_sign_ins=0,
            last_failed_at=None)  # fmt: skip


def change_password(engine: Engine, username: str, password: str, *, actor: str = "operator") -> int:
    """A new password; every session and token of the user ends (whoever knew the old one is signed out)."""
    if len(password) < 8:
        raise InvalidInputError("a password needs at least 8 characters", field="password")
    return _change(engine, username, "password changed", actor, revoke=True, password_hash=hash_password(password))


def list_tokens(engine: Engine, username: str) -> list[TokenInfo]:
    user_id = _user_id(engine, username)
    with engine.connect() as conn:
        rows = conn.execute(
            select(TOKENS.c.id, TOKENS.c.name, TOKENS.c.kind, TOKENS.c.created_at, TOKENS.c.expires_at,
                   TOKENS.c.last_used_at, TOKENS.c.revoked_at)
            .where(TOKENS.c.user_id == user_id).order_by(TOKENS.c.id.desc())
        ).all()  # fmt: skip
    return [TokenInfo(*row) for row in rows]


def revoke_token(engine: Engine, token_id: int, *, actor: str = "operator") -> None:
    with engine.begin() as conn:
        user_id = conn.scalar(select(TOKENS.c.user_id).where(TOKENS.c.id == token_id))
        if user_id is None:
            raise NotFoundError(f"there is no token {token_id}", field="token")
        conn.execute(TOKENS.update().where(TOKENS.c.id == token_id).values(revoked_at=utcnow()))
        audited(conn, [audit_row(actor=actor, interface="accounts", action="token revoked", entity="user",
                                 entity_id=int(user_id), details={"token": token_id})])  # fmt: skip
    forget_tokens()


def end_session(engine: Engine, secret: str) -> None:
    """Sign out: the session's token is revoked, so the same value no longer works as a cookie or a bearer token."""
    with engine.begin() as conn:
        conn.execute(
            TOKENS.update().where(TOKENS.c.token_hash == token_digest(secret), TOKENS.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )  # fmt: skip
    forget_tokens()
