"""Versioned value scores: each scoring run is kept with its model, parameters and per-customer results,
so a customer's movement between runs (tier changes, CLV up or down) can be queried."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, Money, run_key, snapshot_customer_key, utcnow
from patron.cif.schema import Base


class ScoreRun(Base):
    __tablename__ = "score_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    as_of: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(1))
    currency: Mapped[str] = mapped_column(String(3))
    horizon_months: Mapped[int] = mapped_column(Integer)
    annual_discount_rate: Mapped[float] = mapped_column(Float)
    default_margin_rate: Mapped[float] = mapped_column(Float)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    log_likelihood: Mapped[float | None] = mapped_column(Float)  # none in an RFM run
    customers: Mapped[int] = mapped_column(Integer)
    excluded: Mapped[dict[str, Any]] = mapped_column(JSON)
    tier_cuts: Mapped[list[float]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(200))
    # How the fit went: the model choice, boundary estimates answered by a nested limit, fallbacks (RFM, spend).
    fit_notes: Mapped[list[str] | None] = mapped_column(JSON)


class CustomerScore(Base):
    __tablename__ = "customer_scores"

    run_id: Mapped[int] = run_key("score_runs")
    customer_id: Mapped[int] = snapshot_customer_key()
    frequency: Mapped[int] = mapped_column(Integer)
    recency: Mapped[float] = mapped_column(Float)
    age: Mapped[float] = mapped_column(Float)  # T: periods since the first purchase
    p_alive: Mapped[float | None] = mapped_column(Float)  # none in an RFM run
    expected_purchases: Mapped[float | None] = mapped_column(Float)  # none in an RFM run
    expected_margin_per_purchase_minor: Mapped[int | None] = mapped_column(Money)
    clv_minor: Mapped[int] = mapped_column(Money)
    value_at_risk_minor: Mapped[int | None] = mapped_column(Money)
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    tier: Mapped[str] = mapped_column(String(1))
    rank: Mapped[int] = mapped_column(Integer)
