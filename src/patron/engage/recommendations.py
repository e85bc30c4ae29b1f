"""Each customer's recommended products, trained on the store's purchases and read back for pages, the API and sends.

``train_recommendations`` evaluates the candidates (``recommend.evaluate``) on a time split, refits the winner on the
whole history and stores its top k for every customer with one, with each product's latest unit price; the run keeps
every candidate's figures, so "why this model" is answered by the run itself. ``recommendations_for`` reads a
customer's list (dropping what they bought since), or the popular list for a customer with no history, saying so.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Literal

import polars as pl
from sqlalchemy import Engine, delete, insert, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.money import format_money
from patron.engage.recommend import CANDIDATES, default_split, evaluate, purchases
from patron.engage.schema import Recommendation, RecommendedProduct, RecommenderRun
from patron.errors import InvalidInputError

RUNS, RECOMMENDATIONS, PRODUCTS = table_of(RecommenderRun), table_of(Recommendation), table_of(RecommendedProduct)
CATALOGUE = table_of(s.Product)
KEPT_RUNS = 2
LABELS = {"als": "ALS matrix-factorisation", "bpr": "BPR matrix-factorisation", "item-item": "item-to-item"}
POPULAR = 50


@dataclass(frozen=True)
class TrainedRecommender:
    run_id: int
    model: str
    split: dt.date
    k: int
    tested: int
    hit_rate: dict[str, float]
    ndcg: dict[str, float]
    customers: int
    seconds: float


def train_recommendations(
    engine: Engine, *, source: str | None = None, split: dt.date | None = None, k: int = 10
) -> TrainedRecommender:
    """Choose a recommender on a time split, refit it on every purchase and store each customer's top ``k``."""
    started = time.perf_counter()
    bought = purchases(engine, item="product", source=source)
    if bought.is_empty():
        raise InvalidInputError(
            "no purchases with a product yet: map a product (sku) column in the orders to get recommendations",
            field="source",
        )
    split = split or default_split(bought)
    evaluation = evaluate(bought, split, k=k)
    model = CANDIDATES[evaluation.chosen]().fit(bought)
    customers = bought["customer_id"].unique().sort().to_list()
    chosen = model.recommend_many(customers, k)
    popular = model.popular(POPULAR)
    prices = bought.sort("day").group_by("item").agg(pl.col("unit_price_minor").last(), pl.col("currency").last())
    wanted = {item for items in chosen.values() for item, _ in items} | {item for item, _ in popular}
    popular_rank = {item: rank for rank, (item, _) in enumerate(popular, start=1)}
    with engine.begin() as conn:
        run_id = int(
            conn.execute(
                insert(RUNS).values(
                    source=source, model=evaluation.chosen, split=split, k=k, tested=evaluation.customers,
                    metrics={name: {"hit_rate": evaluation.hit_rate[name], "ndcg": evaluation.ndcg[name]}
                             for name in evaluation.hit_rate},
                    customers=len(customers), seconds=0.0,
                ).returning(RUNS.c.id)
            ).scalar_one()
        )  # fmt: skip
        products = [
            {"run_id": run_id, "product_id": int(item), "unit_price_minor": price, "currency": currency,
             "popular_rank": popular_rank.get(item)}
            for item, price, currency in prices.filter(pl.col("item").is_in(list(wanted))).iter_rows()
        ]  # fmt: skip
        if products:  # none when nothing is still sold
            conn.execute(insert(PRODUCTS), products)
        rows = [
            {"run_id": run_id, "customer_id": customer, "rank": rank, "product_id": int(item), "score": score}
            for customer, items in chosen.items()
            for rank, (item, score) in enumerate(items, start=1)
        ]
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(RECOMMENDATIONS), rows[start : start + 10_000])
        seconds = time.perf_counter() - started
        conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(seconds=seconds))
        older = select(RUNS.c.id).where(RUNS.c.id < run_id).order_by(RUNS.c.id.desc()).offset(KEPT_RUNS - 1)
        stale = [row for (row,) in conn.execute(older)]
        if stale:  # their recommendations and products go with them (ON DELETE CASCADE)
            conn.execute(delete(RUNS).where(RUNS.c.id.in_(stale)))
    return TrainedRecommender(
        run_id, evaluation.chosen, split, k, evaluation.customers, evaluation.hit_rate, evaluation.ndcg,
        len(customers), seconds,
    )  # fmt: skip


@dataclass(frozen=True)
class RecommendedItem:
    product_id: int
    sku: str
    name: str
    unit_price_minor: int
    currency: str
    score: float

    @property
    def price(self) -> str:
        return format_money(self.unit_price_minor, self.currency)

    def as_context(self) -> dict[str, object]:
        """What a message template sees: ``{{ item.name }}``, ``{{ item.price }}``, ``{{ item.sku }}``."""
        return {"name": self.name, "sku": self.sku, "price": self.price, "product_id": self.product_id}


@dataclass(frozen=True)
class CustomerRecommendations:
    basis: Literal["personal", "popular", "none"]
    model: str | None
    run_id: int | None
    items: list[RecommendedItem]

    @property
    def explanation(self) -> str:
        if self.basis == "personal":
            label = LABELS.get(self.model or "", self.model)
            return f"chosen for this customer by the {label} recommender (run {self.run_id})"
        if self.basis == "popular":
            return "no purchase history yet: the products most customers buy (cold start)"
        return "no recommender has been trained: run `patron campaigns train-recommender` or a score run"


def recommendations_for(engine: Engine, customer_id: int, *, k: int = 3) -> CustomerRecommendations:
    """The customer's top ``k`` of the latest run, without what they bought since; the popular list for a
    customer the run had no history for."""
    item_columns = (
        PRODUCTS.c.product_id, CATALOGUE.c.sku, CATALOGUE.c.name, PRODUCTS.c.unit_price_minor, PRODUCTS.c.currency,
    )  # fmt: skip
    with engine.connect() as conn:
        latest = conn.execute(select(RUNS.c.id, RUNS.c.model).order_by(RUNS.c.id.desc()).limit(1)).first()
        if latest is None:
            return CustomerRecommendations("none", None, None, [])
        run_id, model = int(latest.id), str(latest.model)
        personal = conn.execute(
            select(*item_columns, RECOMMENDATIONS.c.score)
            .join(PRODUCTS, (PRODUCTS.c.run_id == RECOMMENDATIONS.c.run_id)
                  & (PRODUCTS.c.product_id == RECOMMENDATIONS.c.product_id))
            .join(CATALOGUE, CATALOGUE.c.id == RECOMMENDATIONS.c.product_id)
            .where(RECOMMENDATIONS.c.run_id == run_id, RECOMMENDATIONS.c.customer_id == customer_id)
            .order_by(RECOMMENDATIONS.c.rank)
        ).all()  # fmt: skip
        basis: Literal["personal", "popular"] = "personal"
        if not personal:
            basis = "popular"
            personal = conn.execute(
                select(*item_columns, -PRODUCTS.c.popular_rank)
                .join(CATALOGUE, CATALOGUE.c.id == PRODUCTS.c.product_id)
                .where(PRODUCTS.c.run_id == run_id, PRODUCTS.c.popular_rank.is_not(None))
                .order_by(PRODUCTS.c.popular_rank)
            ).all()
        candidates = [row[0] for row in personal]
        lines = table_of(s.OrderLine).c
        orders = table_of(s.Order).c
        owned = set(
            conn.scalars(
                select(lines.product_id)
                .distinct()
                .join(table_of(s.Order), orders.id == lines.order_id)
                .where(orders.customer_id == customer_id, lines.product_id.in_(candidates))
            )
        ) if candidates else set()  # fmt: skip
    items = [
        RecommendedItem(int(product), sku, name or sku, int(price), currency, float(score))
        for product, sku, name, price, currency, score in personal
        if product not in owned
    ]
    return CustomerRecommendations(basis, model, run_id, items[:k])
