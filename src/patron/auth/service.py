"""Sign-in, tokens and roles. Every interface asks these functions, so the API, the pages and the CLI obey the
same rules.

Roles: **admin** (everything), **manager** (customers of the accounts they manage, with personal data),
**agent** (service: customers and cases, with personal data, no exports), **analyst** (aggregates and
pseudonymised rows: never an e-mail address, phone number or name).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, bindparam, insert, select

from patron.auth.schema import ApiToken, User
from patron.cif.columns import table_of, utcnow
from patron.cif.store import read_once_more
from patron.errors import ConflictError, InvalidInputError, PatronError

USERS = table_of(User)
TOKENS = table_of(ApiToken)
ROLES = ("admin", "manager", "agent", "analyst")
SESSION_HOURS = 12
_hasher = PasswordHasher()

PERMISSIONS: dict[str, frozenset[str]] = {
    "read_customers": frozenset(ROLES),
    "read_pii": frozenset({"admin", "manager", "agent"}),
    "export": frozenset({"admin", "manager", "analyst"}),
    "write_events": frozenset({"admin", "manager", "agent"}),
    "manage_segments": frozenset({"admin", "manager", "analyst"}),
    "manage_cases": frozenset({"admin", "manager", "agent"}),
    "run_models": frozenset({"admin", "analyst"}),
    "manage_users": frozenset({"admin"}),
    "read_strategy": frozenset({"admin", "manager", "analyst"}),
    "import_data": frozenset({"admin", "manager"}),
    "record_consent": frozenset({"admin", "manager", "agent"}),
    "manage_offers": frozenset({"admin", "manager"}),
    # Merging and splitting records and the review queue show any customer's personal data side by side, across
    # every manager's portfolio: the data steward's work (docs/IDENTITY.md).
    "resolve_identities": frozenset({"admin"}),
}


class UnauthorizedError(PatronError):
    code = "unauthorized"


class ForbiddenError(PatronError):
    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    """Who is asking: the user's name and role (the CLI acts as the local operator, an admin)."""

    username: str
    role: str
    user_id: int | None = None

    def can(self, action: str) -> bool:
        return self.role in PERMISSIONS[action]

    @property
    def sees_pii(self) -> bool:
        return self.can("read_pii")


OPERATOR = Principal("operator", "admin")


def authorize(principal: Principal, action: str) -> None:
    if not principal.can(action):
        raise ForbiddenError(
            f"a{'n' if principal.role[0] in 'aeiou' else ''} {principal.role} may not {action.replace('_', ' ')}"
        )


def create_user(engine: Engine, username: str, password: str, role: str, display_name: str | None = None) -> int:
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}", field="role")
    if not username or len(username) > 64:
        raise InvalidInputError("a username needs 1 to 64 characters", field="username")
    if len(password) < 8:
        raise InvalidInputError("a password needs at least 8 characters", field="password")
    with engine.begin() as conn:
        if conn.scalar(select(USERS.c.id).where(USERS.c.username == username)) is not None:
            raise ConflictError(f"there is already a user {username!r}", field="username")
        row = {
            "username": username,
            "display_name": display_name or username,
            "role": role,
            "password_hash": _hasher.hash(password),
        }
        return int(conn.execute(insert(USERS).values(row).returning(USERS.c.id)).scalar_one())


def authenticate(engine: Engine, username: str, password: str) -> Principal:
    with engine.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.username == username, USERS.c.active)).first()
    try:
        if row is None:
            raise VerificationError("unknown user")
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError) as error:
        raise UnauthorizedError("wrong username or password") from error
    return Principal(row.username, row.role, row.id)


FIRST_ADMIN_PASSWORD = "patron-demo"


def ensure_first_admin(engine: Engine) -> bool:
    """A fresh store gets one admin (admin / patron-demo) so someone can sign in; returns whether it was made."""
    with engine.connect() as conn:
        if conn.scalar(select(USERS.c.id).limit(1)) is not None:
            return False
    create_user(engine, "admin", FIRST_ADMIN_PASSWORD, "admin", "Administrator")
    return True


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(engine: Engine, principal: Principal, *, name: str = "api", kind: str = "api") -> str:
    """A new secret token for ``principal``; only its hash is stored, so it is shown once."""
    if principal.user_id is None:
        raise InvalidInputError("only a stored user can hold a token")
    secret = secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(hours=SESSION_HOURS) if kind == "session" else None
    with engine.begin() as conn:
        conn.execute(
            insert(TOKENS).values(
                user_id=principal.user_id, name=name, kind=kind, token_hash=_digest(secret), expires_at=expires
            )
        )
    return secret


_TOKEN_OWNER = (
    select(USERS.c.id, USERS.c.username, USERS.c.role, TOKENS.c.expires_at)
    .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
    .where(TOKENS.c.token_hash == bindparam("digest"), USERS.c.active)
)  # built once: every API request runs it


# Who holds a token, remembered per process for a few seconds: on PostgreSQL the check was a connection
# checkout and two round trips on every request. The price: disabling a user reaches every server process
# within this many seconds, not at once (docs/WEB.md).
TOKEN_MEMORY_SECONDS = 5.0
_KNOWN_TOKENS: dict[tuple[int, str], tuple[float, Principal, dt.datetime | None]] = {}
_KNOWN_LOCK = threading.Lock()


def _remembered(key: tuple[int, str]) -> tuple[float, Principal, dt.datetime | None] | None:
    with _KNOWN_LOCK:
        known = _KNOWN_TOKENS.get(key)
    return known if known is not None and time.monotonic() - known[0] <= TOKEN_MEMORY_SECONDS else None


def _unexpired(known: tuple[float, Principal, dt.datetime | None]) -> Principal:
    _, principal, expires_at = known
    if expires_at is not None and expires_at < utcnow():
        raise UnauthorizedError("the token is unknown or has expired: sign in again")
    return principal


def remembered_principal(engine: Engine, secret: str) -> Principal | None:
    """The token's holder if this process checked it in the last few seconds (no store access), else ``None``."""
    known = _remembered((id(engine), _digest(secret)))
    return _unexpired(known) if known is not None else None


def principal_for_token(engine: Engine, secret: str) -> Principal:
    key = (id(engine), _digest(secret))
    known = _remembered(key)
    if known is None:
        row = read_once_more(engine, lambda conn: conn.execute(_TOKEN_OWNER, {"digest": key[1]}).first())
        if row is None:
            raise UnauthorizedError("the token is unknown or has expired: sign in again")
        known = (time.monotonic(), Principal(row.username, row.role, row.id), row.expires_at)
        with _KNOWN_LOCK:
            if len(_KNOWN_TOKENS) > 10_000:
                _KNOWN_TOKENS.clear()
            _KNOWN_TOKENS[key] = known
    return _unexpired(known)
