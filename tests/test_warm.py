"""The analyses kept warm: a server process recomputes them in the background when the data changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.stamp import data_stamp, is_current
from patron.jobs.warm import STORED, WARMED, Warmer, warm
from patron.segments import frame_cache
from patron.segments.features import build_features
from patron.settings import get_settings
from patron.strategy import plans
from patron.value import base
from tests.conftest import WriteFile
from tests.test_pages import CHROMIUM, serving, sign_in_page

ORDERS = {
    "source": {"system": "shop", "currency": "USD", "date_format": "%Y-%m-%d"},
    "orders": {"customer": "customer", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}


def _until(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    """Poll ``condition`` (a callable) until it holds or ``seconds`` pass: the warmer runs in its own thread."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_empty_store_warms_to_its_refusals(engine: Engine) -> None:
    assert set(warm(engine)) == set(WARMED)  # every analysis asked for; "no orders yet" is an answer, not an error


def test_every_stored_analysis_is_computed_by_the_jobs() -> None:
    assert sorted(STORED) == sorted(plans.STORED)  # what the jobs warm after a score run is what pages read stored


def test_the_warmer_recomputes_when_the_data_changes(engine: Engine, write_file: WriteFile) -> None:
    header = "customer,order,date,amount\n"
    import_file(engine, write_file("a.csv", header + "ann,o1,2024-01-05,40\nbob,o2,2024-02-05,90\n"),
                parse_mapping(ORDERS), rejects_dir=write_file("x", "").parent)  # fmt: skip
    warmer = Warmer(engine, every=0.05)
    warmer.start()
    try:
        assert _until(lambda: is_current(engine, "features"))
        before = data_stamp(engine)
        import_file(engine, write_file("b.csv", header + "cid,o3,2024-03-05,70\n"), parse_mapping(ORDERS),
                    rejects_dir=write_file("y", "").parent)  # fmt: skip
        assert data_stamp(engine) != before
        assert _until(lambda: is_current(engine, "features"))  # kept again, for the new data, without being asked
    finally:
        warmer.stop()


PASSWORD = "a-long-password-1"


def _two_buyers(engine: Engine, write_file: WriteFile) -> None:
    mapping = parse_mapping({**ORDERS, "customers": {"external_id": "customer"}})
    imported = import_file(engine, write_file("a.csv", "customer,order,date,amount\nann,o1,2024-01-05,40\n"
                           "bob,o2,2024-02-05,90\n"), mapping, rejects_dir=write_file("x", "").parent)  # fmt: skip
    assert imported.written == 2
    create_user(engine, "ana", PASSWORD, "analyst")


def _held_back_until(released: threading.Event) -> Callable[..., Any]:
    """The dashboard's customer base computed only once the test lets it go."""
    computed = base._customer_base

    def held_back(*args: Any) -> Any:
        assert released.wait(60), "the test never let the computation go"
        return computed(*args)

    return held_back


def test_a_page_whose_analysis_is_computing_says_so_and_fills_in_when_it_is_ready(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page answers at once that it is computing (and asks again by itself), then shows the dashboard once the
    result is there."""
    _two_buyers(engine, write_file)
    released = threading.Event()
    monkeypatch.setattr(base, "_customer_base", _held_back_until(released))
    monkeypatch.setattr(get_settings(), "page_wait_seconds", 0.05)
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 303
        waiting = client.get("/?source=shop")
        assert waiting.status_code == 200
        assert 'id="computing"' in waiting.text
        assert "Computing the customer base" in waiting.text
        assert 'hx-get="/?source=shop"' in waiting.text
        assert 'hx-trigger="every 1s"' in waiting.text
        assert "Pareto" not in waiting.text
        assert 'id="computing"' in client.get("/?source=shop").text  # asked again: still computing
        released.set()
        assert _until(lambda: 'id="computing"' not in client.get("/?source=shop").text)
        assert "Pareto" in client.get("/?source=shop").text


def test_in_chromium_the_computing_page_fills_in_by_itself_with_its_charts(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    _two_buyers(engine, write_file)
    released = threading.Event()
    monkeypatch.setattr(base, "_customer_base", _held_back_until(released))
    monkeypatch.setattr(get_settings(), "page_wait_seconds", 0.05)
    with serving(engine) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        sign_in_page(page, site, "ana", PASSWORD)
        expect(page.locator("h1")).to_have_text("Computing the customer base…")
        page.screenshot(path=str(tmp_path / "computing.png"))
        released.set()  # no reload from here on: the page asks again by itself
        expect(page.locator("h1")).to_have_text("Dashboard", timeout=30_000)
        expect(page.locator("#computing")).to_have_count(0)
        expect(page.locator(".plotly-figure .main-svg").first).to_be_visible()  # charts drawn after the swap
        browser.close()


def test_the_live_count_says_it_is_preparing_and_asks_again_with_the_rule_typed_then(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every customer's figures held back: the count answers at once that they are being prepared, in a fragment
    that posts the rule again by itself; once they are there, the count."""
    _two_buyers(engine, write_file)
    released = threading.Event()

    def held_back(*args: Any, **kwargs: Any) -> Any:
        assert released.wait(60), "the test never let the computation go"
        return build_features(*args, **kwargs)

    monkeypatch.setattr(frame_cache, "build_features", held_back)  # where the kept feature frame is built
    monkeypatch.setattr(get_settings(), "page_wait_seconds", 0.05)
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 303
        csrf = client.get("/customers").text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
        waiting = client.post("/segments/count", data={"rule": "orders > 0"}, headers={"X-CSRF-Token": csrf})
        assert waiting.status_code == 200
        assert "Preparing every customer's figures" in waiting.text
        assert 'hx-post="/segments/count"' in waiting.text
        assert 'hx-include="#rule"' in waiting.text
        assert 'hx-trigger="load delay:1s"' in waiting.text
        released.set()

        def counted() -> bool:
            answer = client.post("/segments/count", data={"rule": "orders > 0"}, headers={"X-CSRF-Token": csrf})
            return "2 of 2 customers match" in answer.text

        assert _until(counted)
