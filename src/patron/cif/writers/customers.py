"""C: customers, their profiles and attributes: inserted when new, updated when changed, else left alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import Connection, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import utcnow
from patron.cif.reader import LINE
from patron.cif.writers.identities import IdentityWriter
from patron.cif.writers.state import CUSTOMER_COLUMNS, CUSTOMER_FIELDS, UPDATED, WRITTEN, attribute_value, chunks
from patron.settings import get_settings


class CustomerWriter(IdentityWriter):
    """Customers (their record, profile and attributes) of one batch."""

    def _write_customers(self, conn: Connection, batch: pl.DataFrame) -> None:
        spec = self.mapping.customers
        assert spec is not None
        columns = [
            LINE,
            *[c for c in batch.columns if c.split(".")[0] in ("customers", "profile", "attributes")],
        ]
        first: dict[str, dict[str, Any]] = {}
        lines_of: dict[str, list[int]] = {}
        for row in batch.select(columns).iter_rows(named=True):
            key = row["customers.external_id"]
            first.setdefault(key, row)
            lines_of.setdefault(key, []).append(row[LINE])
        known = self.resolve_customers(conn, first)
        new_keys = [key for key in first if key not in known]
        matched = self._match_by_contact(conn, [first[key] for key in new_keys])
        joins = self._shared_in_file([first[key] for key in new_keys if key not in matched])
        customers = s.table_of(s.Customer)
        to_create = [key for key in new_keys if key not in matched and key not in joins]
        if to_create:
            now = utcnow()
            blank = dict.fromkeys(CUSTOMER_COLUMNS) | {"kind": "customer", "status": "active"}
            rows = [
                blank
                | self._customer_values(first[key], now)
                | {"source": self.system, "created_at": now, "updated_at": now}
                for key in to_create
            ]
            result = conn.execute(insert(customers).returning(customers.c.id, sort_by_parameter_order=True), rows)
            ids = [row.id for row in result]
            self.customer_ids.update(dict(zip(to_create, ids, strict=True)))
            self._count("customers created", len(ids))
            for key in to_create:
                self._mark(lines_of[key][:1], WRITTEN)
        for key, customer_id in matched.items():
            self.customer_ids[key] = customer_id
            self._count("customers matched by e-mail/phone")
            self._mark(lines_of[key][:1], UPDATED)
        for key, earlier in joins.items():
            self.customer_ids[key] = self.customer_ids[earlier]
            self._count("customers matched by e-mail/phone within the file")
            self._mark(lines_of[key][:1], UPDATED)
        self._add_identities(conn, first, new_keys)
        fresh = set(new_keys)
        existing = [key for key in first if key not in fresh]
        changed = self._update_customers(conn, {self.customer_ids[key]: first[key] for key in existing})
        changed |= self._sync_profiles(conn, {self.customer_ids[key]: first[key] for key in first})
        changed |= self._sync_attributes(conn, {self.customer_ids[key]: first[key] for key in first})
        by_id = {self.customer_ids[key]: key for key in first}
        for customer_id in changed:
            self._mark(lines_of[by_id[customer_id]][:1], UPDATED)
        self._count("customers updated", len(changed & {self.customer_ids[key] for key in existing}))
        if to_create and get_settings().realtime_matching:
            self._match_arrivals(conn, to_create)

    def _customer_values(self, row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in CUSTOMER_FIELDS:
            value = row.get(f"customers.{name}")
            if value is not None:
                values[name] = value
        cost = row.get("customers.acquisition_cost")
        if cost is not None:
            values["acquisition_cost_minor"] = cost
            values["currency"] = self.currency
        if values:
            values["updated_at"] = now
        return values

    def _update_customers(self, conn: Connection, rows_by_id: dict[int, dict[str, Any]]) -> set[int]:
        customers = s.table_of(s.Customer)
        now = utcnow()
        wanted = {cid: self._customer_values(row, now) for cid, row in rows_by_id.items()}
        wanted = {cid: values for cid, values in wanted.items() if values}
        changed: set[int] = set()
        for chunk in chunks(sorted(wanted)):
            for current in conn.execute(select(customers).where(customers.c.id.in_(chunk))).mappings():
                values = wanted[current["id"]]
                diff = {k: v for k, v in values.items() if k != "updated_at" and current[k] != v}
                if diff:
                    diff["updated_at"] = now
                    conn.execute(update(customers).where(customers.c.id == current["id"]).values(**diff))
                    changed.add(current["id"])
        return changed

    def _sync_profiles(self, conn: Connection, rows_by_id: dict[int, dict[str, Any]]) -> set[int]:
        assert self.mapping.customers is not None
        names = list(self.mapping.customers.profile)
        if not names:
            return set()
        table = s.table_of(s.CustomerProfile)

        def values_of(row: dict[str, Any]) -> dict[str, Any]:
            values = {}
            for name in names:
                value = row.get(f"profile.{name}")
                if value is not None:
                    values["income_minor" if name == "income" else name] = value
            return values

        wanted = {cid: values_of(row) for cid, row in rows_by_id.items()}
        wanted = {cid: values for cid, values in wanted.items() if values}
        changed: set[int] = set()
        current: dict[int, dict[str, Any]] = {}
        for chunk in chunks(sorted(wanted)):
            query = select(table).where(table.c.customer_id.in_(chunk))
            current.update({row["customer_id"]: dict(row) for row in conn.execute(query).mappings()})
        now = utcnow()
        new_rows = [
            {"customer_id": cid, "updated_at": now, **values} for cid, values in wanted.items() if cid not in current
        ]
        if new_rows:
            for row in new_rows:
                for column in table.c:
                    row.setdefault(column.name, None)
            conn.execute(insert(table), new_rows)
            changed |= {row["customer_id"] for row in new_rows}
        for cid, values in wanted.items():
            if cid in current:
                diff = {k: v for k, v in values.items() if current[cid][k] != v}
                if diff:
                    conn.execute(update(table).where(table.c.customer_id == cid).values(updated_at=now, **diff))
                    changed.add(cid)
        return changed

    def _sync_attributes(self, conn: Connection, rows_by_id: dict[int, dict[str, Any]]) -> set[int]:
        assert self.mapping.customers is not None
        specs = self.mapping.customers.attributes
        if not specs:
            return set()
        table = s.table_of(s.CustomerAttribute)
        wanted: dict[tuple[int, str], dict[str, Any]] = {}
        for cid, row in rows_by_id.items():
            for key in specs:
                value = row.get(f"attributes.{key}")
                if value is not None:
                    wanted[(cid, key)] = attribute_value(value)
        current: dict[tuple[int, str], dict[str, Any]] = {}
        for chunk in chunks(sorted({cid for cid, _ in wanted})):
            query = select(table).where(table.c.customer_id.in_(chunk), table.c.key.in_(list(specs)))
            for stored in conn.execute(query).mappings():
                current[(stored["customer_id"], stored["key"])] = dict(stored)
        now = utcnow()
        new_rows = [
            {"customer_id": cid, "key": key, "source": self.system, "updated_at": now, **values}
            for (cid, key), values in wanted.items()
            if (cid, key) not in current
        ]
        changed = {row["customer_id"] for row in new_rows}
        if new_rows:
            conn.execute(insert(table), new_rows)
        for (cid, key), values in wanted.items():
            if (cid, key) in current:
                old = current[(cid, key)]
                if any(old[k] != v for k, v in values.items()):
                    conn.execute(
                        update(table)
                        .where(table.c.customer_id == cid, table.c.key == key)
                        .values(source=self.system, updated_at=now, **values)
                    )
                    changed.add(cid)
        return changed
