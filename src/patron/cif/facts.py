"""Customer facts: what each customer bought and how often we heard from them, for one scope and as-of day.

The one place these figures are computed. Value lists, segment rules, predictive models, the strategy analyses and
the customer page all read them here, so a customer's revenue, order count and recency agree wherever they show.

A **scope** is one currency and, optionally, one order source (one business): money is never added across
currencies, and each currency's amounts are converted by its own minor-unit exponent (``cif/money.py``). The
**as-of day** defaults to the newest order's day in the scope, the "now" of the data (on a live store, today);
orders and interactions after the end of that day do not exist yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, Date, DateTime, Dialect, Engine, Numeric, Select, case, func, select

from patron.cif import schema as s
from patron.cif.money import to_major
from patron.cif.schema import purchases_only
from patron.cif.stamp import kept
from patron.errors import InvalidInputError
from patron.settings import get_settings

O = s.Order.__table__.c  # noqa: E741
L = s.OrderLine.__table__.c
CAT = s.Category.__table__.c
INTERACTIONS = s.Interaction.__table__.c
ORDER_LINES = s.Order.__table__.join(s.OrderLine.__table__, L.order_id == O.id)
YEAR = dt.timedelta(days=365)


@dataclass(frozen=True)
class Scope:
    """Which orders an analysis covers: one currency and one order source, or every source (``None``)."""

    source: str | None
    currency: str

    def __str__(self) -> str:
        return f"{self.source or 'all sources'} ({self.currency})"

    def orders_in(self, query: Select[Any]) -> Select[Any]:
        """``query`` (over ``orders``) limited to this scope's orders."""
        conditions = [O.currency == self.currency]
        if self.source is not None:
            conditions.append(O.source == self.source)
        return query.where(*conditions)


MONEY_FACTS = ("revenue", "margin", "revenue_last_year", "revenue_year_before")
# The columns as the statements read them: money in minor units, days as timestamps (converted after reading).
_PURCHASES_READ: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "orders": pl.Int64(), "purchase_days": pl.Int64(),
    **{name: pl.Int64() for name in MONEY_FACTS}, "first_order": pl.Datetime("us"), "last_order": pl.Datetime("us"),
}  # fmt: skip
_INTERACTIONS_READ: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "interactions": pl.Int64(), "complaints_last_year": pl.Int64()
}  # fmt: skip
_CATEGORIES_READ: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "category": pl.String(), "spend": pl.Int64(), "last_day": pl.Datetime("us")
}  # fmt: skip


def order_sources(engine: Engine) -> list[tuple[str, str, int]]:
    """(source, currency, orders) for every order source in the store, largest first (a count over every order:
    kept while the data is unchanged, as every analysis page's source picker asks for it)."""
    return kept(engine, "order_sources", lambda: _order_sources(engine))


def _order_sources(engine: Engine) -> list[tuple[str, str, int]]:
    query = (
        select(O.source, O.currency, func.count().label("orders"))
        .group_by(O.source, O.currency)
        .order_by(func.count().desc(), O.source)
    )
    with engine.connect() as conn:
        return [(row.source, row.currency, int(row.orders)) for row in conn.execute(query)]


def scope_choices(engine: Engine, source: str | None) -> tuple[list[tuple[str, str, int]], Scope | None]:
    """For a page's source picker: every order source (largest first) and the one to show, the asked one if it
    exists, else the largest (None in a store without orders)."""
    sources = order_sources(engine)
    chosen = next((item for item in sources if item[0] == source), sources[0] if sources else None)
    return sources, None if chosen is None else Scope(chosen[0], chosen[1])


def resolve_scope(engine: Engine, source: str | None = None, currency: str | None = None) -> Scope:
    """The requested source and currency, or the largest order source when none is named."""
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


def main_scope(engine: Engine) -> tuple[Scope, dt.date]:
    """Every source in the currency most orders are in (the scope of segment rules), and the day of its newest
    order; one pass over the orders, as the per-event path pays it on every call."""
    query = select(O.currency, func.count(), func.max(O.ordered_at)).group_by(O.currency)
    with engine.connect() as conn:
        totals = {currency: (int(orders), newest) for currency, orders, newest in conn.execute(query)}
    if not totals:  # an empty store: nothing to convert yet
        return Scope(None, get_settings().default_currency), dt.date.today()
    currency = max(sorted(totals), key=lambda code: totals[code][0])
    return Scope(None, currency), _day(totals[currency][1])


def as_of_day(engine: Engine, scope: Scope, as_of: dt.date | None = None) -> dt.date:
    """``as_of``, or the day of the newest order in the scope (today when the scope has no orders yet)."""
    if as_of is not None:
        return as_of
    with engine.connect() as conn:
        newest = conn.scalar(scope.orders_in(select(func.max(O.ordered_at))))
    return dt.date.today() if newest is None else _day(newest)


def _day(moment: Any) -> dt.date:
    """The day of a ``max(ordered_at)``: a datetime, or its text where SQLite loses the column type."""
    return moment.date() if isinstance(moment, dt.datetime) else dt.datetime.fromisoformat(str(moment)).date()


def end_of(day: dt.date) -> dt.datetime:
    """Orders and interactions up to the end of the as-of day count; later ones do not exist yet."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


ROWS_PER_CHUNK = 100_000


def read_frame(store: Engine | Connection, query: Select[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A statement's rows as a frame with the given column types (on a connection: inside its transaction)."""
    if isinstance(store, Engine):
        with store.connect() as conn:
            return read_frame(conn, query, schema)
    result = store.execute(query)
    if not _polars_can_convert(query, store.dialect):
        return pl.DataFrame(result.all(), schema=schema, orient="row")
    # SQLite hands dates and times back as text, which SQLAlchemy parses one value at a time in Python (a third
    # of building a million customers' features); Polars parses the whole column at once.
    temporal = {name for name, kind in schema.items() if kind.is_temporal()}
    read = {n: pl.String() if n in temporal else k for n, k in schema.items()}
    # A chunk of rows at a time: millions of rows held as Python tuples at once take hundreds of megabytes.
    chunks = [pl.DataFrame(schema=read)]
    while rows := result.cursor.fetchmany(ROWS_PER_CHUNK):
        chunks.append(pl.DataFrame(rows, schema=read, orient="row"))
    result.close()
    raw = pl.concat(chunks, rechunk=True)
    return raw.with_columns(_parsed_time(pl.col(name), schema[name]).alias(name) for name in temporal)


def _polars_can_convert(query: Select[Any], dialect: Dialect) -> bool:
    """Whether every selected column arrives from SQLite either as it should be or as text Polars parses."""
    if dialect.name != "sqlite":
        return False
    for column in query.selected_columns:
        kind = column.type
        if type(kind) in (DateTime, Date, Numeric):
            continue
        if kind._cached_result_processor(dialect, None) is not None:  # sealed personal data, booleans, JSON
            return False
    return True


def _parsed_time(text: pl.Expr, kind: pl.DataType) -> pl.Expr:
    """SQLite's text of a date or a time (``2026-12-02`` or ``2026-12-02 10:30:00[.123456]``) as ``kind``."""
    moment = pl.coalesce(
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False),
        text.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False),
        text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")),
    )
    return moment.cast(kind)


def only_customers(query: Select[Any], column: Any, ids: Sequence[int] | None) -> Select[Any]:
    """``query`` limited to some customers (``column`` holds the customer id); all of them when ``ids`` is None."""
    return query if ids is None else query.where(column.in_(list(ids)))


def purchase_facts(
    engine: Engine,
    scope: Scope,
    as_of: dt.date,
    customer_ids: Sequence[int] | None = None,
    *,
    facts: Collection[str] | None = None,
) -> pl.DataFrame:
    """One row per customer with an order in the scope up to ``as_of``: counts, money (major units), recency.

    ``orders`` counts orders, ``purchase_days`` the distinct days with an order (returns count in neither, and
    their negative revenue nets the money); ``margin`` is null when no line of the customer has a known margin.
    Last year is the 365 days ending with the as-of day. ``facts`` names the columns wanted (default all;
    ``days_since_last_order`` comes with ``last_order``): each distinct count sorts every line, so a caller that
    needs few asks for few.
    """
    year_ago, two_years_ago = end_of(as_of - YEAR), end_of(as_of - 2 * YEAR)
    last_year = O.ordered_at >= year_ago
    year_before = (O.ordered_at >= two_years_ago) & (O.ordered_at < year_ago)
    aggregates = {
        "orders": func.count(func.distinct(purchases_only(O.id))),
        "purchase_days": func.count(func.distinct(purchases_only(func.date(O.ordered_at)))),
        "revenue": func.sum(L.revenue_minor),
        "margin": func.sum(L.margin_minor),
        "revenue_last_year": func.sum(case((last_year, L.revenue_minor), else_=0)),
        "revenue_year_before": func.sum(case((year_before, L.revenue_minor), else_=0)),
        "first_order": func.min(purchases_only(O.ordered_at)),
        "last_order": func.max(purchases_only(O.ordered_at)),
    }
    chosen = [name for name in aggregates if facts is None or name in facts]
    query = (
        select(O.customer_id, *(aggregates[name] for name in chosen))
        .select_from(ORDER_LINES)
        .where(O.ordered_at < end_of(as_of))
        .group_by(O.customer_id)
    )
    read = {"customer_id": _PURCHASES_READ["customer_id"], **{name: _PURCHASES_READ[name] for name in chosen}}
    frame = read_frame(engine, only_customers(scope.orders_in(query), O.customer_id, customer_ids), read)
    days = [name for name in ("first_order", "last_order") if name in chosen]
    frame = frame.with_columns(
        *(to_major(pl.col(name), scope.currency) for name in MONEY_FACTS if name in chosen), pl.col(days).cast(pl.Date)
    )
    if "last_order" not in chosen:
        return frame
    return frame.with_columns((pl.lit(as_of) - pl.col("last_order")).dt.total_days().alias("days_since_last_order"))


def interaction_facts(engine: Engine, as_of: dt.date, customer_ids: Sequence[int] | None = None) -> pl.DataFrame:
    """Interactions per customer up to ``as_of``, and complaints in the 365 days ending with it."""
    complaint = (INTERACTIONS.type == "complaint") & (INTERACTIONS.occurred_at >= end_of(as_of - YEAR))
    query = (
        select(INTERACTIONS.customer_id, func.count(), func.sum(case((complaint, 1), else_=0)))
        .where(INTERACTIONS.occurred_at < end_of(as_of))
        .group_by(INTERACTIONS.customer_id)
    )
    return read_frame(engine, only_customers(query, INTERACTIONS.customer_id, customer_ids), _INTERACTIONS_READ)


def category_facts(
    engine: Engine, scope: Scope, as_of: dt.date, customer_ids: Sequence[int] | None = None
) -> pl.DataFrame:
    """Spend per customer and category (major units) and the last day the customer bought in it (revenue > 0)."""
    bought = case((L.revenue_minor > 0, O.ordered_at))
    query = (
        select(O.customer_id, CAT.name, func.sum(L.revenue_minor), func.max(bought))
        .select_from(ORDER_LINES.join(s.Category.__table__, CAT.id == L.category_id))
        .where(O.ordered_at < end_of(as_of))
        .group_by(O.customer_id, CAT.name)
    )
    frame = read_frame(engine, only_customers(scope.orders_in(query), O.customer_id, customer_ids), _CATEGORIES_READ)
    return frame.with_columns(to_major(pl.col("spend"), scope.currency), pl.col("last_day").cast(pl.Date))


@dataclass(frozen=True)
class CustomerFacts:
    """The facts of one scope on one day; ``customers`` holds purchases and interactions joined per customer."""

    scope: Scope
    as_of: dt.date
    customers: pl.DataFrame


def customer_facts(
    engine: Engine, scope: Scope, *, as_of: dt.date | None = None, customer_ids: Sequence[int] | None = None
) -> CustomerFacts:
    """Purchase and interaction facts of every customer who bought in the scope (or of ``customer_ids``)."""
    day = as_of_day(engine, scope, as_of)
    purchases = purchase_facts(engine, scope, day, customer_ids)
    interactions = interaction_facts(engine, day, customer_ids)
    frame = purchases.join(interactions, on="customer_id", how="left").with_columns(
        pl.col("interactions", "complaints_last_year").fill_null(0)
    )
    return CustomerFacts(scope, day, frame.sort("customer_id"))


def facts_of_customer(engine: Engine, customer_id: int) -> list[dict[str, Any]]:
    """One customer's purchase facts in each scope they bought in (source and currency), as the lists see them."""
    with engine.connect() as conn:
        scopes = conn.execute(
            select(O.source, O.currency).where(O.customer_id == customer_id).distinct().order_by(O.source, O.currency)
        ).all()
    found = []
    for source, currency in scopes:
        scope = Scope(source, currency)
        day = as_of_day(engine, scope)
        rows = purchase_facts(engine, scope, day, [customer_id]).to_dicts()
        found += [{"source": source, "currency": currency, "as_of": day, **row} for row in rows]
    return found
