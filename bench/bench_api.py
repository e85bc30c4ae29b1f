"""API load on loopback: the 360° profile lookup and batch event ingest against a uvicorn server on a SQLite store
holding CDNOW (23,570 customers). Closed loop: a few client threads issue requests back to back for a bounded
count; the figures are throughput and latency percentiles. The anchor is the same lookup as direct function calls
(no HTTP), to show what the web layer costs.
"""

from __future__ import annotations

import datetime as dt
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

from bench.cdnow_data import SHARED_DATA
from patron.api.app import create_app
from patron.auth.access import customer_360
from patron.auth.service import OPERATOR, authenticate, create_user, issue_token
from patron.cif.store import make_engine, migrate
from patron.demo import load_demo

REQUESTS = 2000
THREADS = 4
BATCHES = 20
BATCH_SIZE = 500


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(copies: int) -> list[dict[str, object]]:
    if copies != 1:
        return []
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'api.db'}")
        migrate(engine)
        load_demo(engine, SHARED_DATA, names=("cdnow",))
        create_user(engine, "bench", "bench-password", "admin")
        token = issue_token(engine, authenticate(engine, "bench", "bench-password"))
        port = _port()
        server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"

        def lookup(index: int) -> float:
            with httpx.Client(base_url=base, headers=headers) as client:
                timings = []
                for number in range(index, REQUESTS, THREADS):
                    started = time.perf_counter()
                    reply = client.get(f"/api/customers/{1 + number * 7 % 23_570}")
                    timings.append(time.perf_counter() - started)
                    assert reply.status_code == 200
                return statistics.fmean(timings)

        latencies: list[float] = []
        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lookup, range(THREADS)))
        elapsed = time.perf_counter() - started
        with httpx.Client(base_url=base, headers=headers) as client:
            for number in range(300):
                begun = time.perf_counter()
                client.get(f"/api/customers/{1 + number * 13 % 23_570}")
                latencies.append(time.perf_counter() - begun)
            ingest_started = time.perf_counter()
            moment = dt.datetime(2024, 1, 1).isoformat()
            for batch in range(BATCHES):
                events = [
                    {"customer": str(1 + (batch * BATCH_SIZE + i) % 23_570), "idempotency_key": f"b{batch}-{i}",
                     "occurred_at": moment, "channel": "web", "type": "visit"}
                    for i in range(BATCH_SIZE)
                ]  # fmt: skip
                assert client.post("/api/events/batch", json={"events": events}).json()["created"] == BATCH_SIZE
            ingest = time.perf_counter() - ingest_started
        direct_started = time.perf_counter()
        for number in range(300):
            customer_360(engine, OPERATOR, 1 + number * 13 % 23_570)
        direct = (time.perf_counter() - direct_started) / 300
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
    p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
    return [
        {
            "workload": f"API profile lookup GET /api/customers/{{id}} ({THREADS} client threads, SQLite)",
            "size": f"{REQUESTS:,} requests, 23,570 customers",
            "patron_s": p99,
            "anchor": "the same lookup as a function call",
            "anchor_s": direct,
            "note": f"{REQUESTS / elapsed:,.0f} requests/s; one client alone: p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms",
        },
        {
            "workload": "API batch event ingest POST /api/events/batch (500 per batch)",
            "size": f"{BATCHES * BATCH_SIZE:,} events",
            "patron_s": ingest,
            "anchor": "–",
            "anchor_s": float("nan"),
            "note": f"{BATCHES * BATCH_SIZE / ingest:,.0f} events/s",
        },
    ]
