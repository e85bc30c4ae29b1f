"""The customer base as one frame: history, recent and earlier spend, categories, complaints and the latest scores.

Every differentiation list is a function of this frame, so they all see the same customers on the same date.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import Engine, Select, select

from patron.cif import schema as s
from patron.cif.money import minor_exponent
from patron.errors import NotFoundError
from patron.value.scoring import latest_run_id, run_scores
from patron.value.transactions import Scope, load_transactions, resolve_scope

YEAR = dt.timedelta(days=365)
C = s.Customer.__table__.c
INTERACTIONS = s.Interaction.__table__.c
ORDERS = s.Order.__table__.c


def customer_base(
    engine: Engine,
    *,
    source: str | None = None,
    currency: str | None = None,
    as_of: dt.date | None = None,
    run_id: int | None = None,
) -> tuple[pl.DataFrame, Scope, dt.date]:
    """One row per customer with an order in the scope, as of ``as_of`` (default: the last order's day)."""
    scope = resolve_scope(engine, source, currency)
    lines = load_transactions(engine, scope, with_categories=True).with_columns(pl.col("at").cast(pl.Date).alias("day"))
    as_of = as_of or lines["day"].max()  # type: ignore[assignment]
    assert isinstance(as_of, dt.date)
    lines = lines.filter(pl.col("day") <= as_of)
    last_year = pl.col("day") > as_of - YEAR
    year_before = (pl.col("day") > as_of - 2 * YEAR) & ~last_year
    history = lines.group_by("customer_id").agg(
        pl.col("day").min().alias("first_order"),
        pl.col("day").max().alias("last_order"),
        pl.col("day").n_unique().alias("purchase_days"),
        pl.col("revenue").sum(),
        pl.when(pl.col("margin").is_not_null().any()).then(pl.col("margin").sum()).alias("margin"),
        pl.col("revenue").filter(last_year).sum().alias("revenue_last_year"),
        pl.col("revenue").filter(year_before).sum().alias("revenue_year_before"),
        # A category counts as bought when the customer spent something in it.
        pl.col("category").filter(pl.col("revenue") > 0).drop_nulls().unique().sort().alias("categories"),
    )
    frame = (
        history.with_columns(
            (pl.lit(as_of) - pl.col("last_order")).dt.total_days().alias("days_since_last_order"),
            pl.col("categories").list.len().alias("category_count"),
        )
        .join(_names(engine, scope), on="customer_id", how="left")
        .join(_interactions(engine, scope, as_of), on="customer_id", how="left")
        .with_columns(pl.col("interactions", "complaints_last_year").fill_null(0))
        .join(_latest_scores(engine, scope, run_id), on="customer_id", how="left")
    )
    return frame.sort("customer_id"), scope, as_of


def _customers_in(scope: Scope) -> Select[tuple[int]]:
    return select(ORDERS.customer_id).where(ORDERS.source == scope.source, ORDERS.currency == scope.currency).distinct()


def _names(engine: Engine, scope: Scope) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(C.id, C.display_name).where(C.id.in_(_customers_in(scope)))).all()
    return pl.DataFrame(rows, schema={"customer_id": pl.Int64, "name": pl.String}, orient="row")


def _interactions(engine: Engine, scope: Scope, as_of: dt.date) -> pl.DataFrame:
    query = select(INTERACTIONS.customer_id, INTERACTIONS.occurred_at, INTERACTIONS.type).where(
        INTERACTIONS.customer_id.in_(_customers_in(scope))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pl.DataFrame(
        rows, schema={"customer_id": pl.Int64, "at": pl.Datetime("us"), "type": pl.String}, orient="row"
    ).with_columns(pl.col("at").cast(pl.Date))
    recent_complaint = (pl.col("type") == "complaint") & (pl.col("at") > as_of - YEAR) & (pl.col("at") <= as_of)
    return frame.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("interactions"),
        recent_complaint.sum().cast(pl.Int64).alias("complaints_last_year"),
    )


def _latest_scores(engine: Engine, scope: Scope, run_id: int | None) -> pl.DataFrame:
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.Int64,
            "clv": pl.Float64,
            "p_alive": pl.Float64,
            "value_at_risk": pl.Float64,
            "tier": pl.String,
        }
    )
    try:
        run = run_id if run_id is not None else latest_run_id(engine, scope.source)
    except NotFoundError:
        return empty
    scores = run_scores(engine, run)
    if scores.height == 0:
        return empty
    unit = 10 ** minor_exponent(scope.currency)
    return scores.select(
        "customer_id",
        (pl.col("clv_minor") / unit).alias("clv"),
        "p_alive",
        (pl.col("value_at_risk_minor") / unit).alias("value_at_risk"),
        "tier",
    )
