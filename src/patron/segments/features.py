"""The customer feature frame: one row per customer with every field a segment rule or a model may use.

Fields: the customer record (kind, status, source, acquisition), the profile, the extensible attributes as
``attributes.<key>``, order aggregates, interaction counts, campaign responses as ``responded.<campaign>``, and
the latest value scores, and spend per product category as ``spend.<category>``. The date of the last purchase
per category lives in a second, long frame for ``bought(...)``.
Built column-wise from a few queries; restricted to some customers it is the incremental path for one event.
The purchase, interaction and score fields are the customer facts of one scope (``cif/facts.py``, by default every
source in the store's main currency) and the latest scores (``value/latest.py``): the same figures the value lists
and the customer page show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.facts import (
    Scope,
    as_of_day,
    category_facts,
    interaction_facts,
    main_scope,
    only_customers,
    purchase_facts,
    read_frame,
)  # fmt: skip
from patron.cif.money import to_major
from patron.value.latest import latest_scores

C = s.Customer.__table__.c
P = s.CustomerProfile.__table__.c
A = s.CustomerAttribute.__table__.c
CAT = s.Category.__table__.c
RESPONSES = s.CampaignResponse.__table__.c
CAMPAIGNS = s.Campaign.__table__.c

PROFILE_COLUMNS = {
    "birth_year": pl.Int64, "gender": pl.String, "education": pl.String, "marital_status": pl.String,
    "income": pl.Float64, "children_at_home": pl.Int64, "teens_at_home": pl.Int64, "city": pl.String,
    "region": pl.String, "country": pl.String, "industry": pl.String, "employees": pl.Int64,
}  # fmt: skip
ATTRIBUTE_TYPES = {"number": pl.Float64, "boolean": pl.Boolean, "date": pl.Date, "text": pl.String}
STATIC_FIELDS: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "kind": pl.String(), "status": pl.String(), "source": pl.String(),
    "acquired_on": pl.Date(), "acquisition_channel": pl.String(),
    **{name: dtype() for name, dtype in PROFILE_COLUMNS.items()},
    "orders": pl.Int64(), "revenue": pl.Float64(), "first_order": pl.Date(), "last_order": pl.Date(),
    "days_since_last_order": pl.Int64(), "interactions": pl.Int64(), "complaints_last_year": pl.Int64(),
    "tier": pl.String(), "clv": pl.Float64(), "p_alive": pl.Float64(), "value_at_risk": pl.Float64(),
    "expected_purchases": pl.Float64(),
}  # fmt: skip

ORDER_FIELDS = ("customer_id", "orders", "revenue", "first_order", "last_order", "days_since_last_order")
SCORE_FIELDS = ("tier", "clv", "p_alive", "value_at_risk", "expected_purchases")
PART_OF = {
    **dict.fromkeys(ORDER_FIELDS[1:], "orders"),
    **dict.fromkeys(("interactions", "complaints_last_year"), "interactions"),
    **dict.fromkeys(SCORE_FIELDS, "scores"),
    "bought": "bought",
}
ALL_PARTS = ("profile", "attributes", "orders", "interactions", "responded", "spend", "scores", "bought")

# Which fields an event can change: segments using none of them need not be re-evaluated.
EVENT_FIELDS: dict[str, frozenset[str]] = {
    "purchase": frozenset(
        {"orders", "revenue", "first_order", "last_order", "days_since_last_order", "bought", "spend.*"}
    ),
    "interaction": frozenset({"interactions", "complaints_last_year"}),
    "score": frozenset({"tier", "clv", "p_alive", "value_at_risk", "expected_purchases"}),
    "profile": frozenset(
        {"kind", "status", "source", "acquired_on", "acquisition_channel", *PROFILE_COLUMNS, "attributes.*"}
    ),
    "response": frozenset({"responded.*"}),
}


@dataclass(frozen=True)
class Features:
    customers: pl.DataFrame  # one row per customer
    categories: pl.DataFrame  # customer_id, category, last_day: the last purchase in each category
    as_of: dt.date
    scope: Scope | None = None  # the money and purchase fields' scope


def parts_for(fields: Iterable[str]) -> set[str]:
    """Which parts of the frame the given fields need (the customer record itself is always read)."""
    parts: set[str] = set()
    for name in fields:
        if name in PROFILE_COLUMNS:
            parts.add("profile")
        elif "." in name:
            parts.add(name.split(".", 1)[0])
        elif name in PART_OF:
            parts.add(PART_OF[name])
    return parts


def build_features(
    engine: Engine,
    *,
    as_of: dt.date | None = None,
    customer_ids: Sequence[int] | None = None,
    parts: Iterable[str] | None = None,
    scope: Scope | None = None,
) -> Features:
    """The feature frame for every customer (or only ``customer_ids``) in ``scope``, as of ``as_of``.

    ``scope`` defaults to every source in the main currency (``cif.facts.main_scope``), ``as_of`` to the newest
    order's day in the scope. ``parts`` limits the work to what some rules need (see :func:`parts_for`): one event,
    one customer, few queries.
    """
    if scope is None:
        scope, newest = main_scope(engine)
        as_of = as_of or newest
    else:
        as_of = as_of_day(engine, scope, as_of)
    wanted = set(ALL_PARTS if parts is None else parts)
    frame = read_frame(
        engine,
        only_customers(
            select(C.id, C.kind, C.status, C.source, C.acquired_on, C.acquisition_channel).where(
                C.status != "merged"
            ),
            C.id,
            customer_ids,
        ),
        {"customer_id": pl.Int64(), "kind": pl.String(), "status": pl.String(), "source": pl.String(),
         "acquired_on": pl.Date(), "acquisition_channel": pl.String()},
    )  # fmt: skip
    if "profile" in wanted:
        frame = frame.join(_profiles(engine, customer_ids, scope.currency), on="customer_id", how="left")
    readers: dict[str, Callable[[], pl.DataFrame]] = {
        "attributes": lambda: _attributes(engine, customer_ids),
        "orders": lambda: purchase_facts(engine, scope, as_of, customer_ids, facts=ORDER_FIELDS).select(*ORDER_FIELDS),
        "interactions": lambda: interaction_facts(engine, as_of, customer_ids),
        "responded": lambda: _responses(engine, customer_ids),
        "spend": lambda: _category_spend(engine, scope, customer_ids, as_of),
        "scores": lambda: latest_scores(engine, customer_ids=customer_ids).select("customer_id", *SCORE_FIELDS),
    }
    for part, read in readers.items():
        if part in wanted:
            frame = frame.join(read(), on="customer_id", how="left")
    zero = [c for c in ("orders", "interactions", "complaints_last_year") if c in frame.columns]
    responded = [c for c in frame.columns if c.startswith("responded.")]
    spend = [c for c in frame.columns if c.startswith("spend.") or c == "revenue"]
    frame = frame.with_columns(
        pl.col(zero).fill_null(0), pl.col(responded).fill_null(False), pl.col(spend).fill_null(0.0)
    )
    categories = (
        category_facts(engine, scope, as_of, customer_ids).filter(pl.col("last_day").is_not_null()).drop("spend")
        if "bought" in wanted
        else pl.DataFrame(schema={"customer_id": pl.Int64, "category": pl.String, "last_day": pl.Date})
    )
    return Features(frame.sort("customer_id"), categories, as_of, scope)


def _profiles(engine: Engine, ids: Sequence[int] | None, currency: str) -> pl.DataFrame:
    """The typed profile; income (stored in the importing mapping's currency) is read in the scope's currency."""
    columns = [P.customer_id, *(P.income_minor if n == "income" else P[n] for n in PROFILE_COLUMNS)]
    return read_frame(
        engine,
        only_customers(select(*columns), P.customer_id, ids),
        {"customer_id": pl.Int64(), **{n: (pl.Int64() if n == "income" else t()) for n, t in PROFILE_COLUMNS.items()}},
    ).with_columns(to_major(pl.col("income"), currency))


def _attributes(engine: Engine, ids: Sequence[int] | None) -> pl.DataFrame:
    rows = read_frame(
        engine,
        only_customers(
            select(A.customer_id, A.key, A.value_type, A.value_text, A.value_number, A.value_date), A.customer_id, ids
        ),
        {"customer_id": pl.Int64(), "key": pl.String(), "value_type": pl.String(), "value_text": pl.String(),
         "value_number": pl.Float64(), "value_date": pl.Date()},
    )  # fmt: skip
    frame = rows.select("customer_id").unique()
    for (key, value_type), group in rows.group_by("key", "value_type", maintain_order=True):
        name = f"attributes.{key}"
        if value_type == "number":
            values = group.select("customer_id", pl.col("value_number").alias(name))
        elif value_type == "boolean":
            values = group.select("customer_id", (pl.col("value_text") == "true").alias(name))
        elif value_type == "date":
            values = group.select("customer_id", pl.col("value_date").alias(name))
        else:
            values = group.select("customer_id", pl.col("value_text").alias(name))
        if name in frame.columns:  # one key stored with two types: keep it as text
            continue
        frame = frame.join(values, on="customer_id", how="left")
    return frame


def attribute_fields(engine: Engine) -> dict[str, pl.DataType]:
    """The attribute keys in the store with their types, without loading the values."""
    with engine.connect() as conn:
        rows = conn.execute(select(A.key, A.value_type).distinct()).all()
    return {f"attributes.{key}": ATTRIBUTE_TYPES[value_type]() for key, value_type in rows}


def response_fields(engine: Engine) -> dict[str, pl.DataType]:
    with engine.connect() as conn:
        keys = conn.scalars(select(CAMPAIGNS.campaign_key).distinct()).all()
    return {f"responded.{key}": pl.Boolean() for key in keys}


def spend_fields(engine: Engine) -> dict[str, pl.DataType]:
    with engine.connect() as conn:
        names = conn.scalars(select(CAT.name)).all()
    return {f"spend.{name}": pl.Float64() for name in names}


def feature_schema(engine: Engine) -> dict[str, pl.DataType]:
    """Every field a segment rule can name, with its type."""
    return {**STATIC_FIELDS, **attribute_fields(engine), **response_fields(engine), **spend_fields(engine)}


def _category_spend(engine: Engine, scope: Scope, ids: Sequence[int] | None, as_of: dt.date) -> pl.DataFrame:
    """Revenue per category as ``spend.<category>`` columns (major units of the scope's currency)."""
    rows = category_facts(engine, scope, as_of, ids)
    if rows.height == 0:
        return pl.DataFrame(schema={"customer_id": pl.Int64()})
    return rows.with_columns(("spend." + pl.col("category")).alias("category")).pivot(
        on="category", index="customer_id", values="spend"
    )


def _responses(engine: Engine, ids: Sequence[int] | None) -> pl.DataFrame:
    query = (
        select(RESPONSES.customer_id, CAMPAIGNS.campaign_key)
        .select_from(s.CampaignResponse.__table__.join(s.Campaign.__table__, CAMPAIGNS.id == RESPONSES.campaign_id))
        .distinct()
    )
    rows = read_frame(
        engine, only_customers(query, RESPONSES.customer_id, ids), {"customer_id": pl.Int64(), "campaign": pl.String()}
    )
    if rows.height == 0:
        return pl.DataFrame(schema={"customer_id": pl.Int64()})
    return (
        rows.with_columns(pl.lit(True).alias("responded"), ("responded." + pl.col("campaign")).alias("campaign"))
        .pivot(on="campaign", index="customer_id", values="responded")
        .with_columns(pl.exclude("customer_id").fill_null(False))
    )
