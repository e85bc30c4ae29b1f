"""Writing one validated batch into the store: identity resolution, natural keys, inserts and updates.

Each ``_write_*`` method runs inside the batch's transaction and records, per source line, whether the row
created something (WRITTEN), changed something (UPDATED) or found everything already there. The writers live
by what they write: ``identities``, ``customers`` (C), ``purchases`` (P), ``relationships`` (R), on the shared
``state`` at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection

from patron.cif.writers.customers import CustomerWriter
from patron.cif.writers.purchases import PurchaseWriter
from patron.cif.writers.relationships import RelationshipWriter
from patron.cif.writers.state import (
    DESCRIBES_CUSTOMER,
    DESCRIBES_PRODUCT,
    LINE_NO,
    ORDER_KEY,
    PAYMENT_SEQUENCE,
    RETURN,
    RETURN_SUFFIX,
    UPDATED,
    WRITTEN,
    interaction_key_column,
)

__all__ = [
    "DESCRIBES_CUSTOMER",
    "DESCRIBES_PRODUCT",
    "LINE_NO",
    "ORDER_KEY",
    "PAYMENT_SEQUENCE",
    "RETURN",
    "RETURN_SUFFIX",
    "UPDATED",
    "WRITTEN",
    "BatchWriter",
    "interaction_key_column",
]


@dataclass
class BatchWriter(CustomerWriter, PurchaseWriter, RelationshipWriter):
    """Writes batches of one import; caches natural-key lookups across batches of the same run."""

    def write(self, conn: Connection, batch: pl.DataFrame) -> None:
        if self.mapping.categories is not None:
            self._write_categories(conn, batch)
        if self.mapping.products is not None:
            self._write_products(conn, batch)
        if self.mapping.customers is not None:
            self._write_customers(conn, batch)
        if self.mapping.orders is not None:
            self._write_orders(conn, batch)
        for index in range(len(self.mapping.interactions)):
            self._write_interactions(conn, batch, index)
        for index in range(len(self.mapping.members)):
            self._write_members(conn, batch, index)
        for index in range(len(self.mapping.responses)):
            self._write_responses(conn, batch, index)
        if self.mapping.payments is not None:
            self._write_payments(conn, batch)
