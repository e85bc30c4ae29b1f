"""Order lines from the store as a transactions frame for the value engine, in one currency and one source."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine, Select, select

from patron.cif import schema as s
from patron.cif.facts import Scope
from patron.cif.money import to_major

O = s.Order.__table__.c  # noqa: E741
L = s.OrderLine.__table__.c
CAT = s.Category.__table__.c


def load_transactions(engine: Engine, scope: Scope, *, with_categories: bool = False) -> pl.DataFrame:
    """One row per order line: customer_id, at, revenue, cost, margin (major units) and optionally category."""
    schema = pl.Schema(
        {
            "customer_id": pl.Int64(),
            "at": pl.Datetime("us"),
            "revenue_minor": pl.Int64(),
            "cost_minor": pl.Int64(),
            "margin_minor": pl.Int64(),
            **({"category": pl.String()} if with_categories else {}),
        }
    )
    with engine.connect() as conn:
        rows = conn.execute(transactions_query(scope, with_categories=with_categories)).all()
    return to_major_units(pl.DataFrame(rows, schema=schema, orient="row"), scope.currency)


def to_major_units(frame: pl.DataFrame, currency: str) -> pl.DataFrame:
    """revenue_minor, cost_minor, margin_minor (integers) → revenue, cost, margin in the currency's major unit."""
    return frame.with_columns(
        to_major(pl.col(f"{name}_minor"), currency).alias(name) for name in ("revenue", "cost", "margin")
    ).drop("revenue_minor", "cost_minor", "margin_minor")


def transactions_query(scope: Scope, *, with_categories: bool = False) -> Select[Any]:
    """The order lines of ``scope`` in minor units (also what Spark sends to PostgreSQL over JDBC)."""
    columns = [
        O.customer_id,
        O.ordered_at.label("at"),
        L.revenue_minor,
        L.cost_minor,
        L.margin_minor,
    ]
    query = select(*columns).select_from(s.Order.__table__.join(s.OrderLine.__table__, L.order_id == O.id))
    if with_categories:
        query = query.add_columns(CAT.name.label("category")).outerjoin(s.Category.__table__, CAT.id == L.category_id)
    return scope.orders_in(query)
