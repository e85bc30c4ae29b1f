"""Next-best offers for a whole base: ``decide_offers`` over N × 23,570 customers (CDNOW ×N's size; ×100 is 2.36M)
and five offers, three with eligibility rules, on SQLite, in a process of its own so its peak memory is its own.

The anchor is what an analyst might script instead with pandas on a frame already in memory (no store to read, no
rules to compile): each offer's eligible customers by a boolean mask, P(accept) × margin, the best five per customer,
``to_sql`` into SQLite.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from patron.cif import schema as s
from patron.cif.bulk import insert_frame, insert_frame_with_ids
from patron.cif.store import make_engine, migrate
from patron.engage.offers import create_offer

CUSTOMERS_PER_COPY = 23_570
OFFERS = (  # name, margin, eligibility
    ("gold upgrade", 90.0, "revenue >= 100"),
    ("win-back voucher", 15.0, "days_since_last_order > 365"),
    ("loyalty points", 8.0, "orders >= 2"),
    ("newsletter", 1.0, None),
    ("free shipping", 4.0, None),
)
# The peak is the process's own high-water mark (VmHWM): Linux carries a parent's peak RSS over into its child's
# ru_maxrss on exec, so getrusage in the child would report the bench's own peak from building the store.
_DECIDE = """
import re, sys, time
from pathlib import Path
from patron.cif.store import make_engine
from patron.engage.offers import decide_offers
started = time.perf_counter()
decided = decide_offers(make_engine(sys.argv[1]), as_of=__import__("datetime").date(2026, 1, 1))
seconds = time.perf_counter() - started
print(decided, seconds, re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
"""


def _base(url: str, customers: int) -> pl.DataFrame:
    """Customers with one to three orders each over two years; returns each one's revenue, orders and recency."""
    rng = np.random.default_rng(11)
    engine = make_engine(url)
    migrate(engine)
    now = dt.datetime(2026, 1, 1)
    orders_each = rng.integers(1, 4, customers)
    with engine.begin() as conn:
        ids = insert_frame_with_ids(
            conn,
            s.table_of(s.Customer),
            pl.DataFrame({"kind": ["customer"] * customers}).with_columns(
                pl.lit("active").alias("status"), pl.lit("bench").alias("source"),
                pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at"),
            ),
        )  # fmt: skip
        owner = np.repeat(np.asarray(ids), orders_each)
        days_ago = rng.integers(0, 730, owner.size)
        revenue = np.round(rng.lognormal(3.5, 1.0, owner.size) * 100).astype(np.int64)
        orders = pl.DataFrame({"customer_id": owner, "days_ago": days_ago}).with_row_index("n")
        order_ids = insert_frame_with_ids(
            conn,
            s.table_of(s.Order),
            orders.select(
                pl.lit("bench").alias("source"), pl.col("n").cast(pl.String).alias("order_key"), "customer_id",
                (pl.lit(now) - pl.duration(days=pl.col("days_ago"))).alias("ordered_at"),
                pl.lit("USD").alias("currency"), pl.lit("purchase").alias("kind"), pl.lit(now).alias("created_at"),
            ),
        )  # fmt: skip
        insert_frame(
            conn,
            s.table_of(s.OrderLine),
            pl.DataFrame({"order_id": order_ids, "line_no": 1, "quantity": 1.0, "revenue_minor": revenue}),
        )
    for name, margin, rule in OFFERS:
        create_offer(engine, name, margin=margin, currency="USD", eligibility=rule)
    engine.dispose()
    return (
        pl.DataFrame({"customer_id": owner, "days_ago": days_ago, "revenue": revenue / 100})
        .group_by("customer_id")
        .agg(pl.col("revenue").sum(), pl.len().alias("orders"), pl.col("days_ago").min())
    )


def _pandas_decision(base: pl.DataFrame, database: Path) -> float:
    import pandas as pd  # noqa: PLC0415  (benchmark-only dependency)

    frame = base.to_pandas()
    started = time.perf_counter()
    masks = {
        "gold upgrade": frame["revenue"] >= 100,
        "win-back voucher": frame["days_ago"] > 365,
        "loyalty points": frame["orders"] >= 2,
    }
    parts = []
    for name, margin, _rule in OFFERS:
        eligible = frame.loc[masks.get(name, slice(None)), ["customer_id"]].copy()
        eligible["offer"] = name
        eligible["expected_value"] = 0.02 * margin
        parts.append(eligible)
    candidates = pd.concat(parts).sort_values("expected_value", ascending=False)
    best = candidates.groupby("customer_id", sort=False).head(5)
    with sqlite3.connect(database) as conn:
        best.to_sql("offer_candidates", conn, index=False, chunksize=50_000)
    return time.perf_counter() - started


def run(copies: int) -> list[dict[str, object]]:
    customers = copies * CUSTOMERS_PER_COPY
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        url = f"sqlite:///{work / 'patron.db'}"
        base = _base(url, customers)
        started = time.perf_counter()
        output = subprocess.run([sys.executable, "-c", _DECIDE, url], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        decided, seconds, peak_kib = output.stdout.split()
        assert int(decided) == customers, output.stdout
        anchor = _pandas_decision(base, work / "pandas.db")
    return [
        {
            "workload": "decide_offers: every customer's best five of 5 offers, stored (SQLite)",
            "size": f"{customers:,} customers",
            "patron_s": float(seconds),
            "anchor": "pandas masks + sort + groupby.head(5) + to_sql, frame in memory",
            "anchor_s": anchor,
            "note": f"peak memory {int(peak_kib) / 1024:,.0f} MiB; {wall:.1f} s with interpreter start",
        }
    ]
