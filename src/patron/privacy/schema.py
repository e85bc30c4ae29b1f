"""The erasure ledger: proof that a person's data was erased, kept after the data is gone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.cif.columns import BigId, utcnow
from patron.cif.schema import Base


class Erasure(Base):
    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)  # the id stays; nothing it points to identifies anyone
    erased_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(100))
    interface: Mapped[str] = mapped_column(String(16))
    rows: Mapped[dict[str, Any]] = mapped_column(JSON)  # table → rows changed
    files: Mapped[list[str]] = mapped_column(JSON)  # files redacted
    values_removed: Mapped[int] = mapped_column(BigInteger)
