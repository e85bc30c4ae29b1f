"""Users (hashed passwords, a role, sign-in failures) and their API and session tokens (stored as hashes only, each
with an expiry, its last use and its revocation)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, utcnow
from patron.cif.schema import Base


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'manager', 'agent', 'analyst')", name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Sign-in throttling: failures since the last success, when the last one was, and a lockout an admin lifts.
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    locked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="api")  # api | session
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the secret
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # logout, password change, disable, revoke


class SignInAddress(Base):
    """Failed sign-ins from one client address since its last success: guessing many users from one place waits
    too (kept in the store, so every server process counts the same)."""

    __tablename__ = "sign_in_addresses"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[dt.datetime] = mapped_column(DateTime)
