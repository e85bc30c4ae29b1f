"""Writing one validated batch into the store: identity resolution, natural keys, inserts and updates.

Each ``write_*`` method runs inside the batch's transaction and records, per source line, whether the row
created something (WRITTEN), changed something (UPDATED) or found everything already there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection, Table, insert, select, tuple_, update

from patron.cif import schema as s
from patron.cif.columns import utcnow
from patron.cif.ledger import interactions_imported
from patron.cif.mapping import Mapping
from patron.cif.reader import LINE, Reject

UPDATED, WRITTEN = 1, 2
# Customer columns a mapping fills directly; acquisition cost and its currency are derived in _customer_values.
_CUSTOMER_FIELDS = (
    "kind",
    "status",
    "display_name",
    "first_name",
    "last_name",
    "acquired_on",
    "acquisition_channel",
)
_CUSTOMER_COLUMNS = (*_CUSTOMER_FIELDS, "acquisition_cost_minor", "currency")
_UNKNOWN_CUSTOMER = "no customer with this id in this source"
_IN_CHUNK = 5_000
ORDER_KEY = "__order_key__"
LINE_NO = "__line_no__"
PAYMENT_SEQUENCE = "__payment_sequence__"


def interaction_key_column(index: int) -> str:
    return f"__interaction_key_{index}__"


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


@dataclass
class BatchWriter:
    """Writes batches of one import; caches natural-key lookups across batches of the same run."""

    mapping: Mapping
    status: dict[int, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    customer_ids: dict[str, int] = field(default_factory=dict)
    category_ids: dict[str, int] = field(default_factory=dict)
    product_ids: dict[str, int] = field(default_factory=dict)
    campaign_ids: dict[str, int] = field(default_factory=dict)

    @property
    def system(self) -> str:
        return self.mapping.source.system

    @property
    def currency(self) -> str:
        return self.mapping.source.currency

    def _mark(self, lines: Iterable[int], outcome: int) -> None:
        for line in lines:
            if self.status.get(line, 0) < outcome:
                self.status[line] = outcome

    def _count(self, name: str, amount: int = 1) -> None:
        if amount:
            self.counts[name] = self.counts.get(name, 0) + amount

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

    # -- lookups -----------------------------------------------------------------------------------------

    def resolve_customers(self, conn: Connection, external_ids: Iterable[str]) -> dict[str, int]:
        wanted = sorted({value for value in external_ids if value not in self.customer_ids})
        identities = s.table_of(s.Identity)
        for chunk in _chunks(wanted):
            query = select(identities.c.value, identities.c.customer_id).where(
                identities.c.kind == "external",
                identities.c.system == self.system,
                identities.c.value.in_(chunk),
            )
            self.customer_ids.update({row.value: row.customer_id for row in conn.execute(query)})
        return self.customer_ids

    def _resolve_by(self, conn: Connection, kind: str, values: Iterable[str]) -> dict[str, int]:
        identities = s.table_of(s.Identity)
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(values))):
            query = select(identities.c.value, identities.c.customer_id).where(
                identities.c.kind == kind, identities.c.system == "", identities.c.value.in_(chunk)
            )
            found.update({row.value: row.customer_id for row in conn.execute(query)})
        return found

    def _ensure_categories(self, conn: Connection, names: Iterable[str | None]) -> dict[str, int]:
        table = s.table_of(s.Category)
        missing = sorted({name for name in names if name and name not in self.category_ids})
        for chunk in _chunks(missing):
            query = select(table.c.name, table.c.id).where(table.c.name.in_(chunk))
            self.category_ids.update({row.name: row.id for row in conn.execute(query)})
        new = [name for name in missing if name not in self.category_ids]
        if new:
            result = conn.execute(
                insert(table).returning(table.c.name, table.c.id, sort_by_parameter_order=True),
                [{"name": name} for name in new],
            )
            self.category_ids.update({row.name: row.id for row in result})
            self._count("categories created", len(new))
        return self.category_ids

    def _ensure_products(self, conn: Connection, skus: Iterable[str | None]) -> dict[str, int]:
        table = s.table_of(s.Product)
        missing = sorted({sku for sku in skus if sku and sku not in self.product_ids})
        for chunk in _chunks(missing):
            query = select(table.c.sku, table.c.id).where(table.c.source == self.system, table.c.sku.in_(chunk))
            self.product_ids.update({row.sku: row.id for row in conn.execute(query)})
        new = [sku for sku in missing if sku not in self.product_ids]
        if new:
            result = conn.execute(
                insert(table).returning(table.c.sku, table.c.id, sort_by_parameter_order=True),
                [{"source": self.system, "sku": sku} for sku in new],
            )
            self.product_ids.update({row.sku: row.id for row in result})
            self._count("products created", len(new))
        return self.product_ids

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

    def _reject_unknown_customers(
        self, rows: list[dict[str, Any]], column: str, known: dict[str, int]
    ) -> list[dict[str, Any]]:
        kept = []
        for row in rows:
            if row[column] in known:
                kept.append(row)
            else:
                self.rejects.append(
                    Reject(
                        row[LINE],
                        column.rsplit(".", maxsplit=1)[-1],
                        row[column],
                        _UNKNOWN_CUSTOMER,
                    )
                )
        return kept

    # -- C: customers, identities, profiles, attributes ---------------------------------------------------

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
        customers = s.table_of(s.Customer)
        to_create = [key for key in new_keys if key not in matched]
        if to_create:
            now = utcnow()
            blank = dict.fromkeys(_CUSTOMER_COLUMNS) | {"kind": "customer", "status": "active"}
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

    def _customer_values(self, row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in _CUSTOMER_FIELDS:
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

    def _match_by_contact(self, conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Deterministic identity matching: a new external id whose e-mail or phone is known joins that customer."""
        matched: dict[str, int] = {}
        for kind in ("email", "phone"):
            column = f"customers.{kind}"
            values = [row[column] for row in rows if row.get(column)]
            if not values:
                continue
            owners = self._resolve_by(conn, kind, values)
            for row in rows:
                owner = owners.get(row.get(column) or "")
                if owner is not None:
                    matched.setdefault(row["customers.external_id"], owner)
        return matched

    def _add_identities(self, conn: Connection, first: dict[str, dict[str, Any]], new_keys: list[str]) -> None:
        identities = s.table_of(s.Identity)
        now = utcnow()
        rows = [
            {
                "customer_id": self.customer_ids[key],
                "kind": "external",
                "system": self.system,
                "value": key,
                "verified": False,
                "created_at": now,
            }
            for key in new_keys
        ]
        for kind in ("email", "phone"):
            column = f"customers.{kind}"
            wanted = {row[column]: self.customer_ids[key] for key, row in first.items() if row.get(column)}
            if not wanted:
                continue
            present = self._resolve_by(conn, kind, wanted)
            conflicts = sum(1 for value, owner in present.items() if owner != wanted[value])
            self._count(f"{kind} already held by another customer", conflicts)
            rows += [
                {
                    "customer_id": owner,
                    "kind": kind,
                    "system": "",
                    "value": value,
                    "verified": False,
                    "created_at": now,
                }
                for value, owner in wanted.items()
                if value not in present
            ]
        if rows:
            conn.execute(insert(identities), rows)
            self._count("identities created", len(rows))

    def _update_customers(self, conn: Connection, rows_by_id: dict[int, dict[str, Any]]) -> set[int]:
        customers = s.table_of(s.Customer)
        now = utcnow()
        wanted = {cid: self._customer_values(row, now) for cid, row in rows_by_id.items()}
        wanted = {cid: values for cid, values in wanted.items() if values}
        changed: set[int] = set()
        for chunk in _chunks(sorted(wanted)):
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
        for chunk in _chunks(sorted(wanted)):
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
                    wanted[(cid, key)] = _attribute_value(value)
        current: dict[tuple[int, str], dict[str, Any]] = {}
        for chunk in _chunks(sorted({cid for cid, _ in wanted})):
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

    # -- P: orders and lines, payments, catalogue ------------------------------------------------------

    def _write_orders(self, conn: Connection, batch: pl.DataFrame) -> None:
        spec = self.mapping.orders
        assert spec is not None
        rows = batch.iter_rows(named=True)
        by_order: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_order.setdefault(row[ORDER_KEY], []).append(row)
        orders = s.table_of(s.Order)
        existing: set[str] = set()
        for chunk in _chunks(list(by_order)):
            query = select(orders.c.order_key).where(orders.c.source == self.system, orders.c.order_key.in_(chunk))
            existing.update(conn.scalars(query))
        new_keys = [key for key in by_order if key not in existing]
        known = self.resolve_customers(conn, [by_order[key][0]["orders.customer"] for key in new_keys])
        headers = []
        for key in new_keys:
            group = by_order[key]
            if not self._reject_unknown_customers(group[:1], "orders.customer", known):
                for row in group[1:]:
                    self.rejects.append(
                        Reject(
                            row[LINE],
                            "customer",
                            row["orders.customer"],
                            _UNKNOWN_CUSTOMER,
                        )
                    )
                del by_order[key]
                continue
            head = group[0]
            headers.append(
                {
                    "source": self.system,
                    "order_key": key,
                    "customer_id": known[head["orders.customer"]],
                    "ordered_at": head["orders.ordered_at"],
                    "channel": head.get("orders.channel"),
                    "currency": head.get("orders.currency") or self.currency,
                    "created_at": utcnow(),
                }
            )
        if not headers:
            return
        result = conn.execute(insert(orders).returning(orders.c.id, sort_by_parameter_order=True), headers)
        order_ids = {header["order_key"]: row.id for header, row in zip(headers, result, strict=True)}
        self._count("orders created", len(order_ids))
        line_specs = spec.line_specs()
        lines = []
        all_rows = [row for key in order_ids for row in by_order[key]]
        categories = self._ensure_categories(
            conn,
            [row.get(f"lines.{i}.category") for row in all_rows for i in range(len(line_specs))],
        )
        products = self._ensure_products(
            conn, [row.get(f"lines.{i}.product") for row in all_rows for i in range(len(line_specs))]
        )
        for row in all_rows:
            for index, line_spec in enumerate(line_specs):
                prefix = f"lines.{index}."
                revenue = row[prefix + "revenue"]
                quantity = row.get(prefix + "quantity")
                if line_spec.skip_zero and revenue == 0 and not quantity:
                    continue
                cost = row.get(prefix + "cost")
                lines.append(
                    {
                        "order_id": order_ids[row[ORDER_KEY]],
                        "line_no": row[LINE_NO] * len(line_specs) + index + 1,
                        "product_id": products.get(row.get(prefix + "product") or ""),
                        "category_id": categories.get(row.get(prefix + "category") or ""),
                        "quantity": quantity if quantity is not None else Decimal(1),
                        "revenue_minor": revenue,
                        "cost_minor": cost,
                        "margin_minor": None if cost is None else revenue - cost,
                    }
                )
            self._mark([row[LINE]], WRITTEN)
        if lines:
            conn.execute(insert(s.table_of(s.OrderLine)), lines)
            self._count("order lines created", len(lines))

    def _write_categories(self, conn: Connection, batch: pl.DataFrame) -> None:
        table = s.table_of(s.Category)
        rows = batch.select(
            LINE, "categories.name", *(["categories.label"] if "categories.label" in batch.columns else [])
        )
        names = rows.get_column("categories.name").to_list()
        before = {name for name in names if name in self.category_ids}
        for chunk in _chunks(sorted(set(names) - before)):
            before |= set(conn.scalars(select(table.c.name).where(table.c.name.in_(chunk))))
        ids = self._ensure_categories(conn, names)
        for row in rows.iter_rows(named=True):
            name = row["categories.name"]
            label = row.get("categories.label")
            if name not in before:
                self._mark([row[LINE]], WRITTEN)
            if label is not None:
                result = conn.execute(
                    update(table)
                    .where(table.c.id == ids[name], (table.c.label != label) | table.c.label.is_(None))
                    .values(label=label)
                )
                if result.rowcount and name in before:
                    self._mark([row[LINE]], UPDATED)

    def _write_products(self, conn: Connection, batch: pl.DataFrame) -> None:
        table = s.table_of(s.Product)
        columns = [c for c in batch.columns if c.startswith("products.")]
        rows = list(batch.select(LINE, *columns).iter_rows(named=True))
        categories = self._ensure_categories(conn, [row.get("products.category") for row in rows])
        existing: dict[str, dict[str, Any]] = {}
        skus = [row["products.sku"] for row in rows]
        for chunk in _chunks(skus):
            query = select(table).where(table.c.source == self.system, table.c.sku.in_(chunk))
            existing.update({row["sku"]: dict(row) for row in conn.execute(query).mappings()})
        new_rows, seen = [], set()
        for row in rows:
            values = {
                "name": row.get("products.name"),
                "category_id": categories.get(row.get("products.category") or ""),
            }
            sku = row["products.sku"]
            if sku in existing:
                old = existing[sku]
                diff = {k: v for k, v in values.items() if v is not None and old[k] != v}
                if diff:
                    conn.execute(update(table).where(table.c.id == old["id"]).values(**diff))
                    self._mark([row[LINE]], UPDATED)
            elif sku not in seen:
                seen.add(sku)
                new_rows.append({"source": self.system, "sku": sku, "attributes": None, **values})
                self._mark([row[LINE]], WRITTEN)
        if new_rows:
            result = conn.execute(
                insert(table).returning(table.c.sku, table.c.id, sort_by_parameter_order=True), new_rows
            )
            self.product_ids.update({row.sku: row.id for row in result})
            self._count("products created", len(new_rows))

    def _write_payments(self, conn: Connection, batch: pl.DataFrame) -> None:
        table = s.table_of(s.Payment)
        rows = list(batch.iter_rows(named=True))
        keys = [(row["payments.order_id"], row[PAYMENT_SEQUENCE]) for row in rows]
        existing: set[tuple[str, int]] = set()
        for chunk in _chunks(sorted({key for key, _ in keys})):
            query = select(table.c.order_key, table.c.sequence).where(
                table.c.source == self.system, table.c.order_key.in_(chunk)
            )
            existing.update((row.order_key, row.sequence) for row in conn.execute(query))
        new_rows = []
        for row, key in zip(rows, keys, strict=True):
            if key in existing:
                continue
            new_rows.append(
                {
                    "source": self.system,
                    "order_key": key[0],
                    "sequence": key[1],
                    "method": row.get("payments.method"),
                    "installments": row.get("payments.installments"),
                    "amount_minor": row["payments.amount"],
                    "currency": self.currency,
                }
            )
            self._mark([row[LINE]], WRITTEN)
        if new_rows:
            conn.execute(insert(table), new_rows)
            self._count("payments created", len(new_rows))

    # -- R: interactions, campaign members and responses ------------------------------------------------

    def _write_interactions(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        prefix = f"interactions.{index}."
        key_column = interaction_key_column(index)
        rows = list(batch.iter_rows(named=True))
        table = s.table_of(s.Interaction)
        existing: set[str] = set()
        for chunk in _chunks([row[key_column] for row in rows]):
            query = select(table.c.idempotency_key).where(
                table.c.source == self.system, table.c.idempotency_key.in_(chunk)
            )
            existing.update(conn.scalars(query))
        fresh = [row for row in rows if row[key_column] not in existing]
        known = self.resolve_customers(conn, [row[prefix + "customer"] for row in fresh])
        fresh = self._reject_unknown_customers(fresh, prefix + "customer", known)
        detail_names = [c.removeprefix(prefix + "details.") for c in batch.columns if c.startswith(prefix + "details.")]
        now = utcnow()
        new_rows = []
        for row in fresh:
            details = {name: _jsonable(row[prefix + "details." + name]) for name in detail_names}
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
        for chunk in _chunks(customers):
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

    def _current_by_pairs(
        self, conn: Connection, table: Table, pairs: list[tuple[int, int]]
    ) -> dict[tuple[int, int], dict[str, Any]]:
        current: dict[tuple[int, int], dict[str, Any]] = {}
        for chunk in _chunks(pairs):
            query = select(table).where(tuple_(table.c.campaign_id, table.c.customer_id).in_(chunk))
            for row in conn.execute(query).mappings():
                current[(row["campaign_id"], row["customer_id"])] = dict(row)
        return current


def _attribute_value(value: Any) -> dict[str, Any]:
    empty = {"value_text": None, "value_number": None, "value_date": None}
    if isinstance(value, bool):
        return empty | {"value_type": "boolean", "value_text": "true" if value else "false"}
    if isinstance(value, int | Decimal):
        return empty | {"value_type": "number", "value_number": Decimal(value)}
    if isinstance(value, dt.datetime):
        return empty | {"value_type": "date", "value_date": value.date()}
    if isinstance(value, dt.date):
        return empty | {"value_type": "date", "value_date": value}
    return empty | {"value_type": "text", "value_text": str(value)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
