"""What every table module shares: the id and money column types, the PII mark, the clock, the Core table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, Table
from sqlalchemy.orm import mapped_column

# SQLite only aliases ROWID (and so autoincrements) for a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Money = BigInteger  # minor units of the row's currency (patron.cif.money converts)

PII: dict[str, Any] = {"pii": True}


def utcnow() -> dt.datetime:
    """The current time in UTC without a zone: how every timestamp column stores time."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def table_of(model: Any) -> Table:
    """The Core table of a mapped class, typed for ``insert``/``update``/``delete``."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def run_key(runs_table: str) -> Any:
    """The run half of a versioned snapshot's key (scores, model scores, assignments): deleted with its run."""
    return mapped_column(ForeignKey(f"{runs_table}.id", ondelete="CASCADE"), primary_key=True)


def snapshot_customer_key() -> Any:
    """The customer half of a snapshot's key, indexed for "this customer's latest" and erased with the customer."""
    return mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True)
