"""R: interactions (through the ledger), campaign members and responses."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Connection, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import utcnow
from patron.cif.ledger import interactions_imported
from patron.cif.reader import LINE
from patron.cif.writers.identities import IdentityWriter
from patron.cif.writers.state import UPDATED, WRITTEN, chunks, interaction_key_column, jsonable


class RelationshipWriter(IdentityWriter):
    """Interactions, campaign members and responses of one batch."""

    def _ensure_campaign(self, conn: Connection, key: str, name: str | None, channel: str | None) -> int:
        if key in self.campaign_ids:
            return self.campaign_ids[key]
        table = s.table_of(s.Campaign)
        found = conn.scalar(select(table.c.id).where(table.c.source == self.system, table.c.campaign_key == key))
        if found is None:
            found = conn.scalar(
                insert(table)
                .values(source=self.system, campaign_key=key, name=name or key, channel=channel)
                .returning(table.c.id)
            )
            self._count("campaigns created")
        self.campaign_ids[key] = int(found)
        return int(found)

    def _write_interactions(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        prefix = f"interactions.{index}."
        key_column = interaction_key_column(index)
        rows = list(batch.iter_rows(named=True))
        table = s.table_of(s.Interaction)
        existing: set[str] = set()
        for chunk in chunks([row[key_column] for row in rows]):
            query = select(table.c.idempotency_key).where(
                table.c.source == self.system, table.c.idempotency_key.in_(chunk)
            )
            existing.update(conn.scalars(query).all())
        fresh = [row for row in rows if row[key_column] not in existing]
        known = self.resolve_customers(conn, [row[prefix + "customer"] for row in fresh])
        fresh = self._reject_unknown_customers(fresh, prefix + "customer", known)
        detail_names = [c.removeprefix(prefix + "details.") for c in batch.columns if c.startswith(prefix + "details.")]
        now = utcnow()
        new_rows = []
        for row in fresh:
            details = {name: jsonable(row[prefix + "details." + name]) for name in detail_names}
            new_rows.append(
                {
                    "source": self.system,
                    "idempotency_key": row[key_column],
                    "customer_id": known[row[prefix + "customer"]],
                    "occurred_at": row[prefix + "occurred_at"],
                    "channel": row[prefix + "channel"],
                    "direction": row.get(prefix + "direction") or "inbound",
                    "type": row[prefix + "type"],
                    "outcome": row.get(prefix + "outcome"),
                    "agent": row.get(prefix + "agent"),
                    "body": row.get(prefix + "body"),
                    "details": {k: v for k, v in details.items() if v is not None} or None,
                    "campaign_id": None,
                    "order_id": None,
                    "created_at": now,
                }
            )
            self._mark([row[LINE]], WRITTEN)
        if new_rows:
            interactions_imported(conn, new_rows)
            self._count("interactions created", len(new_rows))

    def _write_members(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        prefix = f"members.{index}."
        table = s.table_of(s.CampaignMember)
        rows = list(batch.iter_rows(named=True))
        known = self.resolve_customers(conn, [row[prefix + "customer"] for row in rows])
        rows = self._reject_unknown_customers(rows, prefix + "customer", known)
        wanted: dict[tuple[int, int], tuple[dict[str, Any], int]] = {}
        for row in rows:
            campaign_id = self._ensure_campaign(
                conn, row[prefix + "campaign"], row.get(prefix + "campaign_name"), row.get(prefix + "channel")
            )
            control = bool(row.get(prefix + "control") or False)
            values = {
                "arm": row.get(prefix + "arm") or ("control" if control else "treatment"),
                "is_control": control,
            }
            wanted[(campaign_id, known[row[prefix + "customer"]])] = (values, row[LINE])
        current = self._current_by_pairs(conn, table, list(wanted))
        new_rows = [
            {"campaign_id": cid, "customer_id": cust, **values}
            for (cid, cust), (values, _) in wanted.items()
            if (cid, cust) not in current
        ]
        for (cid, cust), (values, line) in wanted.items():
            old = current.get((cid, cust))
            if old is None:
                self._mark([line], WRITTEN)
            elif any(old[k] != v for k, v in values.items()):
                conn.execute(
                    update(table).where(table.c.campaign_id == cid, table.c.customer_id == cust).values(**values)
                )
                self._mark([line], UPDATED)
        if new_rows:
            conn.execute(insert(table), new_rows)
            self._count("campaign members created", len(new_rows))

    def _write_responses(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        prefix = f"responses.{index}."
        table = s.table_of(s.CampaignResponse)
        rows = [row for row in batch.iter_rows(named=True) if row[prefix + "responded"]]
        known = self.resolve_customers(conn, [row[prefix + "customer"] for row in rows])
        rows = self._reject_unknown_customers(rows, prefix + "customer", known)
        wanted: dict[tuple[int, int, str], tuple[dict[str, Any], int]] = {}
        for row in rows:
            campaign_id = self._ensure_campaign(conn, row[prefix + "campaign"], None, None)
            value = row.get(prefix + "value")
            values = {
                "value_minor": value,
                "currency": self.currency if value is not None else None,
                "responded_at": row.get(prefix + "responded_at"),
            }
            wanted[(campaign_id, known[row[prefix + "customer"]], row[prefix + "kind"])] = (values, row[LINE])
        current: dict[tuple[int, int, str], dict[str, Any]] = {}
        customers = sorted({cust for _, cust, _ in wanted})
        for chunk in chunks(customers):
            query = select(table).where(table.c.customer_id.in_(chunk))
            for stored in conn.execute(query).mappings():
                current[(stored["campaign_id"], stored["customer_id"], stored["kind"])] = dict(stored)
        new_rows = []
        for (cid, cust, kind), (values, line) in wanted.items():
            old = current.get((cid, cust, kind))
            if old is None:
                new_rows.append({"campaign_id": cid, "customer_id": cust, "kind": kind, **values})
                self._mark([line], WRITTEN)
            elif any(old[k] != v for k, v in values.items()):
                conn.execute(
                    update(table)
                    .where(table.c.campaign_id == cid, table.c.customer_id == cust, table.c.kind == kind)
                    .values(**values)
                )
                self._mark([line], UPDATED)
        if new_rows:
            conn.execute(insert(table), new_rows)
            self._count("campaign responses created", len(new_rows))
