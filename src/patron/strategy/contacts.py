"""Budget by incremental value, customer by customer: whom to contact when each contact costs money.

A contact is worth its *incremental* value: the customer's predicted uplift (the change in their response
probability the contact causes, from an uplift model) times what a response is worth to us (their CLV, or a fixed
value per response), minus the contact's cost. Contacting a customer with a non-positive incremental value loses
money however likely they are to respond (they would have responded anyway, or not at all). Under a budget the
customers are taken by incremental value per unit of cost: with equal costs this is the optimum, and with unequal
ones it falls short of the optimum by less than one customer's incremental value (the greedy knapsack bound).
Media-mix tools allocate a budget between channels; this allocates it between customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine

from patron.errors import InvalidInputError
from patron.predict.campaign_uplift import uplift_scores
from patron.segments.expression import compile_rule
from patron.segments.features import build_features, feature_schema
from patron.segments.rules import members_of
from patron.value.latest import latest_scores


@dataclass(frozen=True)
class ContactPlan:
    customers: pl.DataFrame  # customer_id, uplift, value, cost, incremental, contact (bool), best first
    budget: float | None
    value_basis: str
    contacted: int
    spend: float
    expected_incremental: float
    everyone: int  # "contact everyone in the segment": how many, at what cost, for what incremental value
    everyone_spend: float
    everyone_incremental: float


def allocate_contacts(candidates: pl.DataFrame, budget: float | None = None, *, value_basis: str = "") -> ContactPlan:
    """``candidates``: customer_id, uplift, value, cost. Contact the positive incremental values, best value per
    unit of cost first, until ``budget`` (None: no limit) is spent."""
    if candidates.filter(pl.col("cost") < 0).height:
        raise InvalidInputError("a contact cannot cost less than nothing", field="cost")
    if budget is not None and budget < 0:
        raise InvalidInputError("the budget cannot be negative", field="budget")
    ranked = candidates.with_columns((pl.col("uplift") * pl.col("value") - pl.col("cost")).alias("incremental"))
    ratio = pl.when(pl.col("cost") > 0).then(pl.col("incremental") / pl.col("cost")).otherwise(float("inf"))
    ranked = ranked.sort([ratio, "customer_id"], descending=[True, False])
    worth_it = pl.col("incremental") > 0
    spent = pl.when(worth_it).then(pl.col("cost")).otherwise(0.0).cum_sum()
    within = spent <= budget if budget is not None else pl.lit(True)
    ranked = ranked.with_columns((worth_it & within).alias("contact"))
    chosen = ranked.filter("contact")
    return ContactPlan(
        ranked, budget, value_basis, chosen.height, float(chosen["cost"].sum()), float(chosen["incremental"].sum()),
        ranked.height, float(ranked["cost"].sum()), float(ranked["incremental"].sum()),
    )  # fmt: skip


def contact_plan(
    engine: Engine, *, uplift_model: str, cost: float, budget: float | None = None, rule: str | None = None,
    value_per_response: float | None = None,
) -> ContactPlan:  # fmt: skip
    """Whom to contact in the segment ``rule`` (default: everyone scored): uplift × (CLV, or ``value_per_response``)
    − ``cost``, best first, within ``budget``."""
    uplift = uplift_scores(engine, uplift_model)
    frame = pl.DataFrame(
        {"customer_id": list(uplift), "uplift": list(uplift.values())},
        schema={"customer_id": pl.Int64, "uplift": pl.Float64},
    )
    if rule:
        schema = feature_schema(engine)
        members = members_of(build_features(engine), compile_rule(rule, schema), schema)
        frame = frame.filter(pl.col("customer_id").is_in(members.implode()))
    if value_per_response is not None:
        basis = f"{value_per_response:g}"
        frame = frame.with_columns(pl.lit(value_per_response).alias("value"))
    else:
        values = latest_scores(engine, customer_ids=frame["customer_id"].to_list())
        if values.is_empty():
            raise InvalidInputError(
                "these customers have no lifetime value yet: run `patron score` or give a value per response",
                field="value_per_response",
            )
        basis = "each customer's CLV"
        frame = frame.join(values.select("customer_id", pl.col("clv").alias("value")), on="customer_id")
    return allocate_contacts(frame.with_columns(pl.lit(cost).alias("cost")), budget, value_basis=basis)
