"""Recommendations from purchases: item-to-item collaborative filtering against a popularity baseline, and their
offline evaluation by hit-rate@k on a time split.

Item-to-item (Linden, Smith & York 2003, "Amazon.com recommendations: item-to-item collaborative filtering",
IEEE Internet Computing 7(1)): items are similar when the same customers buy both (cosine of their buyer vectors);
a customer's score for an item is the summed similarity to what they bought. Computed with scipy.sparse, so it
stays a few sparse products even for large catalogues. Items the customer already bought are never recommended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import sparse
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.errors import InvalidInputError

Item = Literal["product", "category"]
ORDERS, LINES = table_of(s.Order).c, table_of(s.OrderLine).c
PRODUCTS, CATEGORIES = table_of(s.Product).c, table_of(s.Category).c


def purchases(engine: Engine, *, item: Item = "product", source: str | None = None) -> pl.DataFrame:
    """customer_id, item, day: every positive order line with its product (sku) or category name."""
    label = PRODUCTS.sku if item == "product" else CATEGORIES.name
    joined = table_of(s.Order).join(table_of(s.OrderLine), LINES.order_id == ORDERS.id)
    joined = (
        joined.join(table_of(s.Product), PRODUCTS.id == LINES.product_id)
        if item == "product"
        else joined.join(table_of(s.Category), CATEGORIES.id == LINES.category_id)
    )
    query = (
        select(ORDERS.customer_id, label.label("item"), ORDERS.ordered_at)
        .select_from(joined)
        .where(LINES.revenue_minor > 0)
    )
    if source:
        query = query.where(ORDERS.source == source)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pl.DataFrame(
        rows, schema={"customer_id": pl.Int64, "item": pl.String, "at": pl.Datetime("us")}, orient="row"
    )
    return frame.select("customer_id", "item", pl.col("at").cast(pl.Date).alias("day"))


@dataclass
class _Matrix:
    customers: dict[int, int]
    items: list[str]
    bought: sparse.csr_matrix  # customers × items, 1 where bought


def _matrix(pairs: pl.DataFrame, items: list[str] | None = None) -> _Matrix:
    unique = pairs.select("customer_id", "item").unique()
    items = items or sorted(unique["item"].unique().to_list())
    item_index = {name: i for i, name in enumerate(items)}
    unique = unique.filter(pl.col("item").is_in(items))
    customers = {c: i for i, c in enumerate(sorted(unique["customer_id"].unique().to_list()))}
    rows = np.array([customers[c] for c in unique["customer_id"].to_list()], dtype=np.int64)
    cols = np.array([item_index[i] for i in unique["item"].to_list()], dtype=np.int64)
    data = np.ones(len(rows))
    return _Matrix(customers, items, sparse.csr_matrix((data, (rows, cols)), shape=(len(customers), len(items))))


class PopularityRecommender:
    """The baseline: the most-bought items the customer does not have yet."""

    def fit(self, pairs: pl.DataFrame) -> PopularityRecommender:
        self.m = _matrix(pairs)
        self.popularity = np.asarray(self.m.bought.sum(axis=0)).ravel()
        return self

    def scores(self, customer_id: int) -> np.ndarray:
        return self.popularity.astype(float)

    def recommend(self, customer_id: int, k: int = 10) -> list[str]:
        return _top(self.scores(customer_id), self._owned(customer_id), self.m.items, k)

    def _owned(self, customer_id: int) -> np.ndarray:
        row = self.m.customers.get(customer_id)
        return np.zeros(len(self.m.items), bool) if row is None else self.m.bought[row].toarray().ravel() > 0


class ItemItemRecommender(PopularityRecommender):
    """Item-to-item cosine similarity; customers with no history fall back to popularity."""

    def fit(self, pairs: pl.DataFrame) -> ItemItemRecommender:
        super().fit(pairs)
        bought = self.m.bought
        norms = np.sqrt(np.asarray(bought.multiply(bought).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        scaled = bought @ sparse.diags(1 / norms)
        similarity = (scaled.T @ scaled).tocsr()
        similarity.setdiag(0)
        similarity.eliminate_zeros()
        self.similarity = similarity
        return self

    def scores(self, customer_id: int) -> np.ndarray:
        row = self.m.customers.get(customer_id)
        if row is None:
            return super().scores(customer_id)
        # Ties (and customers whose items share no buyers) are broken by popularity.
        own = np.asarray((self.m.bought[row] @ self.similarity).todense()).ravel()
        return np.asarray(own + self.popularity / (self.popularity.max() + 1) * 1e-6, dtype=np.float64)


def _top(scores: np.ndarray, owned: np.ndarray, items: list[str], k: int) -> list[str]:
    candidates = np.where(~owned)[0]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [items[i] for i in order[:k]]


@dataclass(frozen=True)
class Evaluation:
    split: dt.date
    k: int
    customers: int  # test customers: bought something new after the split
    hit_rate: dict[str, float]


def hit_rate_at_k(pairs: pl.DataFrame, split: dt.date, *, k: int = 10) -> Evaluation:
    """Train on purchases up to ``split``; a hit is a customer who buys, after it, an item among their top k."""
    train = pairs.filter(pl.col("day") <= split)
    later = pairs.filter(pl.col("day") > split)
    if train.is_empty() or later.is_empty():
        raise InvalidInputError("the split leaves no purchases on one side; choose a date inside the history")
    models = {"popularity": PopularityRecommender().fit(train), "item-item": ItemItemRecommender().fit(train)}
    before = train.select("customer_id", "item").unique()
    new = later.select("customer_id", "item").unique().join(before, on=["customer_id", "item"], how="anti")
    known = set(train["customer_id"].unique().to_list())
    wanted = new.filter(pl.col("customer_id").is_in(list(known))).group_by("customer_id").agg(pl.col("item"))
    hits = dict.fromkeys(models, 0)
    for customer_id, items in wanted.iter_rows():
        for name, model in models.items():
            if set(model.recommend(customer_id, k)) & set(items):
                hits[name] += 1
    customers = wanted.height
    return Evaluation(split, k, customers, {name: hits[name] / customers if customers else 0.0 for name in models})
