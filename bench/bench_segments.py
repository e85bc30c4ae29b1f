"""Rule segments: full membership of 10 segments over a 1M-customer base with 10M order lines, against the same
rules as pandas boolean masks; and the incremental path (one purchase event, one customer) on a SQLite store.

The 1M-customer feature frame is aggregated from the 10M lines with Polars (timed separately); the store path
builds its features with SQL, so it is measured at a size a SQLite file holds comfortably (see ``STORE_*``).
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import insert

from patron.cif import schema as s
from patron.cif.store import make_engine, migrate
from patron.segments.expression import Context, compile_rule
from patron.segments.rules import apply_event, create_segment, evaluate_segments

AS_OF = dt.date(2024, 12, 31)
CATEGORIES = ["tents", "boots", "stoves", "maps", "packs", "lamps", "ropes", "tarps", "bottles", "knives"]
RULES = {
    "A at risk": 'tier == "A" and p_alive < 0.5',
    "campers": 'bought("tents", months=12)',
    "big spenders": "revenue > 2000",
    "lapsed": "days_since_last_order > 365",
    "frequent": "orders >= 15 and revenue / orders > 60",
    "gold contract": 'attributes.contract == "Two year" and clv > 500',
    "young rich": "birth_year >= 1990 and income > 80000",
    "winter gear": 'bought("stoves", months=6) and not bought("tents")',
    "B or C valuable": 'tier in ["B", "C"] and clv > 300',
    "recent high value": "last_order >= days_ago(30) and value_at_risk > 50",
}
STORE_CUSTOMERS = 20_000
STORE_LINES_PER_CUSTOMER = 10


def synthetic_base(customers: int, lines: int, seed: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Customers with scores and attributes; order lines (customer, day, revenue, category)."""
    rng = np.random.default_rng(seed)
    base = pl.DataFrame(
        {
            "customer_id": np.arange(1, customers + 1),
            "tier": rng.choice(["A", "B", "C"], customers, p=[0.2, 0.3, 0.5]),
            "p_alive": rng.random(customers),
            "clv": rng.gamma(1.5, 200.0, customers),
            "value_at_risk": rng.gamma(1.0, 40.0, customers),
            "birth_year": rng.integers(1940, 2005, customers),
            "income": rng.gamma(4.0, 15_000.0, customers),
            "attributes.contract": rng.choice(["Month-to-month", "One year", "Two year"], customers),
        }
    )
    order_lines = pl.DataFrame(
        {
            "customer_id": rng.integers(1, customers + 1, lines),
            "day": (np.datetime64(AS_OF) - rng.integers(0, 3 * 365, lines).astype("timedelta64[D]")),
            "revenue": rng.gamma(2.0, 30.0, lines).round(2),
            "category": rng.choice(CATEGORIES, lines),
        }
    ).with_columns(pl.col("day").cast(pl.Date))
    return base, order_lines


def features_from_lines(base: pl.DataFrame, order_lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    orders = order_lines.group_by("customer_id").agg(
        pl.len().alias("orders"), pl.col("revenue").sum(), pl.col("day").max().alias("last_order")
    )
    customers = base.join(orders, on="customer_id", how="left").with_columns(
        pl.col("orders").fill_null(0),
        pl.col("revenue").fill_null(0.0),
        (pl.lit(AS_OF) - pl.col("last_order")).dt.total_days().alias("days_since_last_order"),
    )
    categories = order_lines.group_by("customer_id", "category").agg(pl.col("day").max().alias("last_day"))
    return customers, categories


def patron_membership(customers: pl.DataFrame, categories: pl.DataFrame) -> dict[str, int]:
    schema = dict(customers.schema)
    context = Context(categories, AS_OF)
    return {
        name: customers.filter(compile_rule(rule, schema).expression(context)).height for name, rule in RULES.items()
    }


def pandas_membership(customers: pl.DataFrame, categories: pl.DataFrame) -> dict[str, int]:
    """The same ten rules hand-written as pandas masks (what an analyst would script instead)."""
    frame = customers.to_pandas()
    bought = categories.to_pandas()

    def buyers(category: str, days: int | None = None) -> object:
        rows = bought[bought["category"] == category]
        if days is not None:
            rows = rows[rows["last_day"] > np.datetime64(AS_OF - dt.timedelta(days=days))]
        return frame["customer_id"].isin(rows["customer_id"])

    month_ago = np.datetime64(AS_OF - dt.timedelta(days=30))
    masks = {
        "A at risk": (frame["tier"] == "A") & (frame["p_alive"] < 0.5),
        "campers": buyers("tents", 365),
        "big spenders": frame["revenue"] > 2000,
        "lapsed": frame["days_since_last_order"] > 365,
        "frequent": (frame["orders"] >= 15) & (frame["revenue"] / frame["orders"].where(frame["orders"] > 0) > 60),
        "gold contract": (frame["attributes.contract"] == "Two year") & (frame["clv"] > 500),
        "young rich": (frame["birth_year"] >= 1990) & (frame["income"] > 80000),
        "winter gear": buyers("stoves", 183) & ~buyers("tents"),
        "B or C valuable": frame["tier"].isin(["B", "C"]) & (frame["clv"] > 300),
        "recent high value": (frame["last_order"] >= month_ago) & (frame["value_at_risk"] > 50),
    }
    return {name: int(mask.sum()) for name, mask in masks.items()}  # type: ignore[attr-defined]


def _store_with_segments(folder: Path) -> tuple[object, list[int]]:
    base, order_lines = synthetic_base(STORE_CUSTOMERS, STORE_CUSTOMERS * STORE_LINES_PER_CUSTOMER, seed=9)
    engine = make_engine(f"sqlite:///{folder / 'segments.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(insert(s.table_of(s.Customer)), [{"id": int(i), "source": "bench"} for i in base["customer_id"]])
        conn.execute(insert(s.table_of(s.Category)), [{"id": i + 1, "name": name} for i, name in enumerate(CATEGORIES)])
        orders = order_lines.with_row_index("id", offset=1)
        conn.execute(
            insert(s.table_of(s.Order)),
            [
                {"id": int(row[0]), "source": "bench", "order_key": str(row[0]), "customer_id": int(row[1]),
                 "ordered_at": dt.datetime.combine(row[2], dt.time()), "currency": "USD"}
                for row in orders.select("id", "customer_id", "day").iter_rows()
            ],
        )  # fmt: skip
        category_id = {name: i + 1 for i, name in enumerate(CATEGORIES)}
        conn.execute(
            insert(s.table_of(s.OrderLine)),
            [
                {"order_id": int(row[0]), "line_no": 1, "quantity": 1, "revenue_minor": round(row[1] * 100),
                 "category_id": category_id[row[2]]}
                for row in orders.select("id", "revenue", "category").iter_rows()
            ],
        )  # fmt: skip
    # The store has no scores or profiles here: its segments are the purchase-driven ones.
    score_fields = ("tier", "clv", "p_alive", "value_at_risk", "birth_year", "contract")
    store_rules = {name: rule for name, rule in RULES.items() if not any(f in rule for f in score_fields)}
    for name, rule in store_rules.items():
        create_segment(engine, name, rule)
    evaluate_segments(engine, as_of=AS_OF)
    return engine, base["customer_id"].to_list()


def run(copies: int) -> list[dict[str, object]]:
    customers_n, lines_n = 100_000 * copies, 1_000_000 * copies
    base, order_lines = synthetic_base(customers_n, lines_n)
    started = time.perf_counter()
    customers, categories = features_from_lines(base, order_lines)
    aggregate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours = patron_membership(customers, categories)
    patron_seconds = time.perf_counter() - started
    started = time.perf_counter()
    theirs = pandas_membership(customers, categories)
    pandas_seconds = time.perf_counter() - started
    assert ours == theirs, (ours, theirs)
    size = f"{customers_n:,} customers, {lines_n:,} lines"
    rows: list[dict[str, object]] = [
        {
            "workload": "10 rule segments: full membership",
            "size": size,
            "patron_s": patron_seconds,
            "anchor": "pandas boolean masks",
            "anchor_s": pandas_seconds,
            "note": f"same counts; features aggregated from the lines in {aggregate_seconds:.2f} s (Polars)",
        }
    ]
    if copies == 1:
        rows.append(_incremental())
    return rows


def _incremental() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        engine, ids = _store_with_segments(Path(folder))
        rng = np.random.default_rng(3)
        timings = []
        for customer in rng.choice(ids, 200, replace=False):
            started = time.perf_counter()
            apply_event(engine, int(customer), "purchase", as_of=AS_OF)  # type: ignore[arg-type]
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        evaluate_segments(engine, as_of=AS_OF)  # type: ignore[arg-type]
        full = time.perf_counter() - started
        engine.dispose()  # type: ignore[attr-defined]
    p99 = statistics.quantiles(timings, n=100)[98]
    return {
        "workload": "one purchase event: re-evaluate the affected segments for that customer (SQLite store)",
        "size": f"{STORE_CUSTOMERS:,} customers, {STORE_CUSTOMERS * STORE_LINES_PER_CUSTOMER:,} lines, 5 segments",
        "patron_s": statistics.median(timings),
        "anchor": "full re-evaluation from the store",
        "anchor_s": full,
        "note": f"median {statistics.median(timings) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms per event",
    }
