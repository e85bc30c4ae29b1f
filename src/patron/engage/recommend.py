"""Recommenders from purchases and their offline evaluation on a time split (hit-rate@k and NDCG@k).

Three candidates, one interface (fit on purchases, then top-k unowned items per customer, batched):
- popularity: the most-bought items, the baseline every recommender has to beat;
- item-to-item (Linden, Smith & York 2003, IEEE Internet Computing 7(1)): the summed cosine similarity of an item's
  buyers to those of what the customer bought (scipy.sparse);
- implicit-feedback matrix factorisation with the ``implicit`` library: ALS (Hu, Koren & Volinsky 2008, "Collaborative
  filtering for implicit feedback datasets", ICDM) on BM25-weighted purchase counts, and BPR (Rendle et al. 2009).

Only items still sold are recommended (bought by someone in the last ``STILL_SOLD_DAYS`` of the history), never what
the customer already bought. ``evaluate`` trains each candidate on the purchases up to a day and scores the top k
against what each customer bought new after it; the best hit-rate wins (NDCG breaks ties).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import polars as pl
from scipy import sparse
from sqlalchemy import Engine, String, cast, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.errors import InvalidInputError

Item = Literal["product", "category"]
ORDERS, LINES = table_of(s.Order).c, table_of(s.OrderLine).c
PRODUCTS, CATEGORIES = table_of(s.Product).c, table_of(s.Category).c
STILL_SOLD_DAYS = 180
BATCH = 2048
SEED = 42


def purchases(engine: Engine, *, item: Item = "product", source: str | None = None) -> pl.DataFrame:
    """customer_id, item, day, unit_price_minor, currency: every positive order line with its item (the product's
    id, or the category's name)."""
    label = cast(LINES.product_id, String) if item == "product" else CATEGORIES.name
    joined = table_of(s.Order).join(table_of(s.OrderLine), LINES.order_id == ORDERS.id)
    if item == "category":
        joined = joined.join(table_of(s.Category), CATEGORIES.id == LINES.category_id)
    query = (
        select(ORDERS.customer_id, label.label("item"), ORDERS.ordered_at, LINES.revenue_minor, LINES.quantity,
               ORDERS.currency)
        .select_from(joined)
        .where(LINES.revenue_minor > 0, ORDERS.kind == "purchase")
    )  # fmt: skip
    if item == "product":
        query = query.where(LINES.product_id.is_not(None))
    if source:
        query = query.where(ORDERS.source == source)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pl.DataFrame(
        rows,
        schema={"customer_id": pl.Int64, "item": pl.String, "at": pl.Datetime("us"), "revenue_minor": pl.Int64,
                "quantity": pl.Float64, "currency": pl.String},
        orient="row",
    )  # fmt: skip
    unit_price = pl.when(pl.col("quantity") > 0).then(pl.col("revenue_minor") / pl.col("quantity"))
    return frame.select(
        "customer_id", "item", pl.col("at").cast(pl.Date).alias("day"),
        unit_price.otherwise(pl.col("revenue_minor")).round().cast(pl.Int64).alias("unit_price_minor"), "currency",
    )  # fmt: skip


@dataclass(frozen=True)
class _Matrix:
    customers: dict[int, int]
    items: list[str]
    counts: sparse.csr_matrix  # customers × items: how many lines of the item the customer bought
    still_sold: np.ndarray  # items bought by anyone in the last STILL_SOLD_DAYS of the history

    @cached_property
    def bought(self) -> sparse.csr_matrix:
        return (self.counts > 0).astype(np.float32).tocsr()


def _matrix(pairs: pl.DataFrame) -> _Matrix:
    counts = pairs.group_by("customer_id", "item").agg(pl.len().alias("lines"))
    items = sorted(counts["item"].unique().to_list())
    customers = sorted(counts["customer_id"].unique().to_list())
    item_index = pl.DataFrame({"item": items, "col": np.arange(len(items))})
    customer_index = pl.DataFrame({"customer_id": customers, "row": np.arange(len(customers))})
    indexed = counts.join(item_index, on="item").join(customer_index, on="customer_id")
    matrix = sparse.csr_matrix(
        (indexed["lines"].to_numpy().astype(np.float32), (indexed["row"].to_numpy(), indexed["col"].to_numpy())),
        shape=(len(customers), len(items)),
    )
    last = pairs["day"].max()
    recent = pairs.filter(pl.col("day") > last - dt.timedelta(days=STILL_SOLD_DAYS))["item"].unique()  # type: ignore[operator]
    still_sold = item_index["item"].is_in(recent.implode()).to_numpy()
    return _Matrix(dict(zip(customers, range(len(customers)), strict=True)), items, matrix, still_sold)


class PopularityRecommender:
    """The baseline: the most-bought items (by number of buyers) the customer does not have yet."""

    name = "popularity"

    def fit(self, pairs: pl.DataFrame) -> PopularityRecommender:
        self.m = _matrix(pairs)
        self.popularity = np.asarray(self.m.bought.sum(axis=0), dtype=np.float64).ravel()
        return self

    def row_scores(self, rows: np.ndarray) -> np.ndarray:
        """customers (matrix rows) × items: higher is more likely to be bought next."""
        return np.broadcast_to(self.popularity, (len(rows), len(self.m.items))).copy()

    def recommend(self, customer_id: int, k: int = 10) -> list[str]:
        return [item for item, _ in self.recommend_many([customer_id], k).get(customer_id, [])]

    def popular(self, k: int) -> list[tuple[str, float]]:
        """The top k still-sold items for someone with no history (cold start)."""
        scores = np.where(self.m.still_sold, self.popularity, -np.inf)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.m.items[i], float(scores[i])) for i in order if np.isfinite(scores[i])]

    def recommend_many(self, customer_ids: Iterable[int], k: int = 10) -> dict[int, list[tuple[str, float]]]:
        """(item, score) best first for each customer; customers without history get the popular items."""
        wanted = list(customer_ids)
        known = [c for c in wanted if c in self.m.customers]
        result = {c: self.popular(k) for c in wanted if c not in self.m.customers}
        bought = self.m.bought
        for start in range(0, len(known), BATCH):
            batch = known[start : start + BATCH]
            rows = np.array([self.m.customers[c] for c in batch], dtype=np.int64)
            scores = self.row_scores(rows).astype(np.float64)
            scores[:, ~self.m.still_sold] = -np.inf
            owned = bought[rows]
            scores[owned.nonzero()] = -np.inf
            top = _top_k(scores, k)
            for customer, row_top, row_scores in zip(batch, top, scores, strict=True):
                result[customer] = [
                    (self.m.items[i], float(row_scores[i])) for i in row_top if np.isfinite(row_scores[i])
                ]
        return result


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first (ties by column order)."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -chosen), axis=1)
    return np.take_along_axis(part, order, axis=1)


class ItemItemRecommender(PopularityRecommender):
    """Item-to-item cosine similarity; ties (and items sharing no buyers) broken by popularity."""

    name = "item-item"

    def fit(self, pairs: pl.DataFrame) -> ItemItemRecommender:
        super().fit(pairs)
        bought = self.m.bought
        norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        scaled = bought @ sparse.diags(1 / norms)
        similarity = (scaled.T @ scaled).tocsr()
        similarity.setdiag(0)
        similarity.eliminate_zeros()
        self.similarity = similarity
        return self

    def row_scores(self, rows: np.ndarray) -> np.ndarray:
        own = np.asarray((self.m.bought[rows] @ self.similarity).todense(), dtype=np.float64)
        return np.asarray(own + self.popularity / (self.popularity.max() + 1) * 1e-6, dtype=np.float64)


class _FactorRecommender(PopularityRecommender):
    """Scores are the dot products of the customer's and the item's factors from an ``implicit`` model."""

    def _fit_factors(self, make_model: Callable[[], object], weighted: sparse.csr_matrix) -> None:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - scikit-learn's dependency, used here only

        # implicit runs its own threads; a multi-threaded BLAS underneath only slows it down (its own advice,
        # checked when a model is made, so the model is made inside the limit too).
        with threadpool_limits(1, "blas"):
            model = make_model()
            model.fit(weighted, show_progress=False)  # type: ignore[attr-defined]
        self.user_factors = np.asarray(model.user_factors)  # type: ignore[attr-defined]
        self.item_factors = np.asarray(model.item_factors)  # type: ignore[attr-defined]

    def row_scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_factors[rows] @ self.item_factors.T, dtype=np.float64)


class ALSRecommender(_FactorRecommender):
    """Alternating least squares on purchase counts weighted by BM25 (repeat buys count, with diminishing returns;
    items everyone buys count less)."""

    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15) -> None:
        self.factors, self.regularization, self.iterations = factors, regularization, iterations

    def fit(self, pairs: pl.DataFrame) -> ALSRecommender:
        from implicit.cpu.als import AlternatingLeastSquares  # noqa: PLC0415 - loaded only to train
        from implicit.nearest_neighbours import bm25_weight  # noqa: PLC0415

        super().fit(pairs)

        def model() -> object:
            return AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, iterations=self.iterations, random_state=SEED
            )

        self._fit_factors(model, bm25_weight(self.m.counts, K1=100, B=0.8).tocsr().astype(np.float32))
        return self


class BPRRecommender(_FactorRecommender):
    """Bayesian personalised ranking: factors trained so bought items rank above unbought ones."""

    name = "bpr"

    def fit(self, pairs: pl.DataFrame) -> BPRRecommender:
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # noqa: PLC0415 - loaded only to train

        super().fit(pairs)

        def model() -> object:
            return BayesianPersonalizedRanking(
                factors=64, learning_rate=0.05, regularization=0.01, iterations=100, random_state=SEED
            )

        self._fit_factors(model, self.m.bought)
        return self


CANDIDATES: dict[str, Callable[[], PopularityRecommender]] = {
    "popularity": PopularityRecommender, "item-item": ItemItemRecommender, "als": ALSRecommender,
    "bpr": BPRRecommender,
}  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    split: dt.date
    k: int
    customers: int  # test customers: known before the split, bought something new after it
    hit_rate: dict[str, float]
    ndcg: dict[str, float]

    @property
    def chosen(self) -> str:
        """The best hit-rate@k; NDCG@k breaks a tie."""
        return max(self.hit_rate, key=lambda name: (self.hit_rate[name], self.ndcg[name]))


def evaluate(pairs: pl.DataFrame, split: dt.date, *, k: int = 10, models: Iterable[str] | None = None) -> Evaluation:
    """Train on purchases up to ``split``; score each model's top k against what each customer bought new after it.

    A hit is a customer with at least one of their new items in the top k; NDCG@k rewards placing them high.
    """
    train = pairs.filter(pl.col("day") <= split)
    later = pairs.filter(pl.col("day") > split)
    if train.is_empty() or later.is_empty():
        raise InvalidInputError("the split leaves no purchases on one side; choose a day inside the history")
    before = train.select("customer_id", "item").unique()
    new = later.select("customer_id", "item").unique().join(before, on=["customer_id", "item"], how="anti")
    wanted = new.join(before.select("customer_id").unique(), on="customer_id").group_by("customer_id").agg("item")
    truth = {customer: set(items) for customer, items in wanted.iter_rows()}
    discounts = 1 / np.log2(np.arange(2, k + 2))
    hit_rate, ndcg = {}, {}
    for name in models or CANDIDATES:
        recommended = CANDIDATES[name]().fit(train).recommend_many(truth, k)
        hits, gains = 0, 0.0
        for customer, items in truth.items():
            relevant = np.array([item in items for item, _ in recommended[customer]], dtype=bool)
            hits += bool(relevant.any())
            ideal = discounts[: min(k, len(items))].sum()
            gains += float(discounts[: len(relevant)][relevant].sum() / ideal)
        hit_rate[name] = hits / len(truth) if truth else 0.0
        ndcg[name] = gains / len(truth) if truth else 0.0
    return Evaluation(split, k, len(truth), hit_rate, ndcg)


def default_split(pairs: pl.DataFrame) -> dt.date:
    """Three quarters of the way through the purchase history: enough to learn from, a quarter to test on."""
    first, last = pairs["day"].min(), pairs["day"].max()
    if not isinstance(first, dt.date) or not isinstance(last, dt.date) or last <= first:
        raise InvalidInputError("the purchases span less than two days: there is nothing to evaluate a recommender on")
    return first + (last - first) * 3 // 4
