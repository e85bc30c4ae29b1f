"""P: orders and their lines, payments, and the catalogue (categories, products) they refer to."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from sqlalchemy import Connection, func, insert, select, update

from patron.cif import schema as s
from patron.cif.bulk import insert_frame, insert_frame_with_ids, one_of, update_frame
from patron.cif.columns import utcnow
from patron.cif.facts import read_frame
from patron.cif.reader import LINE, Reject
from patron.cif.writers.identities import IdentityWriter
from patron.cif.writers.state import (
    DESCRIBES_PRODUCT,
    LINE_NO,
    ORDER_KEY,
    PAYMENT_SEQUENCE,
    RETURN,
    UNKNOWN_CUSTOMER,
    UPDATED,
    WRITTEN,
    chunks,
    fresh_and_changed,
    optional_column,
)

CUSTOMER = "orders.customer"
QUANTITY = pl.Decimal(24, 6)  # as validation parses quantities
PRODUCT_KEYS = {"source": pl.String, "sku": pl.String}
PRODUCT_VALUES: dict[str, pl.DataType] = {"sku": pl.String(), "name": pl.String(), "category_id": pl.Int64()}


def _distinct(rows: pl.DataFrame, column: str) -> list[str | None]:
    return rows.get_column(column).unique().to_list() if column in rows.columns else []


def _looked_up(names: pl.Expr, ids: dict[str, int]) -> pl.Expr:
    """The id of each row's category or product (by name or SKU), null where the row names none."""
    if not ids:
        return pl.lit(None, dtype=pl.Int64)
    return names.replace_strict(ids, default=None, return_dtype=pl.Int64)


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
            frame = pl.DataFrame({"source": [self.system] * len(new), "sku": new}, schema=PRODUCT_KEYS)
            self.product_ids.update(zip(new, insert_frame_with_ids(conn, table, frame), strict=True))
            self._count("products created", len(new))
        return self.product_ids

    def _write_orders(self, conn: Connection, batch: pl.DataFrame) -> None:
        """The batch's orders not stored yet (their natural key), with their lines, column by column."""
        orders = s.table_of(s.Order)
        keys = batch.get_column(ORDER_KEY).unique().to_list()
        stored = (orders.c.source == self.system, one_of(conn, orders.c.order_key, keys))
        # Counted first: a batch is mostly all new (a first import) or all stored (a re-run), and then no key needs
        # to come back (in a profile, fetching a re-run's 696,590 keys took 3.9 s of its 10.3 s).
        found = conn.scalar(select(func.count()).select_from(orders).where(*stored)) or 0
        if found == len(keys):
            return
        existing = set(conn.scalars(select(orders.c.order_key).where(*stored)).all()) if found else set()
        fresh = batch.filter(~pl.col(ORDER_KEY).is_in(list(existing))) if existing else batch
        heads = fresh.unique(ORDER_KEY, keep="first", maintain_order=True)
        known = self.resolve_customers(conn, heads.get_column(CUSTOMER).to_list())
        owners = pl.Series([known.get(key) for key in heads.get_column(CUSTOMER).to_list()], dtype=pl.Int64)
        heads = heads.with_columns(owners.alias("customer_id"))
        orphans = heads.filter(pl.col("customer_id").is_null()).get_column(ORDER_KEY)
        if orphans.len():
            unknown = fresh.filter(pl.col(ORDER_KEY).is_in(orphans.implode()))
            self.rejects += [
                Reject(line, "customer", value, UNKNOWN_CUSTOMER)
                for line, value in unknown.select(LINE, CUSTOMER).iter_rows()
            ]
            fresh = fresh.filter(~pl.col(ORDER_KEY).is_in(orphans.implode()))
            heads = heads.filter(pl.col("customer_id").is_not_null())
        if heads.height == 0:
            return
        ids = insert_frame_with_ids(conn, orders, self._order_headers(heads))
        self._count("orders created", len(ids))
        order_ids = pl.DataFrame({ORDER_KEY: heads.get_column(ORDER_KEY), "order_id": pl.Series(ids, dtype=pl.Int64)})
        fresh = fresh.join(order_ids, on=ORDER_KEY, how="left", maintain_order="left")
        lines = self._order_lines(conn, fresh)
        if lines.height:
            insert_frame(conn, s.table_of(s.OrderLine), lines)
            self._count("order lines created", lines.height)
        self._mark(fresh.get_column(LINE).to_numpy(), WRITTEN)

    def _order_headers(self, heads: pl.DataFrame) -> pl.DataFrame:
        returned = pl.col(RETURN) if RETURN in heads.columns else pl.lit(False)
        return heads.select(
            pl.lit(self.system).alias("source"),
            pl.col(ORDER_KEY).alias("order_key"),
            pl.col("customer_id"),
            pl.col("orders.ordered_at").alias("ordered_at"),
            optional_column(heads, "orders.channel").alias("channel"),
            optional_column(heads, "orders.currency").fill_null(self.currency).alias("currency"),
            pl.when(returned).then(pl.lit("return")).otherwise(pl.lit("purchase")).alias("kind"),
            pl.lit(utcnow(), dtype=pl.Datetime("us")).alias("created_at"),
        )

    def _order_lines(self, conn: Connection, rows: pl.DataFrame) -> pl.DataFrame:
        """Each row's lines (one per ``[[orders.lines]]`` entry): amounts in minor units, a return's negative."""
        assert self.mapping.orders is not None
        specs = self.mapping.orders.line_specs()
        parts = []
        for index, spec in enumerate(specs):
            prefix = f"lines.{index}."

            def column(name: str, prefix: str = prefix) -> pl.Expr:
                return optional_column(rows, prefix + name, pl.Int64)

            categories = self._ensure_categories(conn, _distinct(rows, prefix + "category"))
            products = self._ensure_products(conn, _distinct(rows, prefix + "product"))
            tax = column("tax").fill_null(0) if spec.tax_included else pl.lit(0)
            revenue = column("revenue") - column("discount").fill_null(0) - tax
            quantity = column("quantity").fill_null(1).cast(QUANTITY)
            cost = column("cost")
            returned = pl.col(RETURN) if RETURN in rows.columns else pl.lit(False)
            quantity, revenue, cost = (
                pl.when(returned).then(-amount.abs()).otherwise(amount) for amount in (quantity, revenue, cost)
            )
            lines = rows.select(
                pl.col("order_id"),
                (pl.col(LINE_NO) * len(specs) + index + 1).alias("line_no"),
                _looked_up(column("product"), products).alias("product_id"),
                _looked_up(column("category"), categories).alias("category_id"),
                quantity.alias("quantity"),
                revenue.alias("revenue_minor"),
                cost.alias("cost_minor"),
                (revenue - cost).alias("margin_minor"),
                column("discount").alias("discount_minor"),
                column("tax").alias("tax_minor"),
            )
            if spec.skip_zero:
                lines = lines.filter(~((pl.col("revenue_minor") == 0) & (pl.col("quantity") == 0)))
            parts.append(lines)
        return pl.concat(parts).sort("order_id", "line_no")

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
        """The batch's products, column by column: new ones inserted, a stored one changed where its describing line
        gives a value it does not hold."""
        table = s.table_of(s.Product)
        describes = pl.col(DESCRIBES_PRODUCT) if DESCRIBES_PRODUCT in batch.columns else pl.lit(True)
        # A line-item file names each product on many rows: the product's last line in the file describes it (its
        # first line in the batch names a new one); a stored product is changed from that line only.
        rows = (
            batch.select(LINE, "products.sku", optional_column(batch, "products.name").alias("products.name"),
                         optional_column(batch, "products.category").alias("products.category"),
                         describes.alias(DESCRIBES_PRODUCT))
            .sort(DESCRIBES_PRODUCT, descending=True, maintain_order=True)
            .unique("products.sku", keep="first", maintain_order=True)
        )  # fmt: skip
        categories = self._ensure_categories(conn, rows.get_column("products.category").to_list())
        category_id = pl.col("products.category").replace_strict(categories, default=None, return_dtype=pl.Int64)
        wanted = rows.select(
            pl.col("products.sku").alias("sku"), pl.col("products.name").alias("name"),
            category_id.alias("category_id"), LINE, DESCRIBES_PRODUCT,
        )  # fmt: skip
        query = select(table.c.sku, table.c.name, table.c.category_id).where(
            table.c.source == self.system, one_of(conn, table.c.sku, wanted.get_column("sku").to_list())
        )
        stored = read_frame(conn, query, PRODUCT_VALUES)
        fresh, changed = fresh_and_changed(wanted, stored, ["sku"], empty_keeps_stored=True)
        changed = changed.filter(pl.col(DESCRIBES_PRODUCT))
        source = pl.lit(self.system).alias("source")
        update_frame(conn, table, changed.select(source, *PRODUCT_VALUES), keys=["source", "sku"])
        self._mark(changed.get_column(LINE).to_numpy(), UPDATED)
        if fresh.height:
            # The driver's bulk insert: RETURNING in the order given inserts one row per statement on SQLite.
            ids = insert_frame_with_ids(conn, table, fresh.select(source, *PRODUCT_VALUES))
            self.product_ids.update(zip(fresh.get_column("sku").to_list(), ids, strict=True))
            self._count("products created", fresh.height)
            self._mark(fresh.get_column(LINE).to_numpy(), WRITTEN)

    def _write_payments(self, conn: Connection, batch: pl.DataFrame) -> None:
        """The batch's payments not stored yet (their order key and sequence), column by column."""
        table = s.table_of(s.Payment)
        rows = batch.select(
            LINE,
            pl.lit(self.system).alias("source"),
            pl.col("payments.order_id").alias("order_key"),
            pl.col(PAYMENT_SEQUENCE).alias("sequence"),
            optional_column(batch, "payments.method").alias("method"),
            optional_column(batch, "payments.installments", pl.Int64).alias("installments"),
            pl.col("payments.amount").alias("amount_minor"),
            pl.lit(self.currency).alias("currency"),
        )
        keys = rows.get_column("order_key").unique().to_list()
        stored = read_frame(
            conn,
            select(table.c.order_key, table.c.sequence).where(
                table.c.source == self.system, one_of(conn, table.c.order_key, keys)
            ),
            {"order_key": rows.schema["order_key"], "sequence": rows.schema["sequence"]},
        )
        fresh = rows.join(stored, on=["order_key", "sequence"], how="anti") if stored.height else rows
        if fresh.height:
            insert_frame(conn, table, fresh.drop(LINE))
            self._count("payments created", fresh.height)
            self._mark(fresh.get_column(LINE).to_numpy(), WRITTEN)
