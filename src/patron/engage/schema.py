"""Offers, campaign plans (target rule, templates, control group, arms) and each planned contact's fate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import PII, BigId, run_key, snapshot_customer_key, utcnow
from patron.cif.schema import Base
from patron.cif.sealed import Sealed


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (CheckConstraint("margin_minor >= 0", name="margin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    margin_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str | None] = mapped_column(String(32))
    eligibility: Mapped[str | None] = mapped_column(Text)  # a segment rule
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CampaignPlan(Base):
    __tablename__ = "campaign_plans"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    rule: Mapped[str] = mapped_column(Text)
    subject_template: Mapped[str] = mapped_column(Text)
    body_template: Mapped[str] = mapped_column(Text)
    control_share: Mapped[float] = mapped_column(Float)
    arms: Mapped[list[str]] = mapped_column(JSON)
    suppress_tiers: Mapped[list[str]] = mapped_column(JSON)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"))
    # each customer's own next-best offer instead of one offer for all (the choice and why stored per contact)
    best_offer: Mapped[bool] = mapped_column(default=False, server_default=false())
    # target only customers whose expected incremental margin (uplift × margin − contact cost) is positive
    uplift_model: Mapped[str | None] = mapped_column(String(100))
    contact_cost_minor: Mapped[int | None] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(64), default="marketing")
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | prepared | sending | sent
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CampaignContact(Base):
    """One planned contact: pending, sending, sent, failed, blocked (with the reason) or control (never contacted)."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (Index("ix_campaign_contacts_status", "campaign_id", "status"),)

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    arm: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(Sealed, info=PII)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id", ondelete="SET NULL"))
    offer_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Trigger(Base):
    """When an event of ``on_event`` arrives for a customer matching ``condition``, do ``action`` — once per
    customer and occurrence."""

    __tablename__ = "triggers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    on_event: Mapped[str] = mapped_column(String(32))  # an interaction type, e.g. purchase, complaint, birth
    condition: Mapped[str | None] = mapped_column(Text)  # a segment rule about the customer
    action: Mapped[str] = mapped_column(String(32))  # open_case | emit_event
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TriggerFiring(Base):
    __tablename__ = "trigger_firings"

    trigger_id: Mapped[int] = mapped_column(ForeignKey("triggers.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    occurrence: Mapped[str] = mapped_column(String(160), primary_key=True)  # the event that fired it
    fired_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(200))


class OfferCandidate(Base):
    """An offer a customer was eligible for when offers were last decided: its rank among the customer's (0 is the
    best), P(accept) and expected value.

    ``patron campaigns decide-offers`` (and the jobs after each scoring run) write these for the whole base, so a
    real-time next-best-offer lookup reads them instead of building the customer's features on the spot. A row with
    no offer records that the customer was considered and eligible for none. What is the same for every customer
    (how P(accept) was judged, the margin, when) is kept once per offer in ``offer_decisions``: millions of rows
    stay narrow, and on SQLite the key is the table (no rowid), so a write updates one B-tree.
    """

    __tablename__ = "offer_candidates"
    __table_args__ = ({"sqlite_with_rowid": False},)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    p_accept: Mapped[float | None] = mapped_column(Float)
    expected_value: Mapped[float] = mapped_column(Float)


class OfferDecision(Base):
    """How one offer was judged when offers were last decided: where P(accept) came from (a model, or how often
    the offer was bought when made), the margin it was weighed with, and when."""

    __tablename__ = "offer_decisions"

    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    p_source: Mapped[str] = mapped_column(Text)
    margin_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime)


class RecommenderRun(Base):
    """A recommender trained on the purchases: the candidates' hit-rate@k and NDCG@k on a time split, the one
    chosen, and (in ``recommendations``) its top items for every customer with a history."""

    __tablename__ = "recommender_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    source: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(32))
    split: Mapped[dt.date] = mapped_column(Date)
    k: Mapped[int] = mapped_column(Integer)
    tested: Mapped[int] = mapped_column(Integer)  # customers who bought something new after the split
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)  # {candidate: {"hit_rate": …, "ndcg": …}}
    customers: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)


class Recommendation(Base):
    __tablename__ = "recommendations"

    run_id: Mapped[int] = run_key("recommender_runs")
    customer_id: Mapped[int] = snapshot_customer_key()
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)


class RecommendedProduct(Base):
    """A product a run recommends, with its latest unit price; ``popular_rank`` orders the cold-start list."""

    __tablename__ = "recommended_products"

    run_id: Mapped[int] = run_key("recommender_runs")
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    popular_rank: Mapped[int | None] = mapped_column(Integer)
