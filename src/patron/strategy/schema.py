"""Customer-to-customer links: referrals, shared accounts or addresses, co-participation, declared relations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, utcnow
from patron.cif.schema import Base

LINK_KINDS = ("referral", "shared_account", "shared_address", "co_participation", "declared")


class CustomerLink(Base):
    __tablename__ = "customer_links"
    __table_args__ = (
        UniqueConstraint("kind", "from_customer_id", "to_customer_id"),
        CheckConstraint("from_customer_id <> to_customer_id", name="not_self"),
        CheckConstraint("weight > 0", name="positive_weight"),
        Index("ix_customer_links_to", "to_customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    to_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
