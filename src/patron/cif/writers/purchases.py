"""P: orders and their lines, payments, and the catalogue (categories, products) they refer to."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection, insert, select, update

from patron.cif import schema as s
from patron.cif.columns import utcnow
from patron.cif.reader import LINE, Reject
from patron.cif.writers.identities import IdentityWriter
from patron.cif.writers.state import (
    LINE_NO,
    ORDER_KEY,
    PAYMENT_SEQUENCE,
    RETURN,
    UNKNOWN_CUSTOMER,
    UPDATED,
    WRITTEN,
    chunks,
)


def line_amounts(row: dict[str, Any], prefix: str, tax_included: bool, is_return: bool) -> dict[str, Any]:
    """A line's quantity and money (minor units): revenue net of discount and of tax where the price includes it;
    a return's quantity and amounts negative whatever sign the source gave them."""
    quantity = row.get(prefix + "quantity")
    discount, tax, cost = (row.get(prefix + name) for name in ("discount", "tax", "cost"))
    revenue = row[prefix + "revenue"] - (discount or 0) - (tax or 0 if tax_included else 0)
    quantity = quantity if quantity is not None else Decimal(1)
    if is_return:
        quantity, revenue = -abs(quantity), -abs(revenue)
        cost = None if cost is None else -abs(cost)
    return {
        "quantity": quantity,
        "revenue_minor": revenue,
        "cost_minor": cost,
        "margin_minor": None if cost is None else revenue - cost,
        "discount_minor": discount,
        "tax_minor": tax,
    }


class PurchaseWriter(IdentityWriter):
    """Orders, lines, payments and the catalogue of one batch."""

    def _ensure_categories(self, conn: Connection, names: Iterable[str | None]) -> dict[str, int]:
        table = s.table_of(s.Category)
        missing = sorted({name for name in names if name and name not in self.category_ids})
        for chunk in chunks(missing):
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
        for chunk in chunks(missing):
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

    def _write_orders(self, conn: Connection, batch: pl.DataFrame) -> None:
        spec = self.mapping.orders
        assert spec is not None
        rows = batch.iter_rows(named=True)
        by_order: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_order.setdefault(row[ORDER_KEY], []).append(row)
        orders = s.table_of(s.Order)
        existing: set[str] = set()
        for chunk in chunks(list(by_order)):
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
                            UNKNOWN_CUSTOMER,
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
                    "kind": "return" if head.get(RETURN) else "purchase",
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
                amounts = line_amounts(row, f"lines.{index}.", line_spec.tax_included, bool(row.get(RETURN)))
                if line_spec.skip_zero and amounts["revenue_minor"] == 0 and not amounts["quantity"]:
                    continue
                lines.append(
                    {
                        "order_id": order_ids[row[ORDER_KEY]],
                        "line_no": row[LINE_NO] * len(line_specs) + index + 1,
                        "product_id": products.get(row.get(f"lines.{index}.product") or ""),
                        "category_id": categories.get(row.get(f"lines.{index}.category") or ""),
                        **amounts,
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
        for chunk in chunks(sorted(set(names) - before)):
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
        # A line-item file names each product on many rows: its first row in the batch describes it.
        rows = list(
            batch.select(LINE, *columns).unique("products.sku", keep="first", maintain_order=True).iter_rows(named=True)
        )
        categories = self._ensure_categories(conn, [row.get("products.category") for row in rows])
        existing: dict[str, dict[str, Any]] = {}
        skus = [row["products.sku"] for row in rows]
        for chunk in chunks(skus):
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
        for chunk in chunks(sorted({key for key, _ in keys})):
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
