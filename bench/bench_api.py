"""API load on loopback: the real-time profile and next-best-offer lookups at a fixed 500 requests/s, on SQLite and
on PostgreSQL, against ``patron serve --workers 2`` holding CDNOW (23,570 customers, scored, three offers decided).

The load is open-loop (bench/loadgen.py, in its own process): requests leave on schedule whether or not earlier ones
have returned, and each latency counts from the moment it was due, so queueing shows in the percentiles. Server,
load generator and database share the machine's cores. Each lookup runs three times after a warm-up; the table
shows the median run's p99, the note all three. The anchor is the same lookup as a direct function call, to show
what HTTP, JSON and the server cost. Batch event ingest is timed on SQLite through one client.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.cdnow_data import SHARED_DATA
from patron.auth.access import customer_profile
from patron.auth.service import OPERATOR, authenticate, create_user, issue_token
from patron.cif.store import make_engine, migrate
from patron.demo import load_demo
from patron.engage.offers import create_offer, decide_offers, next_best_offer
from patron.value.scoring import score_customers

RATE = 500
REQUESTS = 5000  # 10 s at 500/s
RUNS = 3
WORKERS = 2
CUSTOMERS = 23_570
BATCHES = 20
BATCH_SIZE = 500
POSTGRES_ADMIN_URL = os.environ.get("PATRON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
LOOKUPS = {"profile": "/api/customers/{id}/profile", "next-best offer": "/api/customers/{id}/next-best-offer"}


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare(url: str) -> str:
    """Load and score CDNOW, add three offers and decide them; returns an admin's API token."""
    engine = make_engine(url)
    migrate(engine)
    load_demo(engine, SHARED_DATA, names=("cdnow",))
    score_customers(engine)
    create_offer(engine, "vip upgrade", margin=25.0, eligibility="tier == 'A'")
    create_offer(engine, "welcome back", margin=8.0, eligibility="days_since_last_order > 365")
    create_offer(engine, "newsletter discount", margin=3.0)
    decide_offers(engine)
    create_user(engine, "bench", "bench-password", "admin")
    token = issue_token(engine, authenticate(engine, "bench", "bench-password"))
    engine.dispose()
    return token


@contextmanager
def _server(url: str, port: int) -> Iterator[None]:
    environment = {**os.environ, "PATRON_DATABASE_URL": url}
    patron = str(Path(sys.executable).parent / "patron")
    command = [patron, "serve", "--port", str(port), "--workers", str(WORKERS)]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def _load(port: int, token: str, path: str, *, rate: float, count: int, seed: int) -> dict[str, float]:
    command = [
        sys.executable, "-m", "bench.loadgen", "--port", str(port), "--token", token, "--path", path,
        "--rate", str(rate), "--count", str(count), "--ids", str(CUSTOMERS), "--seed", str(seed),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    summary: dict[str, float] = json.loads(done.stdout)
    return summary


def _direct(call: Callable[[int], object]) -> float:
    ids = [1 + number * 7919 % CUSTOMERS for number in range(500)]
    for customer in ids[:50]:
        call(customer)
    started = time.perf_counter()
    for customer in ids:
        call(customer)
    return (time.perf_counter() - started) / len(ids)


def _lookups(store: str, url: str) -> list[dict[str, object]]:
    token = _prepare(url)
    engine = make_engine(url)
    direct = {
        "profile": _direct(lambda c: customer_profile(engine, OPERATOR, c)),
        "next-best offer": _direct(lambda c: next_best_offer(engine, c)),
    }
    rows = []
    port = _port()
    with _server(url, port):
        for name, path in LOOKUPS.items():
            _load(port, token, path, rate=RATE / 2, count=2000, seed=1)  # warm both processes' statement caches
            runs = [_load(port, token, path, rate=RATE, count=REQUESTS, seed=10 + run) for run in range(RUNS)]
            runs.sort(key=lambda run: run["p99_ms"])
            middle = runs[len(runs) // 2]
            p99s = ", ".join(f"{run['p99_ms']:.1f}" for run in runs)
            rows.append(
                {
                    "workload": f"API {name} lookup at {RATE}/s, open loop ({store}, {WORKERS} server processes)",
                    "size": f"{REQUESTS:,} requests × {RUNS}, {CUSTOMERS:,} customers",
                    "patron_s": middle["p99_ms"] / 1000,
                    "anchor": "the same lookup as a function call",
                    "anchor_s": direct[name],
                    "note": f"p99 of the three runs: {p99s} ms; median run: "
                    f"p50 {middle['p50_ms']:.1f} ms, p99.9 {middle['p999_ms']:.1f} ms, "
                    f"{middle['achieved_per_s']:.0f}/s achieved, {middle['non_2xx']:.0f} non-2xx",
                }
            )
        if store == "SQLite":
            rows.append(_ingest(port, token))
    engine.dispose()
    return rows


def _ingest(port: int, token: str) -> dict[str, object]:
    moment = dt.datetime(2024, 1, 1).isoformat()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}) as client:
        started = time.perf_counter()
        for batch in range(BATCHES):
            events = [
                {"customer": str(1 + (batch * BATCH_SIZE + i) % CUSTOMERS), "idempotency_key": f"b{batch}-{i}",
                 "occurred_at": moment, "channel": "web", "type": "visit"}
                for i in range(BATCH_SIZE)
            ]  # fmt: skip
            reply = client.post("/api/events/batch", json={"events": events}, timeout=120)
            assert reply.json()["created"] == BATCH_SIZE, reply.text
        elapsed = time.perf_counter() - started
    return {
        "workload": f"API batch event ingest POST /api/events/batch ({BATCH_SIZE} per batch, SQLite)",
        "size": f"{BATCHES * BATCH_SIZE:,} events",
        "patron_s": elapsed,
        "anchor": "–",
        "anchor_s": float("nan"),
        "note": f"{BATCHES * BATCH_SIZE / elapsed:,.0f} events/s",
    }


def run(copies: int) -> list[dict[str, object]]:
    if copies != 1:
        return []
    with tempfile.TemporaryDirectory() as folder:
        rows = _lookups("SQLite", f"sqlite:///{Path(folder) / 'api.db'}")
    name = f"patron_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        rows += _lookups("PostgreSQL", POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return rows
