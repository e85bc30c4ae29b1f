"""The customer base as one frame: the customer facts of one scope, the categories bought, and the latest scores.

Every differentiation list is a function of this frame, so they all see the same customers on the same date; the
figures themselves come from ``cif/facts.py``, like those of segment rules, models and the customer page.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.facts import O, Scope, category_facts, customer_facts, resolve_scope
from patron.cif.stamp import kept
from patron.value.latest import latest_scores

C = s.Customer.__table__.c


def customer_base(
    engine: Engine,
    *,
    source: str | None = None,
    currency: str | None = None,
    as_of: dt.date | None = None,
) -> tuple[pl.DataFrame, Scope, dt.date]:
    """One row per customer with an order in the scope, as of ``as_of`` (default: the last order's day); kept in
    memory while the data is unchanged (``cif/stamp.py``): the dashboard and the value lists read it on every view."""
    scope = resolve_scope(engine, source, currency)
    return kept(engine, ("customer_base", scope, as_of), lambda: _customer_base(engine, scope, as_of))


def _customer_base(engine: Engine, scope: Scope, as_of: dt.date | None) -> tuple[pl.DataFrame, Scope, dt.date]:
    facts = customer_facts(engine, scope, as_of=as_of)
    # A category counts as bought when the customer spent something in it.
    categories = (
        category_facts(engine, scope, facts.as_of)
        .filter(pl.col("last_day").is_not_null())
        .group_by("customer_id")
        .agg(pl.col("category").sort().alias("categories"))
    )
    scores = latest_scores(engine, scope=scope).select("customer_id", "clv", "p_alive", "value_at_risk", "tier")
    frame = (
        facts.customers.join(categories, on="customer_id", how="left")
        .with_columns(
            pl.col("categories").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
        .with_columns(pl.col("categories").list.len().cast(pl.Int64).alias("category_count"))
        .join(_names(engine, scope), on="customer_id", how="left")
        .join(scores, on="customer_id", how="left")
    )
    return frame.sort("customer_id"), scope, facts.as_of


def _names(engine: Engine, scope: Scope) -> pl.DataFrame:
    buyers = scope.orders_in(select(O.customer_id)).distinct()
    with engine.connect() as conn:
        rows = conn.execute(select(C.id, C.display_name).where(C.id.in_(buyers))).all()
    return pl.DataFrame(rows, schema={"customer_id": pl.Int64, "name": pl.String}, orient="row")
