"""The tables of identity resolution: the trained model, blocking keys, merges with their undo ledger, reviews."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, utcnow
from patron.cif.schema import Base


class MatchModel(Base):
    """A trained Fellegi-Sunter model (Splink's JSON), its thresholds and how it was trained; the newest is used."""

    __tablename__ = "match_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trained_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    records: Mapped[int] = mapped_column(Integer)
    match_threshold: Mapped[float] = mapped_column(Float)  # P(match) at or above: the records are one person
    review_threshold: Mapped[float] = mapped_column(Float)  # P(match) from here up to match_threshold: a person looks
    splink_model: Mapped[dict[str, Any]] = mapped_column(JSON)
    notes: Mapped[dict[str, Any]] = mapped_column(JSON)  # training steps, labelled pairs used, parameters


class MatchKey(Base):
    """A blocking key of a customer (e.g. full name): how arriving records find their candidates.

    Stored as a 64-bit digest (``sealed.keyed_digest``), keyed by the encryption key when one is set: the lookup is
    an integer index probe, and the names in a key are never written in clear. Derived data, rebuilt by training:
    on SQLite the rows are clustered by customer (WITHOUT ROWID) and there is no foreign key to check per row, so
    a training run appends millions of keys and builds the one index on the key once (``records.rebuild_keys``);
    the customer's keys are dropped where the customer is merged or erased.
    """

    __tablename__ = "match_keys"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy's table options

    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class IdentityMerge(Base):
    """One record merged into another: who survived, why (the match), and whether it was split again."""

    __tablename__ = "identity_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    match_probability: Mapped[float | None] = mapped_column(Float)
    match_weight: Mapped[float | None] = mapped_column(Float)
    agreed: Mapped[list[str]] = mapped_column(JSON)  # the fields that agreed exactly or nearly
    rule: Mapped[str] = mapped_column(Text)  # how the survivor was chosen
    how: Mapped[str] = mapped_column(String(16))  # batch, realtime, review, manual
    actor: Mapped[str] = mapped_column(String(100))
    merged_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    split_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class MergeMove(Base):
    """A row whose customer column a merge changed from the merged record to the survivor (what a split reverts)."""

    __tablename__ = "identity_merge_moves"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merge_id: Mapped[int] = mapped_column(ForeignKey("identity_merges.id", ondelete="CASCADE"), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    column_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[dict[str, Any]] = mapped_column(JSON)  # the row's key columns other than the customer column


class MergeChange(Base):
    """A survivor's row a merge changed in place or added (profile gaps filled, a consent withdrawn): its before."""

    __tablename__ = "identity_merge_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merge_id: Mapped[int] = mapped_column(ForeignKey("identity_merges.id", ondelete="CASCADE"), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[dict[str, Any]] = mapped_column(JSON)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # None: the merge added the row


class MatchReview(Base):
    """A pair in the clerical-review band, and the decision on it (which can train the model)."""

    __tablename__ = "match_reviews"
    __table_args__ = (UniqueConstraint("left_id", "right_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    left_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    right_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    match_probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    levels: Mapped[dict[str, Any]] = mapped_column(JSON)  # field -> comparison level label
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, accepted, rejected
    found_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
