"""Recommender training on a real shop: Online Retail II imported through the generic importer, then Patron's whole
recommender run (four candidates judged by hit-rate@10 and NDCG@10 on the default time split, the winner refitted
on every purchase, each customer's top ten stored) against what a user would otherwise write: ``implicit``'s ALS fit
once on the same purchase matrix (no evaluation, no storage). The issue's budget: the whole file in ≤ 30 s."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.cdnow_data import SHARED_DATA
from patron.cif.importer import import_file
from patron.cif.store import make_engine, migrate
from patron.demo import demo_mapping
from patron.engage.recommend import purchases
from patron.engage.recommendations import train_recommendations

SOURCE = SHARED_DATA / "online-retail-ii" / "online_retail_II_2009-2010.parquet"


def _implicit_alone(engine: object) -> float:
    from implicit.cpu.als import AlternatingLeastSquares  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    bought = purchases(engine)  # type: ignore[arg-type]
    started = time.perf_counter()
    pairs = bought.group_by("customer_id", "item").len()
    rows = pairs["customer_id"].rank("dense").cast(int).to_numpy() - 1
    cols = pairs["item"].rank("dense").cast(int).to_numpy() - 1
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))
    with threadpool_limits(1, "blas"):
        AlternatingLeastSquares(factors=64, iterations=15, random_state=42).fit(matrix, show_progress=False)
    return time.perf_counter() - started


def run(copies: int) -> list[dict[str, object]]:
    del copies  # one real data set, one size
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        migrate(engine)
        import_file(engine, SOURCE, demo_mapping("online-retail-ii"), rejects_dir=work)
        started = time.perf_counter()
        trained = train_recommendations(engine)
        patron_s = time.perf_counter() - started
        anchor_s = _implicit_alone(engine)
        engine.dispose()
    rates = ", ".join(f"{name} {rate:.3f}" for name, rate in trained.hit_rate.items())
    return [{
        "workload": "recommender: choose among 4 on a time split, refit, store top 10 (Online Retail II)",
        "size": f"{trained.customers:,} customers",
        "patron_s": patron_s,
        "anchor": "implicit ALS, one fit, no evaluation",
        "anchor_s": anchor_s,
        "note": f"chose {trained.model}; hit-rate@10 at {trained.split}: {rates}",
    }]  # fmt: skip
