"""What a person waits for in the browser: the server time of every page on the demo store (p50 and p95 over
repeated loads), the segment builder's live count and a segment's save.

The demo is loaded by `patron demo` into a fresh data folder, scored and segmented as `make run` leaves it; the
pages are requested in-process through the ASGI app (Starlette's test client), so the time is the server's: the
route, its reads and the template, no network. A page is loaded once before it is timed (the first load of a
process builds what later loads reuse) and after the server's warmer has computed the analyses it keeps (it does
so after a start and after each change of the data; pages opened while it works share the two cores). The anchor
of the live count is the tool an analyst would reach for instead: the same rule as a pandas boolean mask over a
frame already in memory.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LOADS = 20
PATRON = str(Path(sys.executable).with_name("patron"))
PASSWORD = "bench-password-1"
RULE = 'revenue > 100 and days_since_last_order > 180 and tier in ["A", "B"]'
PAGES = [
    "/", "/customers", "/customers?search=smith", "/customers/cdnow:00001", "/segments", "/segments/evolution",
    "/campaigns", "/service", "/quality", "/imports", "/strategy/budget", "/strategy/portfolio", "/strategy/pricing",
    "/strategy/elasticity", "/strategy/network", "/strategy/contacts", "/users",
]  # fmt: skip


def _timed(call: Any) -> tuple[list[float], Any]:
    call()  # warm
    times, reply = [], None
    for _ in range(LOADS):
        start = time.perf_counter()
        reply = call()
        times.append(time.perf_counter() - start)
    return times, reply


def _percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(copies: int) -> list[dict[str, object]]:
    del copies  # one size: the demo store
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PATRON_DATA_DIR": folder}
        started = time.perf_counter()
        subprocess.run([PATRON, "demo"], env=env, check=True, capture_output=True)
        demo_s = time.perf_counter() - started
        started = time.perf_counter()  # as `make run` leaves the store
        subprocess.run([PATRON, "value", "score", "--if-unscored"], env=env, check=True, capture_output=True)
        score_s = time.perf_counter() - started
        os.environ["PATRON_DATA_DIR"] = folder
        return [
            *_pages(),
            {"workload": "`patron demo` (every demo source loaded)", "size": "-", "patron_s": demo_s, "anchor": "-",
             "anchor_s": None, "note": "target ≤ 20 s"},
            {"workload": "`patron value score --if-unscored` (after the demo, as `make run`)", "size": "-",
             "patron_s": score_s, "anchor": "-", "anchor_s": None, "note": ""},
        ]  # fmt: skip


def _pages() -> list[dict[str, object]]:
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from patron.app import create_app  # noqa: PLC0415
    from patron.auth.service import create_user  # noqa: PLC0415
    from patron.jobs.warm import warm  # noqa: PLC0415

    engine = _store()
    create_user(engine, "bench", PASSWORD, "admin")
    rows: list[dict[str, object]] = []
    with TestClient(create_app(engine)) as client:
        reply = client.post("/login", data={"username": "bench", "password": PASSWORD}, follow_redirects=False)
        assert reply.status_code == 303, reply.text
        warm(engine)  # the server's warmer computes these after a start or a change; timed once it has, not during
        for path in PAGES:
            times, reply = _timed(lambda path=path: client.get(path))
            rows.append(_row(f"page `{path}`", times, f"HTTP {reply.status_code}, {len(reply.content) / 1024:.0f} KB"))
        csrf = client.get("/segments").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        times, reply = _timed(lambda: client.post("/segments/count", data={"rule": RULE, "csrf_token": csrf}))
        rows.append(_row("segment live count `POST /segments/count`", times, reply.text.strip()[-60:],
                         anchor=_pandas_mask()))  # fmt: skip
        names = iter(range(10_000))

        def save() -> Any:
            form = {"rule": RULE, "name": f"bench {next(names)}", "csrf_token": csrf}
            return client.post("/segments", data=form, follow_redirects=False)

        times, reply = _timed(save)
        rows.append(
            _row("segment save `POST /segments` (count and members written)", times, f"HTTP {reply.status_code}")
        )
        rows.extend(_working_pages(client, csrf))
    rows.append(_clustering(engine))
    return rows


def _clustering(engine: Any) -> dict[str, object]:
    """`patron segments cluster` as it runs by default (Gaussian mixtures, k 2-8 by BIC on a sample, the chosen one
    fitted on everyone, described and stored), against scikit-learn's mixtures fitted on every customer for each k
    on the same standardised inputs (what an analyst would write), in the same process."""
    import numpy as np  # noqa: PLC0415
    import polars as pl  # noqa: PLC0415
    from sklearn.mixture import GaussianMixture  # noqa: PLC0415

    from patron.segments.clustering import behaviour_features, segment_customers  # noqa: PLC0415
    from patron.segments.frame_cache import current_features  # noqa: PLC0415

    started = time.perf_counter()
    result = segment_customers(engine)
    seconds = time.perf_counter() - started
    inputs = behaviour_features(current_features(engine).customers.filter(pl.col("orders") > 0))  # the CLI's default
    x = inputs.drop("customer_id").to_numpy().astype(np.float64)
    z = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    started = time.perf_counter()
    bics = {k: GaussianMixture(k, covariance_type="full", random_state=0, n_init=2).fit(z).bic(z) for k in range(2, 9)}
    anchor = time.perf_counter() - started
    their_k = min(bics, key=bics.__getitem__)
    return {
        "workload": "`patron segments cluster` (GMM, k 2-8 by BIC, described and stored)",
        "size": f"demo store, {inputs.height:,} customers with orders × {inputs.width - 1} inputs",
        "patron_s": seconds, "anchor": "scikit-learn GaussianMixture for each k on every customer",
        "anchor_s": anchor,
        "note": f"target ≤ 15 s; {result.segments} segments chosen (scikit-learn's lowest BIC: k={their_k})",
    }  # fmt: skip


def _working_pages(client: Any, csrf: str) -> list[dict[str, object]]:
    """The pages people act on: a saved segment, its export, the campaign wizard and its preview, a campaign."""
    from patron.engage.overview import list_campaigns  # noqa: PLC0415

    rows = []
    campaign = next(iter(list_campaigns(_store())), None)
    pages = ["/segments/bench%200", "/segments/bench%200/members.csv", "/campaigns/new?segment=bench%200"]
    if campaign is not None:
        pages.append(f"/campaigns/{campaign['key']}")
    for path in pages:
        times, reply = _timed(lambda path=path: client.get(path))
        rows.append(_row(f"page `{path}`", times, f"HTTP {reply.status_code}, {len(reply.content) / 1024:.0f} KB"))
    form = {"segment": "bench 0", "subject": "Hello {{ first_name }}", "body": "Dear {{ name }}", "csrf_token": csrf}
    times, reply = _timed(lambda: client.post("/campaigns/new/preview", data=form))
    rows.append(_row("campaign wizard preview `POST /campaigns/new/preview`", times, f"HTTP {reply.status_code}"))
    return rows


def _store() -> Any:
    from patron.cif.store import make_engine, migrate  # noqa: PLC0415
    from patron.settings import get_settings  # noqa: PLC0415

    get_settings.cache_clear()  # PATRON_DATA_DIR was set after the settings may have been read
    engine = make_engine()
    migrate(engine)
    return engine


def _row(workload: str, times: list[float], seen: str, anchor: float | None = None) -> dict[str, object]:
    p50, p95 = statistics.median(times), _percentile(times, 0.95)
    return {
        "workload": workload, "size": f"demo store, {LOADS} loads", "patron_s": p95,
        "anchor": "pandas mask on a frame in memory" if anchor is not None else "-", "anchor_s": anchor,
        "note": f"p95; p50 {p50 * 1000:.0f} ms; target ≤ 300 ms; {seen}",
    }  # fmt: skip


def _pandas_mask() -> float:
    """The rule as pandas masks over the feature frame already in memory, median of the loads."""
    from patron.segments.features import build_features  # noqa: PLC0415

    frame = build_features(_store()).customers.to_pandas()

    def count() -> int:
        mask = (frame["revenue"] > 100) & (frame["days_since_last_order"] > 180) & frame["tier"].isin(["A", "B"])
        return int(mask.sum())

    times, _ = _timed(count)
    return statistics.median(times)
