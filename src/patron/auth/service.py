"""Sign-in, tokens and roles. Every interface asks these functions, so the API, the pages and the CLI obey the
same rules.

Roles: **admin** (everything), **manager** (customers of the accounts they manage, with personal data),
**agent** (service: customers and cases, with personal data, no exports), **analyst** (aggregates and
pseudonymised rows: never an e-mail address, phone number or name).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from patron.auth.schema import ApiToken, SignInAddress, User
from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import audit_row, audited
from patron.cif.store import read_once_more
from patron.errors import ConflictError, InvalidInputError, PatronError
from patron.settings import get_settings

USERS = table_of(User)
TOKENS = table_of(ApiToken)
ROLES = ("admin", "manager", "agent", "analyst")

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
    "edit_customers": frozenset({"admin", "manager", "agent"}),  # C fields by hand, as the customer's source
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
            "password_hash": _hasher().hash(password),
        }
        return int(conn.execute(insert(USERS).values(row).returning(USERS.c.id)).scalar_one())


class ThrottledError(PatronError):
    code = "throttled"


def _hasher() -> PasswordHasher:
    settings = get_settings()
    return _hasher_with(
        settings.password_hash_time_cost, settings.password_hash_memory_kib, settings.password_hash_parallelism
    )


@functools.cache
def _hasher_with(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified when the user is unknown, disabled or locked, so every refusal costs one argon2 verification at the
    current cost: how long the answer takes tells nothing about whether the username exists."""
    return hasher.hash(secrets.token_urlsafe(16))


ADDRESSES = table_of(SignInAddress)
ADDRESS_FREE_FACTOR = 3  # an address may fail three times as often as one user before it waits (shared offices)


def _wait_after(failures: int, free: int | None = None) -> float:
    """Seconds to wait after ``failures`` failed sign-ins: none for the first few, then 2, 4, 8 … up to 5 minutes."""
    free = get_settings().sign_in_free_failures if free is None else free
    return 0.0 if failures < free else float(min(2 ** (failures - free + 1), 300))


REFUSED = "wrong username or password (after repeated failures an account stays locked until an admin unlocks it)"


def _counted(engine: Engine, key: str | None) -> tuple[int, dt.datetime] | None:
    """Failures counted under ``key`` (a client address, or ``user:`` and a username nobody has) and the last one."""
    if not key:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(ADDRESSES).where(ADDRESSES.c.address == key[:64])).first()
    return None if row is None else (int(row.failures), row.last_failed_at)


def _unknown_user_key(username: str) -> str:
    return "user:" + username[:59]


def _seconds_left(failures: int, last: dt.datetime | None, now: dt.datetime, free: int | None = None) -> float:
    return 0.0 if last is None else _wait_after(failures, free) - (now - last).total_seconds()


def authenticate(engine: Engine, username: str, password: str, *, address: str | None = None) -> Principal:
    """The user for a username and password, throttled per user and per client address (growing waits, then a
    lockout an admin lifts); every failure is audited.

    A username nobody has is throttled, locked and refused exactly like a real one, in the same time and words:
    neither the answer nor its timing tells whether an account exists or is locked.
    """
    settings = get_settings()
    now = utcnow()
    from_address = _counted(engine, address)
    if from_address is not None:
        free = settings.sign_in_free_failures * ADDRESS_FREE_FACTOR
        if (wait := _seconds_left(*from_address, now, free)) > 0:
            raise ThrottledError(f"too many failed sign-ins from this address: try again in {wait:.0f} s")
    with engine.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.username == username)).first()
    if row is not None:
        failures, last, locked = int(row.failed_sign_ins), row.last_failed_at, row.locked_at is not None
    else:
        failures, last = _counted(engine, _unknown_user_key(username)) or (0, None)
        locked = failures >= settings.sign_in_lockout
    if not locked and (wait := _seconds_left(failures, last, now)) > 0:
        raise ThrottledError(f"too many failed sign-ins for this user: try again in {wait:.0f} s")
    usable = row is not None and row.active and not locked
    try:
        hasher = _hasher()
        hasher.verify(row.password_hash if usable and row is not None else _dummy_hash(hasher), password)
        if not usable:
            raise VerificationError("unknown, disabled or locked user")
    except (VerificationError, InvalidHashError) as error:
        _failed(engine, row, username, address, now, lockout=settings.sign_in_lockout)
        raise UnauthorizedError(REFUSED) from error
    assert row is not None  # usable
    if hasher.check_needs_rehash(row.password_hash):  # hashed at an earlier cost: kept at the current one
        with engine.begin() as conn:
            conn.execute(USERS.update().where(USERS.c.id == row.id).values(password_hash=hasher.hash(password)))
    if row.failed_sign_ins or from_address is not None:  # a success clears the counts (most sign-ins write nothing)
        with engine.begin() as conn:
            conn.execute(USERS.update().where(USERS.c.id == row.id).values(failed_sign_ins=0, last_failed_at=None))
            if address:
                conn.execute(ADDRESSES.delete().where(ADDRESSES.c.address == address[:64]))
    return Principal(row.username, row.role, row.id)


def _count_failure(conn: Connection, key: str, now: dt.datetime) -> None:
    key = key[:64]
    counted = conn.execute(
        ADDRESSES.update()
        .where(ADDRESSES.c.address == key)
        .values(failures=ADDRESSES.c.failures + 1, last_failed_at=now)
    ).rowcount
    if not counted:
        try:
            with conn.begin_nested():
                conn.execute(insert(ADDRESSES).values(address=key, failures=1, last_failed_at=now))
        except IntegrityError:  # a simultaneous failure under the same key counted it first
            pass


def _failed(engine: Engine, row: Any, username: str, address: str | None, now: dt.datetime, *, lockout: int) -> None:
    details: dict[str, Any] = {"username": username[:64], "address": address}
    with engine.begin() as conn:
        if address:
            _count_failure(conn, address, now)
        if row is not None:
            failures = row.failed_sign_ins + 1
            locked = row.locked_at or (now if failures >= lockout else None)
            conn.execute(
                USERS.update().where(USERS.c.id == row.id)
                .values(failed_sign_ins=failures, last_failed_at=now, locked_at=locked)
            )  # fmt: skip
            details |= {"failures": failures, "locked": locked is not None}
        else:
            _count_failure(conn, _unknown_user_key(username), now)
        audited(conn, [audit_row(actor=username[:64], interface="sign-in", action="sign-in failed", entity="user",
                                 entity_id=None if row is None else row.id, details=details)])  # fmt: skip


FIRST_ADMIN_PASSWORD = "patron-demo"


def ensure_first_admin(engine: Engine) -> bool:
    """A fresh store gets one admin (admin / patron-demo) so someone can sign in; returns whether it was made."""
    with engine.connect() as conn:
        if conn.scalar(select(USERS.c.id).limit(1)) is not None:
            return False
    create_user(engine, "admin", FIRST_ADMIN_PASSWORD, "admin", "Administrator")
    return True


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(engine: Engine, principal: Principal, *, name: str = "api", kind: str = "api") -> str:
    """A new secret token for ``principal``; only its hash is stored, so it is shown once."""
    if principal.user_id is None:
        raise InvalidInputError("only a stored user can hold a token")
    secret = secrets.token_urlsafe(32)
    settings = get_settings()
    lifetime = (
        dt.timedelta(hours=settings.session_hours) if kind == "session" else dt.timedelta(days=settings.token_days)
    )
    expires = utcnow() + lifetime
    with engine.begin() as conn:
        conn.execute(
            insert(TOKENS).values(
                user_id=principal.user_id, name=name, kind=kind, token_hash=token_digest(secret), expires_at=expires
            )
        )
    return secret


_TOKEN_OWNER = (
    select(
        USERS.c.id,
        USERS.c.username,
        USERS.c.role,
        TOKENS.c.id.label("token_id"),
        TOKENS.c.kind,
        TOKENS.c.expires_at,
        func.coalesce(TOKENS.c.last_used_at, TOKENS.c.created_at).label("last_used_at"),
    )
    .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
    .where(TOKENS.c.token_hash == bindparam("digest"), USERS.c.active, TOKENS.c.revoked_at.is_(None))
)  # fmt: skip  (built once: every API request runs it)
LAST_USE_PRECISION = dt.timedelta(minutes=1)  # a token's last use is written at most once a minute


# Who holds a token, remembered per process for a few seconds: on PostgreSQL the check was a connection
# checkout and two round trips on every request. Revoking in this process forgets every token at once; another
# server process stops accepting a revoked token within this many seconds (docs/SECURITY.md).
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
        raise UnauthorizedError("the token is unknown, expired or revoked: sign in again")
    return principal


def remembered_principal(engine: Engine, secret: str) -> Principal | None:
    """The token's holder if this process checked it in the last few seconds (no store access), else ``None``."""
    known = _remembered((id(engine), token_digest(secret)))
    return _unexpired(known) if known is not None else None


def principal_for_token(engine: Engine, secret: str) -> Principal:
    key = (id(engine), token_digest(secret))
    known = _remembered(key)
    if known is None:
        row = read_once_more(engine, lambda conn: conn.execute(_TOKEN_OWNER, {"digest": key[1]}).first())
        if row is None:
            raise UnauthorizedError("the token is unknown, expired or revoked: sign in again")
        now = utcnow()
        idle = dt.timedelta(minutes=get_settings().session_idle_minutes)
        if row.kind == "session" and now - row.last_used_at > idle:
            raise UnauthorizedError("the session ended after a while without use: sign in again")
        if now - row.last_used_at > LAST_USE_PRECISION:
            with engine.begin() as conn:
                conn.execute(TOKENS.update().where(TOKENS.c.id == row.token_id).values(last_used_at=now))
        known = (time.monotonic(), Principal(row.username, row.role, row.id), row.expires_at)
        with _KNOWN_LOCK:
            if len(_KNOWN_TOKENS) > 10_000:
                _KNOWN_TOKENS.clear()
            _KNOWN_TOKENS[key] = known
    return _unexpired(known)


def forget_tokens() -> None:
    """Drop this process's memory of checked tokens (after a revocation, so it takes effect here at once)."""
    with _KNOWN_LOCK:
        _KNOWN_TOKENS.clear()
