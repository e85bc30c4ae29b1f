"""Order lines from the store as a transactions frame for the value engine, in one currency and one source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Engine, Select, func, select

from patron.cif import schema as s
from patron.cif.money import minor_exponent
from patron.errors import InvalidInputError

O = s.Order.__table__.c  # noqa: E741
L = s.OrderLine.__table__.c
CAT = s.Category.__table__.c


@dataclass(frozen=True)
class Scope:
    """Which orders a value analysis covers: one order source (one business) and one currency."""

    source: str
    currency: str


def order_sources(engine: Engine) -> list[tuple[str, str, int]]:
    """(source, currency, orders) for every order source in the store, largest first."""
    query = (
        select(O.source, O.currency, func.count().label("orders"))
        .group_by(O.source, O.currency)
        .order_by(func.count().desc(), O.source)
    )
    with engine.connect() as conn:
        return [(row.source, row.currency, int(row.orders)) for row in conn.execute(query)]


def resolve_scope(engine: Engine, source: str | None = None, currency: str | None = None) -> Scope:
    """The requested scope, or the largest order source when none is named."""
    sources = order_sources(engine)
    if not sources:
        raise InvalidInputError("the store holds no orders yet: import order data (or run `patron demo`) first")
    matching = [
        item for item in sources if (source is None or item[0] == source) and (currency is None or item[1] == currency)
    ]
    if not matching:
        known = ", ".join(f"{name} ({code})" for name, code, _ in sources)
        wanted = f"source {source or 'any'} in {currency or 'any currency'}"
        raise InvalidInputError(f"there are no orders for {wanted}; the store has: {known}", field="source")
    chosen_source, chosen_currency, _ = matching[0]
    return Scope(chosen_source, chosen_currency)


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
    unit = 10 ** minor_exponent(currency)
    return frame.with_columns(
        (pl.col(f"{name}_minor") / unit).alias(name) for name in ("revenue", "cost", "margin")
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
    return query.where(O.source == scope.source, O.currency == scope.currency)
