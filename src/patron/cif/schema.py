"""The customer information file (CIF): one virtual record per customer, kept in relational tables.

C (who they are) lives in ``customers``, ``customer_profiles``, ``customer_attributes``, ``identities`` and
``accounts``; R (how they respond) in ``interactions``, ``campaign_members``, ``campaign_responses``,
``consents`` and ``contact_preferences``; P (what they bought) in ``orders``, ``order_lines`` and ``payments``.

Money is stored as integer minor units (cents) next to an ISO 4217 currency code, never as a float.
Columns holding personal data carry ``info={"pii": True}`` so the privacy layer can find them.
Every table a source writes to has a natural key, so re-running an import never duplicates.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    case,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, orm_insert_sentinel

from patron.cif.columns import PII, BigId, Money, table_of, utcnow
from patron.cif.sealed import Blind, Sealed

__all__ = ["PII", "Base", "BigId", "Money", "table_of", "utcnow"]


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Customer(Base):
    """A customer or a prospect: the anchor of one virtual CIF record."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("kind IN ('customer', 'prospect')", name="kind"),
        CheckConstraint("status IN ('active', 'lapsed', 'churned', 'anonymised', 'merged')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="customer")
    status: Mapped[str] = mapped_column(String(16), default="active")
    display_name: Mapped[str | None] = mapped_column(Blind, info=PII)
    first_name: Mapped[str | None] = mapped_column(Blind, info=PII)
    last_name: Mapped[str | None] = mapped_column(Blind, info=PII)
    acquired_on: Mapped[dt.date | None] = mapped_column(Date)
    acquisition_channel: Mapped[str | None] = mapped_column(String(64))
    acquisition_cost_minor: Mapped[int | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(64))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    # Lets bulk INSERT ... RETURNING batch rows (and keep their order) on SQLite as well as PostgreSQL.
    _insert_sentinel: Mapped[int | None] = orm_insert_sentinel()
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Identity(Base):
    """One way to recognise a customer: e-mail, phone or an id in a source system (one customer, many)."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "system", "value"),
        CheckConstraint("kind IN ('email', 'phone', 'external')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # '' for e-mail and phone (global), the source system's name for external ids.
    system: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[str] = mapped_column(Blind, info=PII)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CustomerProfile(Base):
    """Typed demographic and firmographic fields (C), one row per customer."""

    __tablename__ = "customer_profiles"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    birth_year: Mapped[int | None] = mapped_column(Integer, info=PII)
    birth_date: Mapped[dt.date | None] = mapped_column(Date, info=PII)
    gender: Mapped[str | None] = mapped_column(String(32), info=PII)
    education: Mapped[str | None] = mapped_column(String(64))
    marital_status: Mapped[str | None] = mapped_column(String(32))
    income_minor: Mapped[int | None] = mapped_column(Money)
    children_at_home: Mapped[int | None] = mapped_column(Integer)
    teens_at_home: Mapped[int | None] = mapped_column(Integer)
    street: Mapped[str | None] = mapped_column(Sealed, info=PII)
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(Blind, info=PII)
    country: Mapped[str | None] = mapped_column(String(64))  # ISO 3166 alpha-2, or as given where there is none
    industry: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


PROFILE_FIELDS: dict[str, str] = {
    "birth_year": "integer",
    "birth_date": "date",
    "gender": "text",
    "education": "text",
    "marital_status": "text",
    "income": "money",
    "children_at_home": "integer",
    "teens_at_home": "integer",
    "street": "text",
    "city": "text",
    "region": "text",
    "postal_code": "text",
    "country": "text",
    "industry": "text",
    "employees": "integer",
}


class CustomerAttribute(Base):
    """The extensible part of C: any further field as a typed key-value pair."""

    __tablename__ = "customer_attributes"
    __table_args__ = (CheckConstraint("value_type IN ('text', 'number', 'boolean', 'date')", name="value_type"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_type: Mapped[str] = mapped_column(String(8))
    value_text: Mapped[str | None] = mapped_column(Text)
    value_number: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Account(Base):
    """An institution (a business customer) with several contacts."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("source", "account_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    account_key: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(100))
    manager: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AccountContact(Base):
    """A person (customer row) acting for an account in a role (buyer, payer, decision maker, ...)."""

    __tablename__ = "account_contacts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    label: Mapped[str | None] = mapped_column(String(128))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("source", "sku"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source", "order_key"),
        Index("ix_orders_customer_time", "customer_id", "ordered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    order_key: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    ordered_at: Mapped[dt.datetime] = mapped_column(DateTime)
    channel: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    # "purchase", or "return" (a cancellation or return: its lines carry negative quantity and revenue); summaries
    # net a return's revenue and never count it as a purchase.
    kind: Mapped[str] = mapped_column(String(8), default="purchase", server_default="purchase")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    _insert_sentinel: Mapped[int | None] = orm_insert_sentinel()


def purchases_only(column: Any) -> Any:
    """``column`` on purchase rows, null on returns: counted, min'ed and max'ed, returns are left out (their
    negative revenue nets the money; they are never counted as orders or purchase days)."""
    return case((Order.__table__.c.kind == "purchase", column))


class OrderLine(Base):
    """What was bought, with revenue, cost and margin, so profit per customer is a query."""

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    revenue_minor: Mapped[int] = mapped_column(Money)  # net of the line's discount, never including tax
    cost_minor: Mapped[int | None] = mapped_column(Money)
    margin_minor: Mapped[int | None] = mapped_column(Money)
    discount_minor: Mapped[int | None] = mapped_column(Money)
    tax_minor: Mapped[int | None] = mapped_column(Money)


class Payment(Base):
    """A payment received against an order key; payment feeds often arrive apart from the order feed."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("source", "order_key", "sequence"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    order_key: Mapped[str] = mapped_column(String(128), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    method: Mapped[str | None] = mapped_column(String(32))
    installments: Mapped[int | None] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))


class Interaction(Base):
    """One contact in either direction on any channel. Append-only: the ledger is never rewritten."""

    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("source", "idempotency_key"),
        Index("ix_interactions_customer_time", "customer_id", "occurred_at"),
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Sealed, info=PII)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("source", "campaign_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    campaign_key: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))
    started_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CampaignMember(Base):
    """Who was targeted by a campaign, in which arm, and whether they were held out as control."""

    __tablename__ = "campaign_members"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True, index=True)
    arm: Mapped[str] = mapped_column(String(64), default="treatment")
    is_control: Mapped[bool] = mapped_column(Boolean, default=False)


class CampaignResponse(Base):
    """A measured response (opened, visited, converted, accepted) with its value, per customer."""

    __tablename__ = "campaign_responses"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value_minor: Mapped[int | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    responded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Consent(Base):
    """The consent ledger: each grant or withdrawal per channel and purpose, with where it came from."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint("status IN ('granted', 'withdrawn')", name="status"),
        Index("ix_consents_lookup", "customer_id", "channel", "purpose", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    wording_version: Mapped[str | None] = mapped_column(String(32))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ContactPreference(Base):
    """How, and how often, the customer wants to hear from us on a channel."""

    __tablename__ = "contact_preferences"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)
    max_per_month: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ImportRun(Base):
    """One run of the importer over one file: what it read, wrote and rejected, and where the rejects went."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, int] | None] = mapped_column(JSON)
    rejects_path: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """The audit trail: who changed (or read) what, when and through which interface. Append-only."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    interface: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class StoredResult(Base):
    """An analysis as computed for one data stamp (``cif/stamp.py``), stored so that every process reads what one
    computed: the jobs compute the strategy analyses after a score run, and the pages read them."""

    __tablename__ = "stored_results"

    key: Mapped[str] = mapped_column(Text, primary_key=True)  # the analysis and its arguments
    stamp: Mapped[str] = mapped_column(Text)  # the data stamp it was computed for
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # compressed JSON (cif/stored_results.py), never a pickle
