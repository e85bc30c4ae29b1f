"""The conversation-context call for a customer with 1,000 interactions in a store of 1,000,000, on SQLite and
PostgreSQL; next to the naive route (every interaction of the customer read into pandas, then the newest 20).

Rows are bulk-loaded with each driver's fast path (executemany on sqlite3, COPY on PostgreSQL); the timed part
is only ``conversation_context``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from bench.postgres import scratch_database
from patron.cif.store import make_engine, migrate
from patron.service.cases import open_case
from patron.service.context import conversation_context

CUSTOMERS = 10_000
INTERACTIONS = 1_000_000
HEAVY = 1  # the customer with 1,000 interactions
CALLS = 300
COLUMNS = ("source", "idempotency_key", "customer_id", "occurred_at", "channel", "direction", "type", "created_at")


def _rows() -> list[tuple[object, ...]]:
    rng = np.random.default_rng(17)
    heavy = [HEAVY] * 1000
    others = rng.integers(2, CUSTOMERS + 1, INTERACTIONS - 1000).tolist()
    start = dt.datetime(2020, 1, 1)
    minutes = rng.integers(0, 5 * 365 * 24 * 60, INTERACTIONS).tolist()
    channels = rng.choice(["email", "phone", "web", "store", "chat"], INTERACTIONS).tolist()
    now = dt.datetime(2025, 1, 1)
    return [
        ("bench", f"i{i}", customer, start + dt.timedelta(minutes=m), channel, "inbound", "contact", now)
        for i, (customer, m, channel) in enumerate(zip(heavy + others, minutes, channels, strict=True))
    ]


def _load(engine: Engine) -> None:
    migrate(engine)
    rows = _rows()
    customers = [
        (i, "bench", "customer", "active", dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1))
        for i in range(1, CUSTOMERS + 1)
    ]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.executemany(
                "INSERT INTO customers (id, source, kind, status, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                customers,
            )
            cursor.executemany(
                f"INSERT INTO interactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows
            )
        else:
            with cursor.copy("COPY customers (id, source, kind, status, created_at, updated_at) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in customers:
                    copy.write_row(row)
            with cursor.copy(f"COPY interactions ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('customers_id_seq', :n)"), {"n": CUSTOMERS})
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    for day in range(5):
        open_case(engine, HEAVY, subject=f"question {day}", kind="question", at=dt.datetime(2024, 12, day + 1))


def _time_context(engine: Engine) -> list[float]:
    conversation_context(engine, HEAVY)  # warm the connection pool and caches
    timings = []
    for _ in range(CALLS):
        started = time.perf_counter()
        conversation_context(engine, HEAVY)
        timings.append(time.perf_counter() - started)
    return timings


def _time_naive(engine: Engine) -> float:
    import pandas as pd  # noqa: PLC0415  (benchmark-only dependency)

    started = time.perf_counter()
    for _ in range(20):
        with engine.connect() as conn:
            frame = pd.read_sql(text("SELECT * FROM interactions WHERE customer_id = :c"), conn, params={"c": HEAVY})
        frame.sort_values("occurred_at", ascending=False).head(20)
    return (time.perf_counter() - started) / 20


def _row(store: str, timings: list[float], naive: float) -> dict[str, object]:
    p99 = statistics.quantiles(timings, n=100)[98]
    return {
        "workload": f"conversation context ({store})",
        "size": "1,000 interactions of 1,000,000",
        "patron_s": p99,
        "anchor": "pandas read_sql of the customer's rows",
        "anchor_s": naive,
        "note": f"Patron p50 {statistics.median(timings) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (Patron column = p99)",
    }


def run(copies: int) -> list[dict[str, object]]:
    if copies != 1:
        return []
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'context.db'}")
        _load(engine)
        rows.append(_row("SQLite", _time_context(engine), _time_naive(engine)))
        engine.dispose()
    with scratch_database() as engine:
        _load(engine)
        rows.append(_row("PostgreSQL", _time_context(engine), _time_naive(engine)))
    return rows
