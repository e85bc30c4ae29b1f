"""Each customer's latest value scores: the one meaning of "the customer's tier, CLV and P(alive)".

A customer's latest scores are those of the newest score run that scored them, optionally among the runs of one
scope (a source and its currency). ``LATEST_SCORE`` reads one customer (prebuilt: profiles read it per request),
``latest_scores_statement`` many at once (a SQL statement other reads embed), ``latest_scores`` a frame with the
money in major units of each run's own currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Engine, Select, bindparam, func, select

from patron.cif.columns import table_of
from patron.cif.facts import Scope
from patron.cif.money import to_major
from patron.value.schema import CustomerScore, ScoreRun

RUNS = table_of(ScoreRun).c
SCORES = table_of(CustomerScore).c
_COLUMNS = (
    SCORES.customer_id, SCORES.run_id, RUNS.model, RUNS.as_of, RUNS.currency, SCORES.tier, SCORES.rank,
    SCORES.clv_minor, SCORES.p_alive, SCORES.expected_purchases, SCORES.value_at_risk_minor,
)  # fmt: skip

LATEST_SCORE = (
    select(*_COLUMNS)
    .join(table_of(ScoreRun), RUNS.id == SCORES.run_id)
    .where(SCORES.customer_id == bindparam("customer_id"))
    .order_by(SCORES.run_id.desc())
    .limit(1)
)  # one customer's scores in the newest run that scored them; built once: every profile reads it


def latest_scores_statement(customers: ColumnElement[bool] | None = None, scope: Scope | None = None) -> Select[Any]:
    """Every customer's (or those ``customers`` selects) scores from the newest run that scored them."""
    newest = select(SCORES.customer_id, func.max(SCORES.run_id).label("run_id")).group_by(SCORES.customer_id)
    if customers is not None:
        newest = newest.where(customers)
    if scope is not None:
        runs = select(RUNS.id).where(RUNS.currency == scope.currency)
        if scope.source is not None:
            runs = runs.where(RUNS.source == scope.source)
        newest = newest.where(SCORES.run_id.in_(runs))
    chosen = newest.subquery()
    return (
        select(*_COLUMNS)
        .join(table_of(ScoreRun), RUNS.id == SCORES.run_id)
        .join(chosen, (chosen.c.customer_id == SCORES.customer_id) & (chosen.c.run_id == SCORES.run_id))
    )


SCORE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "run_id": pl.Int64(), "tier": pl.String(), "clv": pl.Float64(),
    "p_alive": pl.Float64(), "value_at_risk": pl.Float64(), "expected_purchases": pl.Float64(),
    "currency": pl.String(),
}  # fmt: skip


def latest_scores(
    engine: Engine, *, scope: Scope | None = None, customer_ids: Sequence[int] | None = None
) -> pl.DataFrame:
    """customer_id, run_id, tier, clv, p_alive, value_at_risk, expected_purchases, currency (money: major units)."""
    only = SCORES.customer_id.in_(list(customer_ids)) if customer_ids is not None else None
    with engine.connect() as conn:
        rows = conn.execute(latest_scores_statement(only, scope)).mappings().all()
    if not rows:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    frame = pl.DataFrame([dict(row) for row in rows], infer_schema_length=None)
    parts = []
    for (currency,), group in frame.group_by("currency"):
        parts.append(
            group.select(
                pl.col("customer_id").cast(pl.Int64),
                pl.col("run_id").cast(pl.Int64),
                pl.col("tier").cast(pl.String),
                to_major(pl.col("clv_minor"), str(currency)).alias("clv"),
                pl.col("p_alive").cast(pl.Float64),
                to_major(pl.col("value_at_risk_minor"), str(currency)).alias("value_at_risk"),
                pl.col("expected_purchases").cast(pl.Float64),
                pl.col("currency").cast(pl.String),
            )
        )
    return pl.concat(parts).sort("customer_id")
