"""Versioned predictive-model runs (card and fitted model) and their per-customer scores."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, run_key, snapshot_customer_key, utcnow
from patron.cif.schema import Base


class ModelRun(Base):
    __tablename__ = "model_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)  # joblib dump of the design and the fitted learner


class ModelScore(Base):
    __tablename__ = "model_scores"

    run_id: Mapped[int] = run_key("model_runs")
    customer_id: Mapped[int] = snapshot_customer_key()
    score: Mapped[float] = mapped_column(Float)
    decile: Mapped[int] = mapped_column(Integer)
