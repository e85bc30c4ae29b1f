"""Saved rule segments and their members; segmentation (clustering) runs and the customers' assignments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, run_key, snapshot_customer_key, utcnow
from patron.cif.schema import Base


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    expression: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    fields: Mapped[list[str]] = mapped_column(JSON)  # what the rule reads: decides which events re-evaluate it
    member_count: Mapped[int | None] = mapped_column(Integer)
    evaluated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SegmentMember(Base):
    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = snapshot_customer_key()
    joined_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SegmentSize(Base):
    """A segment's member count at each evaluation: the trend beside its size on the segments page."""

    __tablename__ = "segment_sizes"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    evaluated_at: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)
    member_count: Mapped[int] = mapped_column(Integer)


class SegmentationRun(Base):
    """One needs-based clustering of the base: method, features, the chosen number of segments and why."""

    __tablename__ = "segmentation_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(32))
    features: Mapped[list[str]] = mapped_column(JSON)
    segments: Mapped[int] = mapped_column(Integer)
    criterion: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. {"name": "bic", "by_k": {...}}
    descriptions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(200))


class SegmentAssignment(Base):
    __tablename__ = "segment_assignments"

    run_id: Mapped[int] = run_key("segmentation_runs")
    customer_id: Mapped[int] = snapshot_customer_key()
    segment: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
